#!/usr/bin/env node
// `npm run emulator`: the OneAccess emulator (emulator/). Bundles emulator/cli/main.ts, with the sim/ and
// src/protocol code it reuses, into node_modules/.cache/oneaccess-emulator/ with esbuild, then serves it with
// @hono/node-server on Node's own fetch and Web Crypto. This file is the only Node-specific part: argv, env,
// files (the JSON state file), the HTTP server and signals.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { serve } from "@hono/node-server";
import { importBundled, readOrNull, root } from "./lib/bundle.mjs";

// npm runs scripts from the project root; a path the user typed is relative to where they typed it.
const userCwd = process.env.INIT_CWD ?? process.cwd();

/** The state as one JSON file, replaced atomically (write a temporary file, then rename it over). */
function fileStore(file) {
  const full = path.resolve(root, file);
  return {
    description: path.relative(userCwd, full) || full,
    async load() {
      const text = readOrNull(full);
      return text === null ? null : JSON.parse(text);
    },
    async save(state) {
      mkdirSync(path.dirname(full), { recursive: true });
      const temporary = `${full}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
      renameSync(temporary, full);
    },
  };
}

let server;
const { main } = await importBundled("emulator/cli/main.ts", "oneaccess-emulator");
const result = await main({
  argv: process.argv.slice(2),
  env: process.env,
  readProjectFile: (name) => readOrNull(path.join(root, name)),
  readUserFile: (file) => readOrNull(path.resolve(userCwd, file)),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  fetch: (request) => fetch(request),
  fileStore,
  serve: (fetchHandler, port, hostname) =>
    new Promise((resolve, reject) => {
      // overrideGlobalObjects: false keeps Node's own Request/Response, which the callbacks' fetch uses.
      server = serve({ fetch: fetchHandler, port, hostname, overrideGlobalObjects: false }, () => resolve());
      server.once("error", reject);
    }),
});
if (typeof result === "number") {
  process.exitCode = result;
} else {
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
      server?.close();
      process.exit(0);
    });
  }
}
