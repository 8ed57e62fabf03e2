// The replay store's Durable Object on its own: one record per replay key, written once the work succeeded;
// copies answered from it or from the request in flight; refusals recorded apart; expiry, purge and alarms
// on the object's injected clock (no sleeping); eviction. Each test uses its own object and fresh keys.
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { EventLedger } from "../../src/ingest/event-ledger";
import type { LedgerRequest, Work } from "../../src/ingest/types";
import { randomNonce } from "../sender/oneaccess-sender";

const TTL = 600_000;
/** The purge interval and the longest time to live the object accepts, as the contract's operator docs state them. */
const PURGE_INTERVAL_MS = 60_000;
const MAX_TTL_MS = 30 * 86_400_000;
const T0 = 1_900_000_000_000;
/** The cost of a call that did nothing. */
const NOTHING = { d1Queries: 0, d1RowsRead: 0, d1RowsWritten: 0, storeRowsWritten: 0 };

/** A fresh object per test (its own name), so rows and alarms of other tests never interfere. */
function freshStore(name = `test-${randomNonce(20)}`): DurableObjectStub<EventLedger> {
  return env.EVENT_LEDGER.get(env.EVENT_LEDGER.idFromName(name));
}

const setClock = (stub: DurableObjectStub<EventLedger>, now: number) =>
  runInDurableObject(stub, (instance) => {
    instance.clock = () => now;
  });

const echo = (text = randomNonce(12)): Work => ({ kind: "echo", echo: text });
const refusal = (message = "data does not match eventType"): Work => ({ kind: "refuse", eventType: "CHECK_URL", message });

function request(key: string, work: Work, ttlMs = TTL): LedgerRequest {
  return { key, ttlMs, nonce: `n-${key.slice(0, 24)}`, receivedAtMs: T0, work };
}

const newKey = () => Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16).padStart(2, "0")).join("");

async function auditRows(nonce: string) {
  const { results } = await env.DB.prepare("SELECT event_type, code, message FROM deliveries WHERE nonce = ? ORDER BY id").bind(nonce).all();
  return results;
}

interface Row {
  key: string;
  code: string;
  expires_at: number;
}
const rows = (stub: DurableObjectStub<EventLedger>) =>
  runInDurableObject(stub, (_i, state) =>
    state.storage.sql.exec<Row & Record<string, SqlStorageValue>>("SELECT key, code, expires_at FROM replies ORDER BY key").toArray(),
  );

const alarmOf = (stub: DurableObjectStub<EventLedger>) => runInDurableObject(stub, (_i, state) => state.storage.getAlarm());

/** Inserts `count` records directly, expiring at `expiresAt`. */
const seed = (stub: DurableObjectStub<EventLedger>, prefix: string, count: number, expiresAt: number) =>
  runInDurableObject(stub, (_i, state) => {
    for (let i = 0; i < count; i++) {
      state.storage.sql.exec("INSERT INTO replies (key, code, message, plaintext, expires_at) VALUES (?, '200', 'success', '', ?)", `${prefix}-${i}`, expiresAt);
    }
  });

/** The message a call rejects with (RPC promises are awaited once, not probed). */
async function rejection(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error("expected the call to reject");
}

describe("one record per replay key", () => {
  it("the first request does the work and records its reply; a copy gets that reply and does nothing", async () => {
    const g = freshStore();
    await setClock(g, T0);
    const key = newKey();
    const first = await g.processOnce(request(key, echo("hello")));
    expect(first).toEqual({
      state: "done",
      reply: { code: "200", message: "success", plaintext: "hello" },
      entityId: null,
      // One audit row written in one statement; the record: its row and its expiry index entry.
      cost: { d1Queries: 1, d1RowsRead: 0, d1RowsWritten: 1, storeRowsWritten: 2 },
    });
    const again = await g.processOnce(request(key, echo("hello")));
    expect(again).toEqual({ state: "duplicate", reply: { code: "200", message: "success", plaintext: "hello" }, cost: NOTHING });
    expect(await auditRows(request(key, echo()).nonce)).toEqual([{ event_type: "CHECK_URL", code: "200", message: "success" }]);
    expect(await rows(g)).toEqual([{ key, code: "200", expires_at: T0 + TTL }]);
  });

  it("a refused payload is recorded apart: audited once, and it never takes the genuine request's place", async () => {
    const g = freshStore();
    const key = newKey();
    const nonce = request(key, echo()).nonce;
    expect(await g.processOnce(request(key, refusal()))).toMatchObject({ state: "done", reply: { code: "400" } });
    expect(await g.processOnce(request(key, refusal("id must start with org_")))).toMatchObject({ state: "duplicate" });
    expect(await auditRows(nonce)).toEqual([{ event_type: "CHECK_URL", code: "400", message: "data does not match eventType" }]);
    // The genuine request under the same key is still new.
    expect(await g.processOnce(request(key, echo("genuine")))).toMatchObject({ state: "done", reply: { code: "200", plaintext: "genuine" } });
    // And a refused copy after it is still audited once, not answered with the genuine reply.
    expect(await g.processOnce(request(key, refusal()))).toMatchObject({ state: "duplicate", reply: { code: "400" } });
    expect(await auditRows(nonce)).toHaveLength(2);
  });

  it("copies arriving while the first is being worked on wait for it and get its reply: the work runs once", async () => {
    const g = freshStore();
    const key = newKey();
    const answers = await Promise.all(Array.from({ length: 20 }, () => g.processOnce(request(key, echo("once")))));
    expect(answers.filter((a) => a.state === "done")).toHaveLength(1);
    expect(answers.filter((a) => a.state === "duplicate")).toHaveLength(19);
    for (const a of answers) expect(a).toMatchObject({ reply: { code: "200", plaintext: "once" } });
    expect(await auditRows(request(key, echo()).nonce)).toHaveLength(1);
  });

  it("work that fails records nothing, so the next copy does it again", async () => {
    const g = freshStore();
    const key = newKey();
    const failing = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return async () => Promise.reject(new Error("D1_ERROR: simulated"));
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const saved = await runInDurableObject(g, (instance) => {
      const own = instance as unknown as { env: Env };
      const before = own.env;
      own.env = { ...before, DB: failing };
      return before;
    });
    expect(await g.processOnce(request(key, echo()))).toEqual({ state: "failed", error: "Error", cost: { ...NOTHING, d1Queries: 1 } });
    expect(await rows(g)).toEqual([]);
    await runInDurableObject(g, (instance) => {
      (instance as unknown as { env: Env }).env = saved;
    });
    expect(await g.processOnce(request(key, echo("retried")))).toMatchObject({ state: "done", reply: { plaintext: "retried" } });
  });

  it("refuses a call without a key or with a time to live out of range", async () => {
    const g = freshStore();
    expect(await rejection(g.processOnce(request("", echo())))).toMatch(/key must be a non-empty string/);
    for (const ttl of [0, -1, Number.NaN, MAX_TTL_MS + 1]) {
      expect(await rejection(g.processOnce(request(newKey(), echo(), ttl)))).toMatch(/ttlMs out of range/);
    }
    expect(await g.processOnce(request(newKey(), echo(), MAX_TTL_MS))).toMatchObject({ state: "done" });
  });
});

describe("expiry, purge and the alarm (on the object's clock)", () => {
  it("a record counts until it expires; after that the key is new again and its record replaced", async () => {
    const g = freshStore();
    const key = newKey();
    await setClock(g, T0);
    await g.processOnce(request(key, echo("first")));
    await setClock(g, T0 + TTL - 1);
    expect(await g.processOnce(request(key, echo("second")))).toMatchObject({ state: "duplicate", reply: { plaintext: "first" } });
    await setClock(g, T0 + TTL);
    expect(await g.processOnce(request(key, echo("second")))).toMatchObject({ state: "done", reply: { plaintext: "second" } });
    expect(await rows(g)).toEqual([{ key, code: "200", expires_at: T0 + 2 * TTL }]);
  });

  it("the first record arms the alarm at its expiry (not sooner than the purge interval); later ones leave it", async () => {
    const g = freshStore();
    await setClock(g, T0);
    await g.processOnce(request(newKey(), echo(), 10_000));
    expect(await alarmOf(g)).toBe(T0 + PURGE_INTERVAL_MS);
    await g.processOnce(request(newKey(), echo(), TTL));
    expect(await alarmOf(g)).toBe(T0 + PURGE_INTERVAL_MS);
  });

  it("the alarm purges expired records only and re-arms for the earliest remaining one", async () => {
    const g = freshStore();
    await seed(g, "old", 20, T0 - 1_000);
    await seed(g, "edge", 5, T0 + 3_000);
    await seed(g, "later", 2, T0 + 5 * PURGE_INTERVAL_MS);
    await setClock(g, T0);
    await runInDurableObject(g, (instance) => instance.alarm());
    expect((await rows(g)).map((r) => r.key.split("-")[0])).toEqual([...Array(5).fill("edge"), "later", "later"]);
    // The "edge" records are due within the interval: the next run waits the interval.
    expect(await alarmOf(g)).toBe(T0 + PURGE_INTERVAL_MS);
    await setClock(g, T0 + PURGE_INTERVAL_MS);
    await runInDurableObject(g, (instance) => instance.alarm());
    expect(await g.size()).toBe(2);
    // When what remains is due later than the interval, the alarm waits for it.
    expect(await alarmOf(g)).toBe(T0 + 5 * PURGE_INTERVAL_MS);
    await setClock(g, T0 + 5 * PURGE_INTERVAL_MS);
    await runInDurableObject(g, (instance) => instance.alarm());
    expect(await g.size()).toBe(0);
    expect(await alarmOf(g)).toBeNull();
  });

  it("one alarm run purges at most 5 000 records and re-arms at once for the rest", async () => {
    const g = freshStore();
    await seed(g, "bulk", 5_000 + 250, T0 - 1_000);
    await setClock(g, T0);
    const left = await runInDurableObject(g, async (instance) => {
      await instance.alarm();
      return instance.size();
    });
    expect(left).toBe(250);
    expect(await alarmOf(g)).toBe(T0);
    await runInDurableObject(g, (instance) => instance.alarm());
    expect(await g.size()).toBe(0);
  });

  it("running the alarm twice, or with nothing to do, is harmless", async () => {
    const g = freshStore();
    await setClock(g, T0);
    await g.processOnce(request(newKey(), echo()));
    await runInDurableObject(g, async (instance) => {
      await instance.alarm();
      await instance.alarm();
    });
    expect(await g.size()).toBe(1);
    expect(await alarmOf(g)).toBe(T0 + TTL);

    const empty = freshStore();
    expect(await runDurableObjectAlarm(empty)).toBe(false);
    await runInDurableObject(empty, (instance) => instance.alarm());
    expect(await alarmOf(empty)).toBeNull();
  });

  it("an alarm the instance believes armed but that was lost long ago is re-armed by the next record", async () => {
    const g = freshStore();
    await setClock(g, T0);
    await g.processOnce(request(newKey(), echo()));
    await runInDurableObject(g, async (instance, state) => {
      (instance as unknown as { alarmAt: number }).alarmAt = T0 - 2 * PURGE_INTERVAL_MS;
      await state.storage.deleteAlarm();
    });
    await g.processOnce(request(newKey(), echo()));
    expect(await alarmOf(g)).toBe(T0 + TTL);
  });
});

describe("durability", () => {
  it("a recorded reply survives the object's eviction; the new instance knows the armed alarm", async () => {
    const name = `evict-${randomNonce(20)}`;
    const key = newKey();
    const before = freshStore(name);
    await setClock(before, T0);
    await before.processOnce(request(key, echo("kept")));
    const alarm = await alarmOf(before);

    await abortAllDurableObjects();

    const after = freshStore(name);
    await setClock(after, T0 + 1);
    expect(await after.processOnce(request(key, echo("other")))).toEqual({ state: "duplicate", reply: { code: "200", message: "success", plaintext: "kept" }, cost: NOTHING });
    expect(await alarmOf(after)).toBe(alarm);
    await after.processOnce(request(newKey(), echo()));
    expect(await alarmOf(after)).toBe(alarm);
  });
});
