// The audit table's retention: the Cron Trigger's handler trims `deliveries` to AUDIT_RETENTION_DAYS, in
// bounded chunks.
import { createScheduledController } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import worker from "../src/index";
import { readConfig } from "../src/config";
import { DAY_MS, trimDeliveries } from "../src/ops/retention";
import { callWorker, testEnv } from "./helpers/worker";

const NOW = Date.UTC(2026, 4, 1, 3, 17, 0);

async function insert(nonce: string, receivedAt: number) {
  await testEnv.DB.prepare(
    `INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms)
     VALUES (?, 'CHECK_URL', ?, '200', 'success', NULL, 1)`,
  )
    .bind(receivedAt, nonce)
    .run();
}

async function nonces(): Promise<string[]> {
  const { results } = await testEnv.DB.prepare("SELECT nonce FROM deliveries ORDER BY id").all<{ nonce: string }>();
  return results.map((r) => r.nonce);
}

/** Runs the Worker's scheduled export the way the Cron Trigger does. */
async function runCron(overrides: Record<string, unknown> = {}, scheduledTime = NOW) {
  const controller = createScheduledController({ scheduledTime, cron: "17 3 * * *" });
  await worker.scheduled(controller, { ...testEnv, ...overrides } as unknown as Env);
}

beforeEach(async () => {
  await testEnv.DB.prepare("DELETE FROM deliveries").run();
});

describe("scheduled retention", () => {
  let log: MockInstance<typeof console.log>;
  let error: MockInstance<typeof console.error>;
  beforeEach(() => {
    log = vi.spyOn(console, "log").mockImplementation(() => {});
    error = vi.spyOn(console, "error").mockImplementation(() => {});
  });
  afterEach(() => vi.restoreAllMocks());

  it("deletes rows older than 30 days by default and keeps newer ones", async () => {
    await insert("r-60d", NOW - 60 * DAY_MS);
    await insert("r-30d-1ms", NOW - 30 * DAY_MS - 1);
    await insert("r-30d", NOW - 30 * DAY_MS);
    await insert("r-29d", NOW - 29 * DAY_MS);
    await insert("r-1h", NOW - 3600_000);
    await insert("r-future", NOW + 60_000);
    await runCron({ AUDIT_RETENTION_DAYS: undefined });
    expect(await nonces()).toEqual(["r-30d", "r-29d", "r-1h", "r-future"]);
    const lines = log.mock.calls.map((c) => JSON.parse(String(c[0])));
    expect(lines).toEqual([expect.objectContaining({ msg: "retention", outcome: "trimmed", retentionDays: 30, deleted: 2, complete: true })]);
  });

  it("uses AUDIT_RETENTION_DAYS from wrangler.toml [vars] and its overrides", async () => {
    expect(testEnv.AUDIT_RETENTION_DAYS).toBe("30");
    await insert("s-8d", NOW - 8 * DAY_MS);
    await insert("s-6d", NOW - 6 * DAY_MS);
    await runCron({ AUDIT_RETENTION_DAYS: "7" });
    expect(await nonces()).toEqual(["s-6d"]);
  });

  it("an invalid AUDIT_RETENTION_DAYS deletes nothing and says which setting", async () => {
    await insert("t-400d", NOW - 400 * DAY_MS);
    for (const bad of ["0", "-3", "thirty", "3651"]) {
      await runCron({ AUDIT_RETENTION_DAYS: bad });
    }
    expect(await nonces()).toEqual(["t-400d"]);
    expect(error).toHaveBeenCalledTimes(4);
    for (const [line] of error.mock.calls) {
      expect(JSON.parse(String(line))).toMatchObject({ msg: "retention", outcome: "misconfigured", problems: [{ setting: "AUDIT_RETENTION_DAYS" }] });
    }
  });

  it("still trims while an unrelated setting is wrong (callbacks refused, audit still bounded)", async () => {
    await insert("u-40d", NOW - 40 * DAY_MS);
    await insert("u-1d", NOW - DAY_MS);
    await runCron({ ONEACCESS_BEARER_TOKEN: "" });
    expect(await nonces()).toEqual(["u-1d"]);
  });
});

describe("trimDeliveries", () => {
  it("deletes in bounded chunks and leaves the rest for the next run", async () => {
    for (let i = 0; i < 10; i++) await insert(`c-old-${i}`, NOW - 40 * DAY_MS + i);
    await insert("c-new", NOW - DAY_MS);
    const first = await trimDeliveries(testEnv.DB, 30, NOW, { chunkSize: 3, maxChunks: 2 });
    expect(first).toEqual({ cutoffMs: NOW - 30 * DAY_MS, deleted: 6, chunks: 2, complete: false });
    // Oldest first.
    expect(await nonces()).toEqual(["c-old-6", "c-old-7", "c-old-8", "c-old-9", "c-new"]);
    const second = await trimDeliveries(testEnv.DB, 30, NOW, { chunkSize: 3, maxChunks: 2 });
    expect(second).toMatchObject({ deleted: 4, chunks: 2, complete: true });
    expect(await nonces()).toEqual(["c-new"]);
    expect(await trimDeliveries(testEnv.DB, 30, NOW, { chunkSize: 3, maxChunks: 2 })).toMatchObject({ deleted: 0, chunks: 1, complete: true });
  });

  it("a row received out of insertion order is judged by its own time", async () => {
    await insert("o-new", NOW - DAY_MS);
    await insert("o-old", NOW - 31 * DAY_MS);
    await trimDeliveries(testEnv.DB, 30, NOW);
    expect(await nonces()).toEqual(["o-new"]);
  });

  it("refuses a retention below one day", async () => {
    await expect(trimDeliveries(testEnv.DB, 0, NOW)).rejects.toThrow(RangeError);
  });
});

describe("AUDIT_RETENTION_DAYS validation", () => {
  const valid = { ONEACCESS_BEARER_TOKEN: "b", ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "none" };
  it("defaults to 30 and accepts 1 to 3650", () => {
    const days = (v?: string) => {
      const r = readConfig(v === undefined ? valid : { ...valid, AUDIT_RETENTION_DAYS: v });
      return r.ok ? r.config.auditRetentionDays : r.problems.map((p) => p.setting);
    };
    expect(days()).toBe(30);
    expect(days("")).toBe(30);
    expect(days("1")).toBe(1);
    expect(days("3650")).toBe(3650);
    expect(days("0")).toEqual(["AUDIT_RETENTION_DAYS"]);
    expect(days("3651")).toEqual(["AUDIT_RETENTION_DAYS"]);
    expect(days("7.5")).toEqual(["AUDIT_RETENTION_DAYS"]);
  });

  it("a wrong value makes callbacks answer 500 naming it, and /healthz says so", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const post = await callWorker(
        new Request("https://receiver.test/callback", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
        { AUDIT_RETENTION_DAYS: "forever" },
      );
      expect(await post.json()).toEqual({ code: "500", message: "server misconfigured: AUDIT_RETENTION_DAYS", data: "" });
      const res = await callWorker(new Request("https://receiver.test/healthz"), { AUDIT_RETENTION_DAYS: "forever" });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ status: "misconfigured", problems: [{ setting: "AUDIT_RETENTION_DAYS" }] });
    } finally {
      vi.restoreAllMocks();
    }
  });
});
