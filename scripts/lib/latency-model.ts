// The latency model of docs/placement.md: network round trips on one callback's critical path, times the
// round-trip time of each link. The tables in the doc are this module's output (node
// scripts/latency-table.mjs prints them; test/latency-model.test.ts checks the doc still matches).

/** A low–high range, in milliseconds. */
export type Range = readonly [low: number, high: number];

/** Round-trip times of the three links one callback crosses. */
export interface Links {
  /** OneAccess → the Cloudflare location that runs the Worker (the nearest one to OneAccess). */
  callerWorker: Range;
  /** Worker → the event ledger object (one RPC). */
  workerLedger: Range;
  /** Event ledger object → D1's primary (one round trip per batch). */
  ledgerDatabase: Range;
}

/** Round trips per event: always one request to the Worker; then RPCs to the object, batches to D1. */
export interface Trips {
  ledger: number;
  database: number;
}

/** From docs/architecture.md: what src/ingest/event-ledger.ts and src/directory/apply.ts send, per event. */
export const EVENTS: ReadonlyArray<{ event: string; trips: Trips }> = [
  // The audit row, one batch.
  { event: "CHECK_URL", trips: { ledger: 1, database: 1 } },
  // The create shortcut: insert and audit row as one guarded batch.
  { event: "CREATE_USER, new key", trips: { ledger: 1, database: 1 } },
  // The shortcut finds the key held, then the reads batch and the write batch.
  { event: "CREATE_USER, key already held", trips: { ledger: 1, database: 3 } },
  { event: "UPDATE_USER", trips: { ledger: 1, database: 2 } },
  { event: "DELETE_USER", trips: { ledger: 1, database: 2 } },
  // Answered from the object's own record.
  { event: "exact duplicate", trips: { ledger: 1, database: 0 } },
];

export const FULL_SYNC_USERS = 20_000;

/** The figures assumed: within one region, and across continents (Asia–Europe). */
export const SAME_REGION: Range = [2, 10];
export const ASIA_EUROPE: Range = [150, 250];
/** South America – eastern North America (São Paulo – Miami or Virginia). */
export const SOUTH_TO_NORTH_AMERICA: Range = [110, 140];

export interface Scenario {
  name: string;
  links: Links;
}

/** OneAccess in Singapore (ap-southeast-3): the Worker runs in Singapore. */
export const PLACEMENTS: readonly Scenario[] = [
  { name: "all in one region", links: { callerWorker: SAME_REGION, workerLedger: SAME_REGION, ledgerDatabase: SAME_REGION } },
  { name: "database on another continent", links: { callerWorker: SAME_REGION, workerLedger: SAME_REGION, ledgerDatabase: ASIA_EUROPE } },
  { name: "object and database on another continent", links: { callerWorker: SAME_REGION, workerLedger: ASIA_EUROPE, ledgerDatabase: SAME_REGION } },
];

/** OneAccess in São Paulo (sa-brazil-1), where D1 has no location: the database is in enam either way. */
export const SAO_PAULO: readonly Scenario[] = [
  { name: "object near OneAccess (sam)", links: { callerWorker: SAME_REGION, workerLedger: SAME_REGION, ledgerDatabase: SOUTH_TO_NORTH_AMERICA } },
  { name: "object beside the database (enam)", links: { callerWorker: SAME_REGION, workerLedger: SOUTH_TO_NORTH_AMERICA, ledgerDatabase: SAME_REGION } },
];

/** One event's network time: the request, the RPCs to the object, the D1 batches. */
export function eventLatency(trips: Trips, links: Links): Range {
  const at = (i: 0 | 1) => links.callerWorker[i] + trips.ledger * links.workerLedger[i] + trips.database * links.ledgerDatabase[i];
  return [at(0), at(1)];
}

/** A full sync of new users sent one at a time, each waiting for the previous reply. */
export function fullSyncLatency(users: number, links: Links): Range {
  const one = eventLatency({ ledger: 1, database: 1 }, links);
  return [users * one[0], users * one[1]];
}

const ms = ([low, high]: Range) => `${low}–${high} ms`;
const minutes = ([low, high]: Range) => `${Math.round(low / 60_000)}–${Math.round(high / 60_000)} min`;
const row = (cells: string[]) => `| ${cells.join(" | ")} |`;

/** The table of docs/placement.md for these scenarios: one row per event, then the full sync. */
export function latencyTable(scenarios: readonly Scenario[]): string {
  const lines = [
    row(["event", "Worker → object", "object → D1", ...scenarios.map((s) => s.name)]),
    row(["---", "---:", "---:", ...scenarios.map(() => "---:")]),
    ...EVENTS.map(({ event, trips }) => row([event, String(trips.ledger), String(trips.database), ...scenarios.map((s) => ms(eventLatency(trips, s.links)))])),
    row([`full sync, ${String(FULL_SYNC_USERS).replace(/\B(?=(\d{3})+$)/g, " ")} new users one at a time`, "1 each", "1 each", ...scenarios.map((s) => minutes(fullSyncLatency(FULL_SYNC_USERS, s.links)))]),
  ];
  return lines.join("\n");
}

/** The round-trip times a table assumes, one row per link. */
export function assumptionsTable(scenarios: readonly Scenario[]): string {
  const links: Array<[keyof Links, string]> = [
    ["callerWorker", "OneAccess → Worker"],
    ["workerLedger", "Worker → object"],
    ["ledgerDatabase", "object → D1"],
  ];
  return [
    row(["round trip", ...scenarios.map((s) => s.name)]),
    row(["---", ...scenarios.map(() => "---:")]),
    ...links.map(([key, label]) => row([label, ...scenarios.map((s) => ms(s.links[key]))])),
  ].join("\n");
}
