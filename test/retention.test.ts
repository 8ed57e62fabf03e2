// The audit table's retention: the Cron Trigger's handler trims `deliveries` to AUDIT_RETENTION_DAYS, in
// bounded chunks; a D1 failure mid-trim is logged by class name only and rethrown; wrangler.toml's cron
// (read as text through the WRANGLER_TOML test binding) is the documented "17 3 * * *".
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { exports as workerExports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import worker from "../src/index";
import { readConfig } from "../src/config";
import { trimDeliveries } from "../src/ops/retention";
import { callWorker, testEnv } from "./helpers/worker";

const NOW = Date.UTC(2026, 4, 1, 3, 17, 0);
/** One day in milliseconds, written out (not the source's constant). */
const DAY_MS = 86_400_000;

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

/** Inserts `count` rows received at `receivedAt` in one statement (nonces `${prefix}-1` …). */
async function insertMany(prefix: string, count: number, receivedAt: number) {
  await testEnv.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms)
     SELECT ?, 'CHECK_URL', ? || '-' || i, '200', 'success', NULL, 1 FROM n`,
  )
    .bind(count, receivedAt, prefix)
    .run();
}

async function countRows(where = "1"): Promise<number> {
  return (await testEnv.DB.prepare(`SELECT count(*) AS n FROM deliveries WHERE ${where}`).first<number>("n"))!;
}

/** An error class of our own, with a message quoting a value, as a D1 error could. */
class D1QueryTimeout extends Error {
  override name = "D1QueryTimeout";
}

/**
 * The real database, except that the `failAt`-th statement the trim runs fails with `failure()` instead of
 * running; the statements before it run for real.
 */
function failingTrimDb(failAt: number, failure: () => Promise<never>): { db: D1Database; runs: () => number } {
  const real = testEnv.DB;
  let runs = 0;
  const db = new Proxy(real, {
    get(target, prop) {
      if (prop === "prepare") {
        return (sql: string) => {
          const statement = target.prepare(sql);
          return {
            bind: (...values: unknown[]) => {
              const bound = statement.bind(...values);
              return { run: () => (++runs === failAt ? failure() : bound.run()) };
            },
          };
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db, runs: () => runs };
}

describe("scheduled retention when D1 fails during the trim", () => {
  let log: MockInstance<typeof console.log>;
  let error: MockInstance<typeof console.error>;
  beforeEach(() => {
    log = vi.spyOn(console, "log").mockImplementation(() => {});
    error = vi.spyOn(console, "error").mockImplementation(() => {});
  });
  afterEach(() => vi.restoreAllMocks());

  const cases: Array<[string, () => Promise<never>, string, string]> = [
    [
      "an error of its own class",
      () => Promise.reject(new D1QueryTimeout("D1 timed out deleting nonce=secret-nonce-value-123")),
      "D1QueryTimeout",
      "secret-nonce-value-123",
    ],
    [
      "a real D1 error (a statement D1 refuses)",
      // Thrown by D1 itself; its message names the table, i.e. quotes the statement.
      () => testEnv.DB.prepare("SELECT * FROM deliveries_secret_table_xyz").run() as Promise<never>,
      "Error",
      "deliveries_secret_table_xyz",
    ],
  ];

  for (const [name, failure, className, quoted] of cases) {
    it(`${name} in the second chunk: logs the class name only, rethrows, reports nothing as done`, async () => {
      // 1 001 expired rows: the first chunk (1 000 rows per statement) commits, the second fails.
      await insertMany("f-old", 1_001, NOW - 40 * DAY_MS);
      await insert("f-new", NOW - DAY_MS);
      const { db, runs } = failingTrimDb(2, failure);

      let thrown: unknown;
      try {
        await runCron({ DB: db });
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(Error);
      expect((thrown as Error).name).toBe(className);
      expect((thrown as Error).message).toContain(quoted);
      expect(runs()).toBe(2);

      // One error line: the outcome and the class name, nothing of the message, no counts.
      expect(error).toHaveBeenCalledTimes(1);
      const line = String(error.mock.calls[0]![0]);
      expect(JSON.parse(line)).toEqual({ msg: "retention", outcome: "failed", error: className });
      expect(line).not.toContain(quoted);
      // Nothing half-done is reported as done: no "trimmed" line, no deleted count anywhere.
      expect(log).not.toHaveBeenCalled();

      // What the first chunk deleted stays deleted (it committed); the rest waits for the next run.
      expect(await countRows("nonce LIKE 'f-old-%'")).toBe(1);
      expect(await countRows("nonce = 'f-new'")).toBe(1);
    });
  }

  it("a failure in the very first statement deletes nothing and is logged and rethrown the same way", async () => {
    await insertMany("g-old", 5, NOW - 40 * DAY_MS);
    const { db } = failingTrimDb(1, () => Promise.reject(new D1QueryTimeout("quoted g-old-1")));
    await expect(runCron({ DB: db })).rejects.toThrow(D1QueryTimeout);
    expect(error.mock.calls.map(([l]) => JSON.parse(String(l)))).toEqual([{ msg: "retention", outcome: "failed", error: "D1QueryTimeout" }]);
    expect(log).not.toHaveBeenCalled();
    expect(await countRows()).toBe(5);
  });
});

describe("the Cron Trigger as deployed", () => {
  const toml = () => (testEnv as unknown as { WRANGLER_TOML: string }).WRANGLER_TOML;

  /** The lines of one `[section]` of wrangler.toml, up to the next section header. */
  function section(name: string): string {
    const lines = toml().split("\n");
    const start = lines.findIndex((l) => l.trim() === `[${name}]`);
    expect(start, `[${name}] in wrangler.toml`).toBeGreaterThanOrEqual(0);
    const end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
    return lines.slice(start + 1, end === -1 ? undefined : end).join("\n");
  }

  it("wrangler.toml schedules one trigger, daily at 03:17 UTC, as the README documents", () => {
    const crons = /^\s*crons\s*=\s*(\[.*\])\s*$/m.exec(section("triggers"));
    expect(crons, "crons = [...] under [triggers]").not.toBeNull();
    expect(JSON.parse(crons![1]!)).toEqual(["17 3 * * *"]);
  });

  it("the Worker wrangler.toml deploys exports scheduled, and a run through it trims", async () => {
    expect(/^main\s*=\s*"([^"]+)"\s*$/m.exec(toml())?.[1]).toBe("src/index.ts"); // the module imported above
    expect(typeof worker.scheduled).toBe("function");

    const cron = JSON.parse(/^\s*crons\s*=\s*(\[.*\])\s*$/m.exec(section("triggers"))![1]!)[0] as string;
    await insert("d-31d", NOW - 31 * DAY_MS);
    await insert("d-30d-1ms", NOW - 30 * DAY_MS - 1);
    await insert("d-29d", NOW - 29 * DAY_MS);
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      const controller = createScheduledController({ scheduledTime: NOW, cron });
      expect(controller.cron).toBe("17 3 * * *");
      const ctx = createExecutionContext();
      const scheduled: ExportedHandlerScheduledHandler<Env> = worker.scheduled;
      await scheduled(controller, testEnv as unknown as Env, ctx);
      await waitOnExecutionContext(ctx);
      expect(await nonces()).toEqual(["d-29d"]);
      expect(log.mock.calls.map(([l]) => JSON.parse(String(l)))).toEqual([
        expect.objectContaining({ msg: "retention", outcome: "trimmed", retentionDays: 30, deleted: 2, complete: true, cutoffMs: NOW - 2_592_000_000 }),
      ]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("the runtime's own entrypoint for the main module (exports.default) runs the trim on a scheduled event", async () => {
    const cron = JSON.parse(/^\s*crons\s*=\s*(\[.*\])\s*$/m.exec(section("triggers"))![1]!)[0] as string;
    await insert("e-31d", NOW - 31 * DAY_MS);
    await insert("e-1d", NOW - DAY_MS);
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      const entry = (workerExports as unknown as { default: { scheduled(o: { scheduledTime: number; cron: string }): Promise<unknown> } }).default;
      await entry.scheduled({ scheduledTime: NOW, cron });
      expect(await nonces()).toEqual(["e-1d"]);
      expect(log.mock.calls.map(([l]) => JSON.parse(String(l)))).toEqual([
        expect.objectContaining({ msg: "retention", outcome: "trimmed", deleted: 1, cutoffMs: NOW - 2_592_000_000 }),
      ]);
    } finally {
      vi.restoreAllMocks();
    }
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
    await insert("o-last", NOW - DAY_MS);
    await trimDeliveries(testEnv.DB, 30, NOW);
    expect(await nonces()).toEqual(["o-new", "o-last"]);
  });

  it("never deletes the newest row, however old: the next id stays above every id ever given", async () => {
    await insert("only-a", NOW - 40 * DAY_MS);
    await insert("only-b", NOW - 35 * DAY_MS);
    const newest = (await testEnv.DB.prepare("SELECT max(id) AS id FROM deliveries").first<{ id: number }>())!.id;
    expect(await trimDeliveries(testEnv.DB, 30, NOW)).toMatchObject({ deleted: 1 });
    expect(await nonces()).toEqual(["only-b"]);
    await insert("after", NOW);
    const next = (await testEnv.DB.prepare("SELECT id FROM deliveries WHERE nonce = 'after'").first<{ id: number }>())!.id;
    expect(next).toBe(newest + 1);
  });

  it("refuses a retention below one day", async () => {
    await expect(trimDeliveries(testEnv.DB, 0, NOW)).rejects.toThrow(RangeError);
  });
});

describe("AUDIT_RETENTION_DAYS validation", () => {
  const valid = { ONEACCESS_BEARER_TOKEN: "b".repeat(32), ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "none" };
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
      const operator = { authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN}` };
      const res = await callWorker(new Request("https://receiver.test/healthz", { headers: operator }), { AUDIT_RETENTION_DAYS: "forever" });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ status: "misconfigured", problems: [{ setting: "AUDIT_RETENTION_DAYS" }] });
    } finally {
      vi.restoreAllMocks();
    }
  });
});
