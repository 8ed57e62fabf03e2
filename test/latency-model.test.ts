// The latency model of docs/placement.md (scripts/lib/latency-model.ts): round trips per event times the
// round-trip time of each link, checked against figures worked out by hand; and the doc's tables are the
// model's output, so they cannot drift from it.
import { describe, expect, it } from "vitest";
import placementDoc from "../docs/placement.md?raw";
import {
  assumptionsTable,
  EVENTS,
  eventLatency,
  fullSyncLatency,
  latencyTable,
  PLACEMENTS,
  SAO_PAULO,
  type Links,
} from "../scripts/lib/latency-model";

const local: Links = { callerWorker: [2, 10], workerLedger: [2, 10], ledgerDatabase: [2, 10] };
const farDatabase: Links = { callerWorker: [2, 10], workerLedger: [2, 10], ledgerDatabase: [150, 250] };

describe("the round trips per event", () => {
  it("are those of docs/architecture.md: one RPC; reads and writes; the create shortcut; none for a duplicate", () => {
    expect(Object.fromEntries(EVENTS.map((e) => [e.event, [e.trips.ledger, e.trips.database]]))).toEqual({
      CHECK_URL: [1, 1],
      "CREATE_USER, new key": [1, 1],
      "CREATE_USER, key already held": [1, 3],
      UPDATE_USER: [1, 2],
      DELETE_USER: [1, 2],
      "exact duplicate": [1, 0],
    });
  });
});

describe("eventLatency", () => {
  it("adds the request, the RPC and each D1 batch, at both ends of the range", () => {
    expect(eventLatency({ ledger: 1, database: 1 }, local)).toEqual([6, 30]);
    expect(eventLatency({ ledger: 1, database: 2 }, local)).toEqual([8, 40]);
    expect(eventLatency({ ledger: 1, database: 1 }, farDatabase)).toEqual([154, 270]);
    expect(eventLatency({ ledger: 1, database: 2 }, farDatabase)).toEqual([304, 520]);
    expect(eventLatency({ ledger: 1, database: 0 }, farDatabase)).toEqual([4, 20]);
    expect(eventLatency({ ledger: 1, database: 3 }, { callerWorker: [1, 1], workerLedger: [10, 20], ledgerDatabase: [100, 200] })).toEqual([311, 621]);
  });

  it("a 20 000-user full sync, one create at a time: 2–10 min in one region, 51–90 min with the database abroad", () => {
    expect(fullSyncLatency(20_000, local)).toEqual([120_000, 600_000]);
    expect(fullSyncLatency(20_000, farDatabase)).toEqual([3_080_000, 5_400_000]);
  });
});

describe("docs/placement.md", () => {
  it("shows the model's tables, as node scripts/latency-table.mjs prints them", () => {
    for (const scenarios of [PLACEMENTS, SAO_PAULO]) {
      expect(placementDoc).toContain(assumptionsTable(scenarios));
      expect(placementDoc).toContain(latencyTable(scenarios));
    }
  });

  it("its headline figures, by hand", () => {
    const table = latencyTable(PLACEMENTS);
    expect(table).toContain("| UPDATE_USER | 1 | 2 | 8–40 ms | 304–520 ms | 156–280 ms |");
    expect(table).toContain("| full sync, 20 000 new users one at a time | 1 each | 1 each | 2–10 min | 51–90 min | 51–90 min |");
    expect(latencyTable(SAO_PAULO)).toContain("| UPDATE_USER | 1 | 2 | 224–300 ms | 116–170 ms |");
  });
});
