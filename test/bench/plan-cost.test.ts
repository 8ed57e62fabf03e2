// The full-sync cost model the bench prints and the README's cost table comes from: counts are the measured
// per-event means times the events of a full sync, shares are of the Free plan's daily limits.
import { describe, expect, it } from "vitest";
import { fullSyncLines, syncCostInput, type CostRow } from "../../bench/core/cost";
import { FREE_DAILY, fullSyncCost, organizationsFor, syncCostRows, type SyncCostInput } from "../../bench/core/plan-cost";
import type { CostWebhooks } from "../../bench/core/webhooks";

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

describe("the cost phase's full-sync table", () => {
  const row = (label: string, d1RowsRead: number | null, d1RowsWritten: number, storeRowsWritten: number, cpu: number) =>
    ({ label, d1RowsRead, d1RowsWritten, storeRowsWritten, d1Queries: 1, workerdCpuMsPerRequest: cpu }) as unknown as CostRow;
  const rows = [row("CHECK_URL", 0, 1, 2, 0.8), row("CREATE_ORGANIZATION", 2, 4, 2, 1.9), row("CREATE_USER", 3, 4, 2, 1.7), row("DELETE_USER", 5, 2, 2, 9)];

  it("takes CHECK_URL, CREATE_ORGANIZATION and CREATE_USER, the dispatcher's rows with its alarms and its requests, and the largest of their CPU", () => {
    const webhooks = { dispatcher: { rowsWrittenWithAlarmsPerDeliveredChange: 0.07, requestsPerDeliveredChange: 0.06 } } as unknown as CostWebhooks;
    const input = syncCostInput(rows, webhooks)!;
    expect(input).toMatchObject({
      createUser: { d1RowsRead: 3, d1RowsWritten: 4, storeRowsWritten: 2 },
      ledgerPurgeRowsPerRecord: 1,
      webhooks: { rowsWrittenPerChange: 0.07, requestsPerChange: 0.06 },
      cpuMsPerRequest: 1.9,
    });
    const lines = fullSyncLines([fullSyncCost(20_000, input)], input);
    expect(lines[0]).toContain("webhooks on");
    expect(lines[2]).toMatch(/^ {2}20 000 \(200\) +20 201 \(20\.2%\)/);
    expect(syncCostInput(rows, null)!.webhooks).toBeNull();
  });

  it("no table when a row it needs has no cost figures (a receiver that does not log them)", () => {
    expect(syncCostInput([row("CHECK_URL", null, 1, 2, 1), ...rows.slice(1)], null)).toBeNull();
    expect(syncCostInput(rows.slice(0, 2), null)).toBeNull();
  });
});
