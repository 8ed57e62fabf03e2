// Delivery: at least once, in order per entity, never lost. Each change of the log reaches the endpoint (the
// sink Worker) once when it answers 2xx, in commit order per entity, concurrently across entities; a failure
// is retried on the backoff schedule with the same webhook-id while later changes of its entity wait; after 24
// hours it is a dead letter that holds nothing back; while the endpoint fails, new changes are taken one at a
// time; a change whose poke was lost is sent by the next heartbeat run. Each run stays within the Free plan's
// 50 subrequests and writes one row of its own. The dispatcher's clock is injected: nothing sleeps.
import { createScheduledController, runInDurableObject } from "cloudflare:test";
import worker from "../../src/index";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createUser, sendEvent } from "../api/support";
import { withDirectoryDb } from "../helpers/directory-db";
import { countD1 } from "../helpers/d1-counter";
import { SCAN_ROWS } from "../../src/read/changes";
import { ENDPOINT_DOWN_AFTER_RUNS, FOLLOW_UP_MS, HEARTBEAT_MS, MAX_SENDS_PER_RUN, type WebhookDispatcher } from "../../src/webhooks/dispatcher";
import {
  alarmOf,
  appendChange,
  appendNonChange,
  bodyOf,
  dispatcher,
  DISPATCHER_NAME,
  fireAlarm,
  fireAlarmOf,
  HOUR,
  ledgersWithWebhooks,
  newestChange,
  pokesSent,
  SECOND,
  setClock,
  settle,
  sink,
  stored,
  T0,
  testEnv,
  webhookEnv,
  type Received,
} from "./support";

beforeEach(() => sink.reset());

const ids = (rs: Received[]) => rs.map((r) => r.headers["webhook-id"]!);
const delivered = (rs: Received[]) => rs.filter((r) => r.answered === 200);
const forEntity = (rs: Received[], entityId: string) => rs.filter((r) => bodyOf(r).data.entity_id === entityId);

describe("in order per entity, once each, under concurrent events", () => {
  let restore: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await restore?.();
    restore = null;
  });

  it("events racing through /callback: the ledgers poke the dispatcher, which sends every change once, per entity in commit order", async () => {
    const d = await dispatcher({ name: DISPATCHER_NAME });
    restore = await ledgersWithWebhooks();
    await sink.mode({ delayMs: 15 });
    const from = await newestChange();

    const users = await Promise.all(Array.from({ length: 6 }, (_, i) => createUser(`order-${i}`)));
    // Four updates of each user at once: they race on their entity; the log has them in commit order.
    const updates = users.flatMap((id, i) => [1, 2, 3, 4].map((n) => sendEvent("UPDATE_USER", { id, username: `order-${i}`, name: `Name ${n}` })));
    for (const sent of await Promise.all(updates)) expect(sent.code).toBe("200");
    await pokesSent();
    // A poke asked for a run now (on the dispatcher's clock).
    expect(await alarmOf(d)).toBe(T0);
    await settle(d);

    const log = await testEnv.DB.prepare("SELECT id, entity_id, entity_version FROM deliveries WHERE id > ? AND change_type IS NOT NULL ORDER BY id")
      .bind(from)
      .all<{ id: number; entity_id: string; entity_version: number }>();
    expect(log.results.length).toBeGreaterThanOrEqual(6 + 6); // every create, and at least one update each
    const got = await sink.received();
    // Once each: every change of the log, nothing else, no id twice.
    expect(ids(got).sort()).toEqual(log.results.map((r) => String(r.id)).sort());
    for (const id of users) {
      const mine = forEntity(got, id);
      const expected = log.results.filter((r) => r.entity_id === id);
      expect(ids(mine)).toEqual(expected.map((r) => String(r.id)));
      expect(mine.map((r) => bodyOf(r).data.version)).toEqual(expected.map((r) => r.entity_version));
      expect(mine.map((r) => bodyOf(r).data.version)).toEqual([...mine.map((r) => bodyOf(r).data.version)].sort((a, b) => a - b));
    }
    // Concurrently across entities.
    expect(await sink.maxInFlight()).toBeGreaterThan(1);
    expect((await stored(d)).held).toEqual([]);
  });

  it("a run's chains: one entity's changes go one after another, never two of them at once", async () => {
    const d = await dispatcher();
    await sink.mode({ delayMs: 10 });
    for (let v = 1; v <= 5; v++) await appendChange("usr_chainserial1", { version: v });
    await d.poke();
    await settle(d);
    const got = forEntity(await sink.received(), "usr_chainserial1");
    expect(got.map((r) => bodyOf(r).data.version)).toEqual([1, 2, 3, 4, 5]);
    // Each arrived after the previous one was answered (the sink waits 10 ms before answering).
    for (let i = 1; i < got.length; i++) expect(got[i]!.at - got[i - 1]!.at).toBeGreaterThanOrEqual(10);
  });
});

describe("retries with backoff, then delivery with the same webhook-id", () => {
  it("a failing change is retried at 30 s, then 60 s later, while its entity's next change waits and other entities go on", async () => {
    const d = await dispatcher();
    const a1 = await appendChange("usr_retryaaaaaa", { version: 1 });
    const b1 = await appendChange("usr_retrybbbbbb", { version: 1 });
    const a2 = await appendChange("usr_retryaaaaaa", { version: 2 });
    await sink.mode({ byEntity: { usr_retryaaaaaa: 503 } });
    await d.poke();
    const first = await fireAlarm(d);
    expect(first).toMatchObject({ taken: 3, sent: 2, delivered: 1, failed: 1, dead: 0 });
    expect(ids(await sink.received())).toEqual(expect.arrayContaining([String(a1), String(b1)]));
    expect(ids(await sink.received())).not.toContain(String(a2));
    expect((await stored(d)).held).toEqual([
      { position: a1, entity_id: "usr_retryaaaaaa", attempts: 1, next_attempt_at: T0 + 30 * SECOND, last_error: "HTTP 503" },
      { position: a2, entity_id: "usr_retryaaaaaa", attempts: 0, next_attempt_at: null, last_error: null },
    ]);
    // The run took changes, so it looks again a second later (for stragglers), then sleeps until the retry.
    expect(await alarmOf(d)).toBe(T0 + FOLLOW_UP_MS);
    await setClock(d, T0 + FOLLOW_UP_MS);
    expect(await fireAlarm(d)).toMatchObject({ taken: 0, sent: 0 });
    expect(await alarmOf(d)).toBe(T0 + 30 * SECOND);

    // Not a moment sooner.
    await setClock(d, T0 + 30 * SECOND - 1);
    await expect(fireAlarm(d)).rejects.toThrow("the alarm is due 1 ms later");
    await setClock(d, T0 + 30 * SECOND);
    expect(await fireAlarm(d)).toMatchObject({ sent: 1, failed: 1 });
    expect((await stored(d)).held[0]).toMatchObject({ attempts: 2, next_attempt_at: T0 + 90 * SECOND });

    await sink.mode({});
    await setClock(d, T0 + 90 * SECOND);
    expect(await fireAlarm(d)).toMatchObject({ sent: 2, delivered: 2, failed: 0 });
    const forA = forEntity(await sink.received(), "usr_retryaaaaaa");
    expect(forA.map((r) => [r.headers["webhook-id"], r.answered, r.headers["webhook-timestamp"]])).toEqual([
      [String(a1), 503, String(T0 / 1000)],
      [String(a1), 503, String((T0 + 30 * SECOND) / 1000)],
      [String(a1), 200, String((T0 + 90 * SECOND) / 1000)],
      [String(a2), 200, String((T0 + 90 * SECOND) / 1000)],
    ]);
    expect(new Set(forA.filter((r) => r.headers["webhook-id"] === String(a1)).map((r) => r.body)).size).toBe(1);
    expect(await stored(d)).toMatchObject({ held: [], dead: [], state: { delivered: 3 } });
  });

  it("when retries take a run's whole budget, the next run comes at once for the log", async () => {
    const d = await dispatcher();
    for (let i = 0; i < MAX_SENDS_PER_RUN; i++) await appendChange(`usr_budgetretry${String(i).padStart(2, "0")}`);
    await sink.mode({ status: 503 });
    await d.poke();
    expect(await fireAlarm(d)).toMatchObject({ taken: 40, failed: 40 });
    const waiting = await appendChange("usr_budgetnew001");
    await sink.mode({});
    await setClock(d, T0 + 30 * SECOND);
    expect(await d.runOnce()).toMatchObject({ taken: 0, delivered: 40 });
    expect(await alarmOf(d)).toBe(T0 + 30 * SECOND);
    expect(await fireAlarm(d)).toMatchObject({ taken: 1, delivered: 1 });
    expect(ids(await sink.received()).at(-1)).toBe(String(waiting));
  });

  it("no answer within the timeout is a failure, retried like any other", async () => {
    const d = await dispatcher();
    await runInDurableObject(d, (instance: WebhookDispatcher) => {
      instance.requestTimeoutMs = 200;
    });
    const p = await appendChange("usr_hangshangsh", { version: 1 });
    await sink.mode({ byEntity: { usr_hangshangsh: "hang" } });
    await d.poke();
    expect(await fireAlarm(d)).toMatchObject({ sent: 1, failed: 1 });
    expect((await stored(d)).held).toEqual([
      { position: p, entity_id: "usr_hangshangsh", attempts: 1, next_attempt_at: T0 + 30 * SECOND, last_error: "no answer within 0.2 s" },
    ]);
    await sink.mode({});
    await setClock(d, T0 + 30 * SECOND);
    expect(await fireAlarm(d)).toMatchObject({ delivered: 1 });
  });

  it("a redirect is a failure: the message goes to the configured URL or nowhere", async () => {
    const d = await dispatcher();
    await appendChange("usr_redirected01", { version: 1 });
    await sink.mode({ status: 307 });
    await d.poke();
    expect(await fireAlarm(d)).toMatchObject({ failed: 1 });
    expect((await stored(d)).held[0]).toMatchObject({ last_error: "HTTP 307" });
    expect(await sink.received()).toHaveLength(1);
  });
});

describe("dead letters", () => {
  it("after 24 hours of failures a change is a dead letter; it holds its entity's later changes back no longer", async () => {
    const d = await dispatcher();
    const c1 = await appendChange("usr_deadletter01", { version: 1 });
    const c2 = await appendChange("usr_deadletter01", { version: 2 });
    await sink.mode({ byId: { [c1]: 500 } });
    await d.poke();
    const attemptsAt: number[] = [];
    let report = await fireAlarm(d);
    attemptsAt.push(T0);
    // Follow the message's schedule (the object wakes by then; heartbeat runs in between change nothing).
    while (report.dead === 0) {
      const at = (await stored(d)).held.find((h) => h.position === c1)!.next_attempt_at!;
      expect(at - T0).toBeLessThanOrEqual(24 * HOUR);
      expect(await alarmOf(d)).toBeLessThanOrEqual(at);
      await setClock(d, at);
      report = (await d.runOnce())!;
      attemptsAt.push(at);
    }
    const delays = attemptsAt.slice(1).map((t, i) => (t - attemptsAt[i]!) / SECOND);
    // 30 s doubling to a 4-hour cap; the last attempt exactly 24 hours after the first failure.
    // 30 s doubling to a 4-hour cap, the last one cut short so the final attempt is exactly 24 hours after the first.
    expect(delays).toEqual([30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400, 14400, 14400, 13470]);
    expect(attemptsAt.at(-1)).toBe(T0 + 24 * HOUR);
    const { dead, held } = await stored(d);
    expect(dead).toEqual([{ position: c1, entity_id: "usr_deadletter01", attempts: 15, last_error: "HTTP 500", dead_at: T0 + 24 * HOUR }]);
    // Its entity's next change was waiting behind it; now it goes at once.
    expect(held).toEqual([{ position: c2, entity_id: "usr_deadletter01", attempts: 0, next_attempt_at: null, last_error: null }]);
    expect(await alarmOf(d)).toBe(T0 + 24 * HOUR);
    expect(await fireAlarm(d)).toMatchObject({ sent: 1, delivered: 1 });
    expect(delivered(forEntity(await sink.received(), "usr_deadletter01")).map((r) => r.headers["webhook-id"])).toEqual([String(c2)]);

    // Redelivered: back in line with a new retry period, same id and body.
    await sink.mode({});
    expect(await d.redeliver(c1)).toBe(true);
    expect(await d.redeliver(c1)).toBe(false);
    expect(await alarmOf(d)).toBe(T0 + 24 * HOUR);
    expect(await fireAlarm(d)).toMatchObject({ sent: 1, delivered: 1 });
    const c1s = forEntity(await sink.received(), "usr_deadletter01").filter((r) => r.headers["webhook-id"] === String(c1));
    expect(c1s.map((r) => r.answered)).toEqual([...Array(15).fill(500), 200]);
    expect(new Set(c1s.map((r) => r.body)).size).toBe(1);
    expect(await stored(d)).toMatchObject({ held: [], dead: [] });
  });

  it("redeliver all puts every dead letter back, and a dead letter that fails again gets a new 24 hours", async () => {
    const d = await dispatcher();
    const p = [await appendChange("usr_deadall00001"), await appendChange("usr_deadall00002"), await appendChange("usr_deadall00003")];
    await sink.mode({ status: 500 });
    await d.poke();
    await fireAlarm(d);
    for (let t = 0; (await stored(d)).dead.length < 3; t++) {
      expect(t).toBeLessThan(20);
      await setClock(d, Math.max(...(await stored(d)).held.map((h) => h.next_attempt_at!)));
      await d.runOnce();
    }
    expect((await d.status()).deadCount).toBe(3);
    expect(await d.redeliverAll()).toBe(3);
    expect(await d.redeliverAll()).toBe(0);
    const revivedAt = T0 + 24 * HOUR;
    await setClock(d, revivedAt);
    expect(await fireAlarm(d)).toMatchObject({ sent: 3, failed: 3, dead: 0 });
    expect((await stored(d)).held.map((h) => [h.position, h.attempts, h.next_attempt_at])).toEqual(p.map((x) => [x, 1, revivedAt + 30 * SECOND]));
    await sink.mode({});
    await setClock(d, revivedAt + 30 * SECOND);
    expect(await fireAlarm(d)).toMatchObject({ delivered: 3 });
    expect((await d.status()).deadCount).toBe(0);
  });
  it("a dead letter holds personal data (its body) no longer than the audit retention keeps the change log", async () => {
    const d = await dispatcher({ env: webhookEnv({ AUDIT_RETENTION_DAYS: "7" }) });
    await appendChange("usr_deadexpire01");
    await sink.mode({ status: 500 });
    await d.poke();
    await fireAlarm(d);
    while ((await stored(d)).dead.length === 0) {
      await setClock(d, Math.max(...(await stored(d)).held.map((h) => h.next_attempt_at!)));
      await d.runOnce();
    }
    const deadAt = (await stored(d)).dead[0]!.dead_at;
    // Just within the retention: kept, and still redeliverable.
    await setClock(d, deadAt + 7 * 24 * HOUR);
    await d.runOnce();
    expect((await stored(d)).dead).toHaveLength(1);
    // Past it: gone, like the change record it was made from.
    await setClock(d, deadAt + 7 * 24 * HOUR + 1);
    await d.runOnce();
    expect((await stored(d)).dead).toEqual([]);
    expect((await d.status()).deadCount).toBe(0);
  });
});

describe("while the endpoint fails", () => {
  it("one refused message slows nobody down: new changes keep going at full speed", async () => {
    const d = await dispatcher();
    await appendChange("usr_refusedonce1");
    await sink.mode({ byEntity: { usr_refusedonce1: 422 } });
    await d.poke();
    expect(await fireAlarm(d)).toMatchObject({ failed: 1 });
    for (let i = 0; i < 45; i++) await appendChange(`usr_afterrefusal${String(i).padStart(2, "0")}`);
    await setClock(d, T0 + FOLLOW_UP_MS);
    expect(await fireAlarm(d)).toMatchObject({ taken: 40, delivered: 40 });
    expect((await stored(d)).state).toMatchObject({ endpoint_failures: 0, probe_at: null });
  });

  it(`after ${ENDPOINT_DOWN_AFTER_RUNS} runs whose new messages all failed, new changes go one at a time at the endpoint's backoff; all flow once it answers`, async () => {
    const d = await dispatcher();
    const positions: number[] = [];
    for (let i = 0; i < 150; i++) positions.push(await appendChange(`usr_down${String(i).padStart(8, "0")}`));
    await sink.mode({ status: 503 });
    await d.poke();
    const down = await settle(d);
    expect(down.map((r) => [r.taken, r.failed])).toEqual([
      [40, 40],
      [40, 40],
      [40, 40],
    ]);
    expect((await stored(d)).state).toMatchObject({ endpoint_failures: 3, probe_at: T0 + 30 * SECOND });
    expect((await d.status()).endpointFailing).toBe(true);

    // Before the probe time nothing new is taken (and D1 is not even asked).
    const counted = countD1(testEnv.DB);
    await runInDurableObject(d, (instance: WebhookDispatcher) => {
      (instance as unknown as { env: Env }).env = { ...(instance as unknown as { env: Env }).env, DB: counted.db };
    });
    await setClock(d, T0 + 10 * SECOND);
    expect(await d.runOnce()).toMatchObject({ taken: 0, sent: 0 });
    expect(counted.tally.queries).toBe(0);

    // At the probe time the 120 retries come first (40 a run); then one new change, which fails too.
    await setClock(d, T0 + 30 * SECOND);
    expect((await settle(d)).map((r) => [r.taken, r.sent])).toEqual([
      [0, 40],
      [0, 40],
      [0, 40],
      [1, 1],
    ]);
    expect((await stored(d)).held).toHaveLength(121);
    expect((await stored(d)).state).toMatchObject({ endpoint_failures: 4, probe_at: T0 + 30 * SECOND + 60 * SECOND });

    // The endpoint is back: the first success clears the failing state and the rest of the log goes at full speed.
    await sink.mode({});
    await setClock(d, T0 + 2 * HOUR);
    await d.runOnce();
    await settle(d);
    expect(ids(delivered(await sink.received())).sort()).toEqual(positions.map(String).sort());
    expect(await stored(d)).toMatchObject({ held: [], dead: [], state: { delivered: 150, endpoint_failures: 0, probe_at: null } });
  });
});

describe("promptness and the safety net", () => {
  let restore: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await restore?.();
    restore = null;
  });

  it("an idle dispatcher runs on a heartbeat; after a run that took changes it comes back within a second", async () => {
    const d = await dispatcher();
    await d.runOnce();
    expect(await alarmOf(d)).toBe(T0 + HEARTBEAT_MS);
    await appendChange("usr_heartbeat001");
    await d.poke();
    expect(await alarmOf(d)).toBe(T0);
    expect(await fireAlarm(d)).toMatchObject({ taken: 1, delivered: 1 });
    expect(await alarmOf(d)).toBe(T0 + FOLLOW_UP_MS);
    // A poke while a run is due that soon does not move it.
    await d.poke();
    expect(await alarmOf(d)).toBe(T0 + FOLLOW_UP_MS);
    await setClock(d, T0 + FOLLOW_UP_MS);
    expect(await fireAlarm(d)).toMatchObject({ taken: 0, sent: 0 });
    expect(await alarmOf(d)).toBe(T0 + FOLLOW_UP_MS + HEARTBEAT_MS);
  });

  it("a change whose poke was lost (the ledger failed right after its D1 batch) is delivered by the next heartbeat run", async () => {
    const d = await dispatcher({ name: DISPATCHER_NAME });
    await d.runOnce();
    expect(await alarmOf(d)).toBe(T0 + HEARTBEAT_MS);
    restore = await ledgersWithWebhooks();

    // The batch commits, then the ledger throws: the change is in the log, no poke, the callback answers 500.
    const committedThenFailed = new Proxy(testEnv.DB, {
      get(target, prop) {
        if (prop === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            await target.batch(statements);
            throw new Error("D1_ERROR: lost after commit");
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const sent = await withDirectoryDb(committedThenFailed, () => sendEvent("CREATE_USER", { username: "lost-poke", name: "Lost Poke" }));
    expect(sent.code).toBe("500");
    const user = await testEnv.DB.prepare("SELECT id FROM users WHERE username = 'lost-poke'").first<{ id: string }>();
    expect(user).not.toBeNull();
    await pokesSent();
    // No run was asked for: the heartbeat is still the next one.
    expect(await alarmOf(d)).toBe(T0 + HEARTBEAT_MS);
    expect(await sink.received()).toEqual([]);

    await setClock(d, T0 + HEARTBEAT_MS);
    expect(await fireAlarm(d)).toMatchObject({ taken: 1, delivered: 1 });
    const got = await sink.received();
    expect(got.map((r) => [bodyOf(r).type, bodyOf(r).data.entity_id])).toEqual([["user.created", user!.id]]);
  });

  it("the daily cron wakes the dispatcher too (should every alarm have been lost), and only with webhooks on", async () => {
    const d = await dispatcher({ name: DISPATCHER_NAME });
    const cron = (env: Record<string, unknown>) =>
      worker.scheduled!(createScheduledController({ scheduledTime: T0, cron: "17 3 * * *" }), { ...testEnv, ...env } as unknown as Env);
    await cron({});
    expect(await alarmOf(d)).toBeNull();
    await cron(webhookEnv());
    expect(await alarmOf(d)).toBe(T0);
  });

  it("the ledgers poke only for events that may have changed the directory (not a CHECK_URL or a 404)", async () => {
    const d = await dispatcher({ name: DISPATCHER_NAME });
    await d.runOnce();
    restore = await ledgersWithWebhooks();
    expect((await sendEvent("CHECK_URL", "ping")).code).toBe("200");
    expect((await sendEvent("UPDATE_USER", { id: "usr_nosuchuser77", username: "nobody" })).code).toBe("404");
    await pokesSent();
    expect(await alarmOf(d)).toBe(T0 + HEARTBEAT_MS);
    await createUser("poked-once");
    await pokesSent();
    expect(await alarmOf(d)).toBe(T0);
  });

  it("with webhooks turned off a run sends nothing, keeps what it holds, and stops its heartbeat", async () => {
    const d = await dispatcher();
    await appendChange("usr_turnedoff001");
    await sink.mode({ status: 500 });
    await d.poke();
    await fireAlarm(d);
    expect((await stored(d)).held).toHaveLength(1);
    await runInDurableObject(d, (instance: WebhookDispatcher) => {
      (instance as unknown as { env: Env }).env = { ...testEnv, WEBHOOK_URL: "", WEBHOOK_SECRET: "" } as unknown as Env;
    });
    await setClock(d, T0 + 30 * SECOND);
    expect(await fireAlarmOf(d)).toBeNull();
    expect(await alarmOf(d)).toBeNull();
    expect((await stored(d)).held).toHaveLength(1);
    expect(await sink.received()).toHaveLength(1);
  });
});

describe("the Free plan's budget of one run", () => {
  it("at most 40 messages and one D1 batch (3 queries) a run, under 50 subrequests; one row written for the run's own state", async () => {
    const d = await dispatcher();
    const counted = countD1(testEnv.DB);
    await runInDurableObject(d, (instance: WebhookDispatcher) => {
      (instance as unknown as { env: Env }).env = { ...(instance as unknown as { env: Env }).env, DB: counted.db };
    });
    for (let i = 0; i < 100; i++) {
      await appendChange(`usr_budget${String(i).padStart(6, "0")}`);
      if (i % 10 === 0) await appendNonChange();
    }
    await d.poke();
    // Run by run: what reached the endpoint (subrequests) and the D1 statements made.
    const runs: Array<{ sent: number; d1Queries: number; rowsWritten: number }> = [];
    for (;;) {
      const [received, queries] = [(await sink.received()).length, counted.tally.queries];
      const alarm = await alarmOf(d);
      if (alarm === null || alarm > T0) break;
      const report = await fireAlarm(d);
      runs.push({ sent: (await sink.received()).length - received, d1Queries: counted.tally.queries - queries, rowsWritten: report.rowsWritten });
    }
    expect(runs).toEqual([
      { sent: MAX_SENDS_PER_RUN, d1Queries: 2, rowsWritten: 1 },
      { sent: MAX_SENDS_PER_RUN, d1Queries: 2, rowsWritten: 1 },
      { sent: 20, d1Queries: 2, rowsWritten: 1 },
    ]);
    for (const r of runs) expect(r.sent + r.d1Queries).toBeLessThanOrEqual(50);
    // The one batch reads the log; nothing is written to D1.
    expect(counted.tally.statements.every((s) => s.sql.includes("FROM deliveries"))).toBe(true);
    expect(counted.tally.rowsWritten).toBe(0);
  });

  it("behind a backlog a run reads the log's two ends and its 40 changes from D1, never the scan's 1 000 rows", async () => {
    const d = await dispatcher();
    const counted = countD1(testEnv.DB);
    await runInDurableObject(d, (instance: WebhookDispatcher) => {
      (instance as unknown as { env: Env }).env = { ...(instance as unknown as { env: Env }).env, DB: counted.db };
    });
    await testEnv.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
       INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms, change_type, changed, entity_version, event_at, entity)
       SELECT ?1, 'UPDATE_USER', 'backlog-' || i, '200', 'success', printf('usr_backlog%05d', i), 1, 'user.updated', '["name"]', 1, ?1, '{}' FROM n`,
    )
      .bind(T0)
      .run();
    await d.poke();
    expect(await fireAlarm(d)).toMatchObject({ taken: MAX_SENDS_PER_RUN, sent: MAX_SENDS_PER_RUN });
    expect(counted.tally.queries).toBe(2);
    // The log's bounds (a row each end) and the page (its 40 changes): the scan window is a range of ids.
    const [bounds, page] = counted.tally.statements.map((st) => st.rowsRead);
    expect(bounds).toBeLessThanOrEqual(2);
    expect(page).toBeLessThanOrEqual(MAX_SENDS_PER_RUN + 1);
    expect(counted.tally.rowsRead).toBeLessThan(SCAN_ROWS / 10);
    console.log(JSON.stringify({ msg: "a webhook run behind a backlog", d1RowsRead: counted.tally.rowsRead }));
  });

  it("a run with failures writes one row per failing message, plus its state", async () => {
    const d = await dispatcher();
    for (let i = 0; i < 10; i++) await appendChange(`usr_rowsfail${String(i).padStart(4, "0")}`);
    await sink.mode({ byEntity: { usr_rowsfail0003: 500, usr_rowsfail0007: 500 } });
    await d.poke();
    expect(await fireAlarm(d)).toMatchObject({ sent: 10, delivered: 8, failed: 2, rowsWritten: 3 });
  });
});
