#!/usr/bin/env node
// `npm run bench`: the benchmark (bench/). Bundles bench/cli/main.ts, with the src/protocol and sim/ code it
// reuses, into node_modules/.cache/oneaccess-bench/ with esbuild, then runs it with the Node host of
// scripts/lib/bench-host.mjs (wrangler dev, autocannon, Miniflare, /proc, files, the webhook sink). `--help`
// for the options.
import { importBundled } from "./lib/bundle.mjs";
import { benchHost } from "./lib/bench-host.mjs";

const { main } = await importBundled("bench/cli/main.ts", "oneaccess-bench");
process.exitCode = await main(benchHost(process.argv.slice(2)));
