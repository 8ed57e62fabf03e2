#!/usr/bin/env node
// `node scripts/latency-table.mjs`: prints the latency tables of docs/placement.md from the model in
// scripts/lib/latency-model.ts, to paste into the doc (or the README) after changing the model.
import { importBundled } from "./lib/bundle.mjs";

const { PLACEMENTS, SAO_PAULO, assumptionsTable, latencyTable } = await importBundled("scripts/lib/latency-model.ts", "oneaccess-latency");
for (const [title, scenarios] of [
  ["OneAccess in Singapore", PLACEMENTS],
  ["OneAccess in São Paulo (D1 has no location in South America)", SAO_PAULO],
]) {
  console.log(`${title}: assumed round trips\n\n${assumptionsTable(scenarios)}\n\n${title}: per event\n\n${latencyTable(scenarios)}\n`);
}
