#!/usr/bin/env node
// `npm run simulate -- <command>`: the OneAccess simulator (sim/). Bundles sim/cli/main.ts, with the
// src/protocol code it reuses, into node_modules/.cache/oneaccess-sim/ with esbuild, then runs it on Node's
// own fetch and Web Crypto. This file is the only Node-specific part: argv, files, the terminal, and the
// HTTP server and signals of `listen`.
import path from "node:path";
import { serve } from "@hono/node-server";
import { importBundled, readOrNull, root } from "./lib/bundle.mjs";

// npm runs scripts from the project root; a path the user typed is relative to where they typed it.
const userCwd = process.env.INIT_CWD ?? process.cwd();

/** `listen`'s server on 127.0.0.1; `closed` settles at Ctrl+C or SIGTERM, once the server has stopped. */
function serveLocally(port, handler) {
  return new Promise((resolve, reject) => {
    // overrideGlobalObjects: false keeps Node's own Request/Response for everything else in the process.
    const server = serve({ fetch: handler, port, hostname: "127.0.0.1", overrideGlobalObjects: false }, (info) => {
      server.off("error", reject);
      const closed = new Promise((done) => {
        const stop = () => {
          for (const signal of ["SIGINT", "SIGTERM"]) process.off(signal, stop);
          server.close(() => done());
          // A sender's keep-alive connection would otherwise hold close() open.
          server.closeAllConnections?.();
        };
        for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, stop);
      });
      resolve({ port: info.port, closed });
    });
    server.once("error", reject);
  });
}

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
  serve: serveLocally,
});
