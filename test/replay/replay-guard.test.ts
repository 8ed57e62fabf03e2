// The replay guard Durable Object on its own: state transitions, leases, expiry and purge, alarms, eviction.
// Storage is shared by every test of this file, so each test uses its own object and fresh nonces.
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ALARM_PURGE_MAX, INLINE_PURGE, INLINE_PURGE_EVERY, LEASE_MS, PURGE_INTERVAL_MS, type ReplayGuard } from "../../src/replay/replay-guard";
import type { Reservation, StoredReply } from "../../src/replay/types";
import { randomNonce } from "../sender/oneaccess-sender";

const TTL = 600_000;
const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);
const REPLY: StoredReply = { code: "200", message: "success", plaintext: '{"id":"usr_123"}' };

/** A fresh object per test (its own name), so rows and alarms of other tests never interfere. */
function freshGuard(): DurableObjectStub<ReplayGuard> {
  return env.REPLAY_GUARD.get(env.REPLAY_GUARD.idFromName(`test-${randomNonce(20)}`));
}

/**
 * The message a call rejects with. (Not `expect(...).rejects`: it probes properties of the RPC promise,
 * and each probe is a pipelined call that rejects again, unhandled.)
 */
async function rejection(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error("expected the call to reject");
}

function leaseOf(r: Reservation): string {
  if (r.state !== "fresh") throw new Error(`expected fresh, got ${r.state}`);
  return r.lease;
}

interface RawRow {
  nonce: string;
  state: string;
  lease: string;
  reserved_at: number;
  expires_at: number;
}

const rowOf = (stub: DurableObjectStub<ReplayGuard>, nonce: string) =>
  runInDurableObject(stub, (_i, state) => state.storage.sql.exec<RawRow & Record<string, SqlStorageValue>>("SELECT * FROM nonces WHERE nonce = ?", nonce).toArray()[0] ?? null);

const sql = (stub: DurableObjectStub<ReplayGuard>, query: string, ...bindings: SqlStorageValue[]) =>
  runInDurableObject(stub, (_i, state) => {
    state.storage.sql.exec(query, ...bindings);
  });

const alarmOf = (stub: DurableObjectStub<ReplayGuard>) => runInDurableObject(stub, (_i, state) => state.storage.getAlarm());

/** Inserts `count` rows directly (already expired when `expiresAt` is in the past). */
const seed = (stub: DurableObjectStub<ReplayGuard>, prefix: string, count: number, expiresAt: number) =>
  runInDurableObject(stub, (_i, state) => {
    for (let i = 0; i < count; i++) {
      state.storage.sql.exec(
        "INSERT INTO nonces (nonce, body_hash, state, lease, reserved_at, expires_at) VALUES (?, ?, 'committed', 'x', ?, ?)",
        `${prefix}-${i}`,
        HASH_A,
        expiresAt - TTL,
        expiresAt,
      );
    }
  });

describe("reserve / commit / release transitions", () => {
  it("fresh, then committed with the same body gives the stored reply back", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    const first = await g.reserve(nonce, HASH_A, TTL);
    expect(first.state).toBe("fresh");
    await g.commit(nonce, HASH_A, REPLY, leaseOf(first));
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
    // Asked again and again: still the same reply, the row unchanged.
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
    expect(await g.size()).toBe(1);
  });

  it("an empty reply (a delete) and a refusal (400) are stored as they were", async () => {
    const g = freshGuard();
    for (const reply of [
      { code: "200", message: "success", plaintext: "" },
      { code: "400", message: "username is required", plaintext: "" },
      { code: "404", message: "user not found", plaintext: "" },
    ]) {
      const nonce = randomNonce();
      await g.commit(nonce, HASH_A, reply, leaseOf(await g.reserve(nonce, HASH_A, TTL)));
      expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply });
    }
  });

  it("a different body for a committed nonce is a conflict, and the stored reply is kept", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    await g.commit(nonce, HASH_A, REPLY, leaseOf(await g.reserve(nonce, HASH_A, TTL)));
    expect(await g.reserve(nonce, HASH_B, TTL)).toEqual({ state: "conflict" });
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
  });

  it("a different body for an in-flight nonce is a conflict too", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    await g.reserve(nonce, HASH_A, TTL);
    expect(await g.reserve(nonce, HASH_B, TTL)).toEqual({ state: "conflict" });
  });

  it("the same body while in flight is in-flight, and does not extend or steal the lease", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    const lease = leaseOf(await g.reserve(nonce, HASH_A, TTL));
    const before = await rowOf(g, nonce);
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "in-flight" });
    expect(await rowOf(g, nonce)).toEqual(before);
    await g.commit(nonce, HASH_A, REPLY, lease);
  });

  it("concurrent reserves of one nonce: exactly one fresh", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    const results = await Promise.all(Array.from({ length: 50 }, () => g.reserve(nonce, HASH_A, TTL)));
    expect(results.filter((r) => r.state === "fresh")).toHaveLength(1);
    expect(results.filter((r) => r.state === "in-flight")).toHaveLength(49);
  });

  it("a reservation abandoned for LEASE_MS is fresh again, with a new lease; the old lease can no longer act", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    const oldLease = leaseOf(await g.reserve(nonce, HASH_A, TTL));
    // Just inside the lease: still in flight.
    await sql(g, "UPDATE nonces SET reserved_at = ? WHERE nonce = ?", Date.now() - LEASE_MS + 5_000, nonce);
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "in-flight" });
    // Past the lease: taken over.
    await sql(g, "UPDATE nonces SET reserved_at = ? WHERE nonce = ?", Date.now() - LEASE_MS - 1, nonce);
    const expiresBefore = (await rowOf(g, nonce))!.expires_at;
    const newLease = leaseOf(await g.reserve(nonce, HASH_A, TTL));
    expect(newLease).not.toBe(oldLease);
    const row = (await rowOf(g, nonce))!;
    expect(row).toMatchObject({ state: "reserved", lease: newLease });
    expect(Date.now() - row.reserved_at).toBeLessThan(LEASE_MS);
    expect(row.expires_at).toBe(expiresBefore); // the window is counted from the first sight
    // The stalled first holder wakes up: it can neither drop nor commit the new holder's reservation.
    expect(await g.release(nonce, HASH_A, oldLease)).toBe(false);
    expect(await rejection(g.commit(nonce, HASH_A, REPLY, oldLease))).toContain("no reservation to commit");
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "in-flight" });
    await g.commit(nonce, HASH_A, REPLY, newLease);
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
  });

  it("an abandoned reservation with a different body is still a conflict, not a takeover", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    await g.reserve(nonce, HASH_A, TTL);
    await sql(g, "UPDATE nonces SET reserved_at = ? WHERE nonce = ?", Date.now() - LEASE_MS - 1, nonce);
    expect(await g.reserve(nonce, HASH_B, TTL)).toEqual({ state: "conflict" });
  });

  it("release drops a matching reservation, so a retry is fresh", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    const lease = leaseOf(await g.reserve(nonce, HASH_A, TTL));
    expect(await g.release(nonce, HASH_A, lease)).toBe(true);
    expect(await rowOf(g, nonce)).toBeNull();
    const retry = await g.reserve(nonce, HASH_A, TTL);
    expect(retry.state).toBe("fresh");
    await g.commit(nonce, HASH_A, REPLY, leaseOf(retry));
  });

  it("release without a lease drops the reserved row of the same body (older callers)", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    await g.reserve(nonce, HASH_A, TTL);
    expect(await g.release(nonce, HASH_A)).toBe(true);
    expect(await g.size()).toBe(0);
  });

  it("release only drops a matching reserved row: not another body's, not a committed one, not another lease's", async () => {
    const g = freshGuard();
    const reserved = randomNonce();
    const lease = leaseOf(await g.reserve(reserved, HASH_A, TTL));
    expect(await g.release(reserved, HASH_B, lease)).toBe(false);
    expect(await g.release(reserved, HASH_A, "not-the-lease")).toBe(false);
    expect(await g.release(randomNonce(), HASH_A)).toBe(false);
    expect((await rowOf(g, reserved))?.state).toBe("reserved");

    const committed = randomNonce();
    const l2 = leaseOf(await g.reserve(committed, HASH_A, TTL));
    await g.commit(committed, HASH_A, REPLY, l2);
    expect(await g.release(committed, HASH_A, l2)).toBe(false);
    expect(await g.release(committed, HASH_A)).toBe(false);
    expect(await g.reserve(committed, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
  });

  it("commit without a reservation throws: unknown nonce, other body, wrong lease, released, or committed twice", async () => {
    const g = freshGuard();
    expect(await rejection(g.commit(randomNonce(), HASH_A, REPLY))).toContain("no reservation to commit");

    const nonce = randomNonce();
    const lease = leaseOf(await g.reserve(nonce, HASH_A, TTL));
    expect(await rejection(g.commit(nonce, HASH_B, REPLY, lease))).toContain("no reservation to commit");
    expect(await rejection(g.commit(nonce, HASH_A, REPLY, "not-the-lease"))).toContain("no reservation to commit");
    await g.commit(nonce, HASH_A, REPLY, lease);
    expect(await rejection(g.commit(nonce, HASH_A, { ...REPLY, message: "other" }, lease))).toContain("no reservation to commit");
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });

    const released = randomNonce();
    const l2 = leaseOf(await g.reserve(released, HASH_A, TTL));
    await g.release(released, HASH_A, l2);
    expect(await rejection(g.commit(released, HASH_A, REPLY, l2))).toContain("no reservation to commit");
  });

  it("refuses a nonsensical time to live or key rather than storing a row that never protects anything", async () => {
    const g = freshGuard();
    for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 31 * 24 * 3600 * 1000]) {
      expect(await rejection(g.reserve(randomNonce(), HASH_A, ttl))).toContain("ttlMs out of range");
    }
    expect(await rejection(g.reserve("", HASH_A, TTL))).toContain("nonce");
    expect(await rejection(g.reserve(randomNonce(), "", TTL))).toContain("bodyHash");
    expect(await g.size()).toBe(0);
  });

  it("works through the instance too (runInDurableObject), the same as through RPC", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    await runInDurableObject(g, async (instance: ReplayGuard) => {
      const r = await instance.reserve(nonce, HASH_A, TTL);
      await instance.commit(nonce, HASH_A, REPLY, leaseOf(r));
      expect(await instance.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
    });
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
  });
});

describe("expiry and purge", () => {
  it("a row lives its time to live: kept before, purged by the alarm after (real waiting)", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    const started = Date.now();
    await g.commit(nonce, HASH_A, REPLY, leaseOf(await g.reserve(nonce, HASH_A, 400)));
    const row = (await rowOf(g, nonce))!;
    expect(row.expires_at - row.reserved_at).toBe(400);
    expect(await alarmOf(g)).toBe(row.expires_at);

    // Before the time to live: running the alarm early purges nothing and keeps an alarm armed.
    if (Date.now() - started < 300) {
      expect(await runDurableObjectAlarm(g)).toBe(true);
      expect(await rowOf(g, nonce)).not.toBeNull();
      expect(await g.reserve(nonce, HASH_A, 400)).toEqual({ state: "committed", reply: REPLY });
      expect(await alarmOf(g)).not.toBeNull();
    }

    await new Promise((r) => setTimeout(r, Math.max(0, row.expires_at - Date.now()) + 100));
    // The real alarm may already have run; if not, run it now. Either way the row is gone.
    await runDurableObjectAlarm(g);
    expect(await rowOf(g, nonce)).toBeNull();
    expect(await g.size()).toBe(0);
    expect(await alarmOf(g)).toBeNull();
  });

  it("an expired row that is not purged yet counts as unseen: fresh, with a new body accepted", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    await g.commit(nonce, HASH_A, REPLY, leaseOf(await g.reserve(nonce, HASH_A, TTL)));
    await sql(g, "UPDATE nonces SET expires_at = ? WHERE nonce = ?", Date.now() - 1, nonce);
    const again = await g.reserve(nonce, HASH_B, TTL);
    expect(again.state).toBe("fresh");
    expect(await rowOf(g, nonce)).toMatchObject({ state: "reserved", lease: leaseOf(again) });
  });

  it("the alarm purges expired rows only, and re-arms for the rest (not sooner than PURGE_INTERVAL_MS)", async () => {
    const g = freshGuard();
    const now = Date.now();
    await seed(g, "old", 20, now - 1_000);
    await seed(g, "edge", 5, now + 3_000);
    const keep = randomNonce();
    await g.reserve(keep, HASH_A, TTL);
    expect(await runDurableObjectAlarm(g)).toBe(true);
    expect(await g.size()).toBe(6);
    const next = (await alarmOf(g))!;
    expect(next).toBeGreaterThanOrEqual(now + 3_000);
    expect(next).toBeGreaterThanOrEqual(now + PURGE_INTERVAL_MS);
    expect(next).toBeLessThanOrEqual(Date.now() + PURGE_INTERVAL_MS);
    // When the remaining rows are due later than the interval, the alarm waits for them.
    await sql(g, "DELETE FROM nonces WHERE nonce LIKE 'edge-%'");
    await runDurableObjectAlarm(g);
    expect(await alarmOf(g)).toBe((await rowOf(g, keep))!.expires_at);
  });

  it("running the alarm twice (or with nothing scheduled) is harmless", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    await seed(g, "gone", 3, Date.now() - 10);
    await g.commit(nonce, HASH_A, REPLY, leaseOf(await g.reserve(nonce, HASH_A, TTL)));
    await runInDurableObject(g, async (instance: ReplayGuard) => {
      await instance.alarm();
      await instance.alarm();
    });
    expect(await g.size()).toBe(1);
    expect(await runDurableObjectAlarm(g)).toBe(true);
    expect(await runDurableObjectAlarm(g)).toBe(true); // re-armed: the committed row is still pending expiry
    expect(await g.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });

    const empty = freshGuard();
    expect(await runDurableObjectAlarm(empty)).toBe(false);
    await runInDurableObject(empty, (instance: ReplayGuard) => instance.alarm());
    expect(await empty.size()).toBe(0);
    expect(await alarmOf(empty)).toBeNull();
  });

  it("one alarm run purges at most ALARM_PURGE_MAX rows and re-arms at once for the rest", async () => {
    const g = freshGuard();
    await seed(g, "bulk", ALARM_PURGE_MAX + 250, Date.now() - 1_000);
    await runInDurableObject(g, (_i, state) => state.storage.setAlarm(Date.now() + TTL));
    // Count inside the object right after one run: the re-armed alarm may fire at once and purge the rest.
    const left = await runInDurableObject(g, async (instance, state) => {
      await instance.alarm();
      return state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM nonces").one().n;
    });
    expect(left).toBe(250);
    // Re-armed for now: the real alarm may already have run it again; if not, run it.
    const again = await alarmOf(g);
    if (again !== null) expect(again).toBeLessThanOrEqual(Date.now());
    await runDurableObjectAlarm(g);
    expect(await g.size()).toBe(0);
    expect(await alarmOf(g)).toBeNull();
  });

  it("one reserve in every INLINE_PURGE_EVERY also purges expired rows, so storage stays bounded even without alarms", async () => {
    const g = freshGuard();
    await seed(g, "stale", 3 * INLINE_PURGE, Date.now() - 1_000);
    // The first reserve of a fresh instance purges; the next INLINE_PURGE_EVERY - 1 do not.
    await g.reserve(randomNonce(), HASH_A, TTL);
    expect(await g.size()).toBe(2 * INLINE_PURGE + 1);
    for (let i = 2; i <= INLINE_PURGE_EVERY; i++) await g.reserve(randomNonce(), HASH_A, TTL);
    expect(await g.size()).toBe(2 * INLINE_PURGE + INLINE_PURGE_EVERY);
    await g.reserve(randomNonce(), HASH_A, TTL);
    expect(await g.size()).toBe(INLINE_PURGE + INLINE_PURGE_EVERY + 1);
    // Under any load, rows are bounded by the live ones: every INLINE_PURGE_EVERY reserves add at most that
    // many and remove up to INLINE_PURGE.
    expect(INLINE_PURGE).toBeGreaterThan(INLINE_PURGE_EVERY);
  });

  it("a reserve with an earlier expiry than the armed alarm moves the alarm earlier", async () => {
    const g = freshGuard();
    await g.reserve(randomNonce(), HASH_A, TTL);
    const first = (await alarmOf(g))!;
    await g.reserve(randomNonce(), HASH_A, TTL * 2);
    expect(await alarmOf(g)).toBe(first);
    await g.reserve(randomNonce(), HASH_A, 10_000);
    const moved = (await alarmOf(g))!;
    expect(moved).toBeLessThan(first);
    expect(moved).toBe(Math.min(...(await runInDurableObject(g, (_i, s) => s.storage.sql.exec<{ e: number }>("SELECT expires_at AS e FROM nonces").toArray().map((r) => r.e)))));
  });

  it("an alarm the instance believes armed but that was lost long ago is re-armed by the next reserve", async () => {
    const g = freshGuard();
    await g.reserve(randomNonce(), HASH_A, TTL);
    await seed(g, "backlog", 10, Date.now() - 1_000);
    // Simulate an alarm whose retries all failed: the runtime dropped it, the instance still remembers it.
    await runInDurableObject(g, async (instance: ReplayGuard, state) => {
      (instance as unknown as { alarmAt: number }).alarmAt = Date.now() - 2 * PURGE_INTERVAL_MS;
      await state.storage.deleteAlarm();
    });
    expect(await alarmOf(g)).toBeNull();
    await g.reserve(randomNonce(), HASH_A, TTL);
    // Armed again, for now: it runs at once and re-arms itself for the two live rows. (While it runs,
    // getAlarm() says null, so poll.)
    let rearmed: number | null = null;
    for (let i = 0; i < 50 && rearmed === null; i++) {
      rearmed = await alarmOf(g);
      if (rearmed === null) await new Promise((r) => setTimeout(r, 20));
    }
    expect(rearmed).not.toBeNull();
    await runDurableObjectAlarm(g);
    expect(await g.size()).toBe(2);
    expect(await alarmOf(g)).not.toBeNull();
  });

  it("in-flight, committed and conflict answers do not arm or move the alarm", async () => {
    const g = freshGuard();
    const nonce = randomNonce();
    const lease = leaseOf(await g.reserve(nonce, HASH_A, TTL));
    const alarm = await alarmOf(g);
    await g.reserve(nonce, HASH_A, 5_000);
    await g.reserve(nonce, HASH_B, 5_000);
    await g.commit(nonce, HASH_A, REPLY, lease);
    await g.reserve(nonce, HASH_A, 5_000);
    expect(await alarmOf(g)).toBe(alarm);
  });
});

describe("durability", () => {
  it("a committed reply survives the object's eviction; a new instance re-reads its alarm", async () => {
    const name = `evict-${randomNonce(20)}`;
    const stub = () => env.REPLAY_GUARD.get(env.REPLAY_GUARD.idFromName(name));
    const nonce = randomNonce();
    const inFlight = randomNonce();
    const g = stub();
    await g.commit(nonce, HASH_A, REPLY, leaseOf(await g.reserve(nonce, HASH_A, TTL)));
    await g.reserve(inFlight, HASH_A, TTL);
    const alarm = await alarmOf(g);

    await abortAllDurableObjects();

    const after = stub();
    expect(await after.reserve(nonce, HASH_A, TTL)).toEqual({ state: "committed", reply: REPLY });
    expect(await after.reserve(nonce, HASH_B, TTL)).toEqual({ state: "conflict" });
    expect(await after.reserve(inFlight, HASH_A, TTL)).toEqual({ state: "in-flight" });
    expect(await alarmOf(after)).toBe(alarm);
    // The new instance knows the alarm is armed: a later expiry does not move it, an earlier one does.
    await after.reserve(randomNonce(), HASH_A, TTL * 2);
    expect(await alarmOf(after)).toBe(alarm);
    await after.reserve(randomNonce(), HASH_A, 1_000);
    expect(await alarmOf(after)).toBeLessThan(alarm!);
  });
});
