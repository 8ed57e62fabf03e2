// Shared by the Node runners (simulate, emulator, bench): bundle a TypeScript entry point, with the src/ and
// sim/ code it imports, into node_modules/.cache/<name>/ with esbuild, and import it.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export async function importBundled(entry, cacheName) {
  const outfile = path.join(root, "node_modules", ".cache", cacheName, "main.mjs");
  await build({
    entryPoints: [path.join(root, entry)],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: "inline",
    logLevel: "error",
  });
  process.setSourceMapsEnabled?.(true);
  return import(pathToFileURL(outfile).href);
}

/** A file's text, or null when it does not exist. */
export function readOrNull(file) {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    if (e && e.code === "ENOENT") return null;
    throw e;
  }
}
