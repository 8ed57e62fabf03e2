// The full-sync cost model the bench prints and the README's cost table comes from: counts are the measured
// per-event means times the events of a full sync, shares are of the Free plan's daily limits.
import { describe, expect, it } from "vitest";
import { FREE_DAILY, fullSyncCost, organizationsFor, syncCostRows, type SyncCostInput } from "../../bench/core/plan-cost";

const measured: SyncCostInput = {
  checkUrl: { d1RowsRead: 0, d1RowsWritten: 1, storeRowsWritten: 2 },
  createOrganization: { d1RowsRead: 2, d1RowsWritten: 4, storeRowsWritten: 2 },
  createUser: { d1RowsRead: 3, d1RowsWritten: 4, storeRowsWritten: 2 },
  ledgerPurgeRowsPerRecord: 1,
  webhooks: { rowsWrittenPerChange: 0.1, requestsPerChange: 0.05, d1RowsReadPerChange: 26 },
  cpuMsPerRequest: 2,
};

describe("fullSyncCost", () => {
  it("one CHECK_URL, one organization per 100 users (at least one), then the users", () => {
    expect(organizationsFor(1_000)).toBe(10);
    expect(organizationsFor(20_000)).toBe(200);
    expect(organizationsFor(40)).toBe(1);
    const c = fullSyncCost(20_000, measured);
    expect(c.events).toBe(20_201);
    expect(c.usage.workerRequests).toBe(20_201);
    expect(c.usage.d1RowsWritten).toBe(1 + 200 * 4 + 20_000 * 4);
    expect(c.usage.d1RowsRead).toBe(200 * 2 + 20_000 * 3 + 20_200 * 26);
    // The ledger: the record of each event, its purge, and the dispatcher's rows per change.
    expect(c.usage.durableObjectRowsWritten).toBeCloseTo(20_201 * 2 + 20_201 * 1 + 20_200 * 0.1, 6);
    expect(c.usage.durableObjectRequests).toBeCloseTo(20_201 + 20_200 * 0.05, 6);
    expect(c.freeShare.d1RowsWritten).toBeCloseTo(80_801 / FREE_DAILY.d1RowsWritten, 9);
    expect(c.tightest.limit).toBe("d1RowsWritten");
  });

  it("Paid: the list price of the usage, and nothing billed while it stays within the month's inclusions", () => {
    const c = fullSyncCost(40_000, measured);
    // 80 401 Worker requests at $0.30 a million, and so on; all of it far inside what $5 a month includes.
    expect(c.paid.listPriceUsd).toBeGreaterThan(0.1);
    expect(c.paid.listPriceUsd).toBeLessThan(1);
    expect(c.paid.billedBeyondIncludedUsd).toBe(0);
    const huge = fullSyncCost(20_000_000, measured);
    expect(huge.paid.billedBeyondIncludedUsd).toBeGreaterThan(0);
  });

  it("webhooks off: no dispatcher requests, rows or reads", () => {
    const off = fullSyncCost(1_000, { ...measured, webhooks: null });
    expect(off.usage.durableObjectRequests).toBe(off.events);
    expect(off.usage.d1RowsRead).toBe(10 * 2 + 1_000 * 3);
  });

  it("rows: each limit as a count and its share of the Free day", () => {
    const { header, rows } = syncCostRows([fullSyncCost(1_000, measured)]);
    expect(header[0]).toBe("users (orgs)");
    expect(rows[0]![0]).toBe("1 000 (10)");
    expect(rows[0]![header.indexOf("D1 rows written")]).toBe("4 041 (4.0%)");
  });
});
