#!/usr/bin/env node
// `npm run simulate -- <command>`: the OneAccess simulator (sim/). Bundles sim/cli/main.ts, with the
// src/protocol code it reuses, into node_modules/.cache/oneaccess-sim/ with esbuild, then runs it on Node's
// own fetch and Web Crypto. This file is the only Node-specific part: argv, files, the terminal.
import path from "node:path";
import { importBundled, readOrNull, root } from "./lib/bundle.mjs";

// npm runs scripts from the project root; a path the user typed is relative to where they typed it.
const userCwd = process.env.INIT_CWD ?? process.cwd();

const { main } = await importBundled("sim/cli/main.ts", "oneaccess-sim");
process.exitCode = await main({
  argv: process.argv.slice(2),
  readProjectFile: (name) => readOrNull(path.join(root, name)),
  readUserFile: (file) => readOrNull(path.resolve(userCwd, file)),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTTY: Boolean(process.stderr.isTTY),
  columns: process.stderr.columns ?? 80,
  fetch: (request) => fetch(request),
  now: () => performance.now(),
});
