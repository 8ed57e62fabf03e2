#!/usr/bin/env node
// `npm run typecheck`, first half: is the committed worker-configuration.d.ts what `npm run types` would
// generate now? Generates into a scratch file with .dev.vars.example as the only source of secret names
// (never the developer's own .dev.vars, which may hold another profile or extra variables), compares it with
// the committed file ignoring line 2 (the header quoting the command), and deletes the scratch file.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const committed = path.join(root, "worker-configuration.d.ts");
const SCRATCH = "types-check.d.ts";
const scratch = path.join(root, SCRATCH);
const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const OUT_OF_DATE = "worker-configuration.d.ts is out of date: run npm run types";

// Ctrl+C reaches wrangler too; stay alive until it has exited so the scratch file is still removed.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => {});

/** The file's lines without line 2 (wrangler's header naming the command and its options). */
function withoutHeader(text) {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  lines.splice(1, 1);
  return lines;
}

function check() {
  if (!existsSync(wrangler)) {
    console.error("typecheck: wrangler is not installed (run npm ci)");
    return 1;
  }
  // The output path comes before --env-file: that option takes several values and would swallow it.
  const args = [wrangler, "types", SCRATCH, "--strict-vars=false", "--include-runtime=false", "--env-file", ".dev.vars.example"];
  const run = spawnSync(process.execPath, args, {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    encoding: "utf8",
  });
  if (run.status !== 0 || !existsSync(scratch)) {
    process.stderr.write(`${run.stdout ?? ""}${run.stderr ?? ""}`);
    const how = run.error
      ? run.error.message
      : run.signal
        ? `killed by ${run.signal}`
        : run.status !== 0
          ? `exit code ${run.status}`
          : `no ${SCRATCH} written`;
    console.error(`typecheck: wrangler types failed (${how})`);
    return 1;
  }
  if (!existsSync(committed)) {
    console.error(`typecheck: ${OUT_OF_DATE} (the file is missing)`);
    return 1;
  }
  const expected = withoutHeader(readFileSync(scratch, "utf8"));
  const actual = withoutHeader(readFileSync(committed, "utf8"));
  if (expected.length === actual.length && expected.every((line, i) => line === actual[i])) return 0;
  const differs = expected.findIndex((line, i) => line !== actual[i]);
  const index = differs < 0 ? Math.min(expected.length, actual.length) : differs;
  // Back to a line number of the file: line 2 was left out.
  console.error(`typecheck: ${OUT_OF_DATE} (first difference at line ${index === 0 ? 1 : index + 2})`);
  return 1;
}

let code = 1;
try {
  rmSync(scratch, { force: true });
  code = check();
} finally {
  rmSync(scratch, { force: true });
}
process.exit(code);
