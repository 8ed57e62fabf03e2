// The replay guard as the callback route uses it (one ReplayGuard.process call per event, which reserves,
// applies and commits inside the object), driven by the independent sender: exact duplicates get the first
// reply again (re-sealed) and apply nothing, concurrent copies apply once, a different body under a used
// nonce is refused, failures release the nonce for a retry, and an unreachable guard fails closed.
import { listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ReplayGuard } from "../../src/replay/replay-guard";
import type { GuardedEvent } from "../../src/replay/types";
import { shardFor, shardName } from "../../src/replay/shard";
import { REPLAY_TTL_MARGIN_MS } from "../../src/replay/ttl";
import { withDirectoryDb } from "../helpers/directory-db";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import { buildEnvelope, openReply, randomNonce, toRequest, unb64, type Envelope, type SenderProfile } from "../sender/oneaccess-sender";

const BUSY = { code: "500", message: "busy, retry later", data: "" };
const INTERNAL = { code: "500", message: "internal error, retry later", data: "" };
const UNAUTHORIZED = { code: "401", message: "authentication failed", data: "" };

function newUser(extra: Record<string, unknown> = {}) {
  return {
    username: `replay-${randomNonce(12)}`,
    name: "Replay Test",
    organizationId: `org_${randomNonce(12)}`,
    password: "Secret-123",
    disabled: false,
    ...extra,
  };
}

/** One signed envelope, and a way to send its exact bytes as many times as needed. */
async function signed(p: SenderProfile, eventType: string, payload: unknown, nonce = randomNonce()) {
  const envelope = await buildEnvelope(p, eventType, JSON.stringify(payload), { nonce });
  const body = JSON.stringify(envelope);
  return { envelope, body, request: () => toRequest(CALLBACK_URL, p, body) };
}

async function usersNamed(username: string): Promise<Array<{ id: string }>> {
  const r = await testEnv.DB.prepare("SELECT id FROM users WHERE username = ?").bind(username).all<{ id: string }>();
  return r.results;
}

async function deliveriesOf(nonce: string): Promise<Array<{ code: string; event_type: string }>> {
  const r = await testEnv.DB.prepare("SELECT code, event_type FROM deliveries WHERE nonce = ?").bind(nonce).all<{ code: string; event_type: string }>();
  return r.results;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The replay object a nonce lands on (the route's sharding), for looking at its row. */
function guardFor(nonce: string, shards = 4): DurableObjectStub<ReplayGuard> {
  return testEnv.REPLAY_GUARD.get(testEnv.REPLAY_GUARD.idFromName(shardName(shardFor(nonce, shards))));
}

interface GuardRow {
  state: string;
  code: string | null;
  reserved_at: number;
  expires_at: number;
}
const guardRow = (stub: DurableObjectStub<ReplayGuard>, nonce: string) =>
  runInDurableObject(stub, (_i, state) =>
    state.storage.sql
      .exec<GuardRow & Record<string, SqlStorageValue>>("SELECT state, code, reserved_at, expires_at FROM nonces WHERE nonce = ?", nonce)
      .toArray()[0] ?? null,
  );

/** A D1 binding that works except for batch(), which rejects: the directory write fails. */
function dbWithFailingBatch(): D1Database {
  return new Proxy(testEnv.DB, {
    get(target, prop) {
      if (prop === "batch") return async () => Promise.reject(new Error("D1_ERROR: simulated outage"));
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A D1 binding that records every method used on it (nothing may be touched when the guard is down). */
function recordingDb(calls: string[]): D1Database {
  return new Proxy(testEnv.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A REPLAY_GUARD namespace whose objects cannot be reached: every RPC rejects. */
function unreachableGuard(calls: string[]) {
  const fail = (name: string) => async () => {
    calls.push(name);
    throw new Error("Durable Object is overloaded");
  };
  return {
    idFromName: (name: string) => testEnv.REPLAY_GUARD.idFromName(name),
    get: () => ({ process: fail("process"), reserve: fail("reserve"), commit: fail("commit"), release: fail("release") }),
  };
}

describe("exact duplicates", () => {
  const profiles: Array<[string, SenderProfile]> = [
    ["sha1 + aes-gcm iv12", profile("sha1+gcm", "iv12")],
    ["hmac-sha256 + aes-gcm iv16-b64-prefix", profile("hmac+gcm", "iv16-b64-prefix")],
    ["sha1 + aes-cbc", profile("sha1+cbc")],
  ];
  for (const [name, p] of profiles) {
    it(`${name}: the same signed request twice gives the same reply, re-sealed, and one application`, async () => {
      const user = newUser();
      const { envelope, request } = await signed(p, "CREATE_USER", user);
      const first = await openReply(p, await callWorker(request(), envFor(p)));
      expect(first).toMatchObject({ status: 200, code: "200", message: "success" });
      const id = (JSON.parse(first.plaintext) as { id: string }).id;
      expect(id).toMatch(/^usr_/);

      const second = await openReply(p, await callWorker(request(), envFor(p)));
      expect(second).toMatchObject({ status: 200, code: "200", message: "success", plaintext: first.plaintext });
      expect(second.data).not.toBe(first.data); // fresh IV / fresh random prefix: another ciphertext
      if (p.encryption === "aes-gcm") {
        expect(second.layout).toBe(p.layout);
        const ivLength = p.layout === "iv12" ? 12 : 16;
        const iv = (d: string) => (p.layout === "iv16-b64-prefix" ? d.slice(0, 24) : Array.from(unb64(d).slice(0, ivLength)).join(","));
        expect(iv(second.data)).not.toBe(iv(first.data));
      }

      expect(await usersNamed(user.username)).toEqual([{ id }]);
      expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
    });
  }

  it("a stored refusal (400) is sent again the same way, and audited once", async () => {
    const p = profile("sha1+gcm", "iv12");
    const { envelope, request } = await signed(p, "CREATE_USER", { ...newUser(), username: "" });
    const first = await callWorker(request(), envFor(p));
    expect(first.status).toBe(400);
    const firstBody = await first.json();
    expect(firstBody).toMatchObject({ code: "400", message: "username is required", data: "" });
    const second = await callWorker(request(), envFor(p));
    expect(second.status).toBe(400);
    expect(await second.json()).toEqual(firstBody);
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
  });

  it("an empty reply (a delete) is sent again as it was", async () => {
    const p = profile("sha1+gcm", "iv12");
    const user = newUser();
    const created = await openReply(p, await callWorker((await signed(p, "CREATE_USER", user)).request(), envFor(p)));
    const id = (JSON.parse(created.plaintext) as { id: string }).id;
    // Stamped in milliseconds, after the create (stamped in seconds), so the delete is the newer event.
    const envelope = await buildEnvelope(p, "DELETE_USER", JSON.stringify({ id }), { timestamp: Date.now() + 1 });
    const body = JSON.stringify(envelope);
    const first = await callWorker(toRequest(CALLBACK_URL, p, body), envFor(p));
    const second = await callWorker(toRequest(CALLBACK_URL, p, body), envFor(p));
    const firstBody = await first.json();
    expect(firstBody).toEqual({ code: "200", message: "success", data: "" });
    expect(await second.json()).toEqual(firstBody);
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
  });

  it("50 concurrent copies of one request: one application, every answer the first reply or busy", async () => {
    const p = profile("sha1+gcm", "iv12");
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const replies = await Promise.all(Array.from({ length: 50 }, async () => openReply(p, await callWorker(request(), envFor(p)))));

    const ok = replies.filter((r) => r.status === 200);
    const busy = replies.filter((r) => r.status !== 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of busy) expect({ code: r.code, message: r.message, data: r.data }).toEqual(BUSY);
    const ids = new Set(ok.map((r) => (JSON.parse(r.plaintext) as { id: string }).id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];

    expect(await usersNamed(user.username)).toEqual([{ id }]);
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
    // The busy ones retry later and get the stored reply.
    const retried = await openReply(p, await callWorker(request(), envFor(p)));
    expect(retried).toMatchObject({ status: 200, plaintext: JSON.stringify({ id }) });
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
  });
});

describe("replays", () => {
  const p = profile("sha1+gcm", "iv12");

  it("the same nonce with another (validly signed) body is 401, and applies nothing", async () => {
    const first = await signed(p, "CREATE_USER", newUser());
    expect((await callWorker(first.request(), envFor(p))).status).toBe(200);
    const other = newUser();
    const replay = await signed(p, "CREATE_USER", other, first.envelope.nonce);
    const res = await callWorker(replay.request(), envFor(p));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual(UNAUTHORIZED);
    expect(await usersNamed(other.username)).toEqual([]);
    expect(await deliveriesOf(first.envelope.nonce)).toHaveLength(1);
  });

  it("the same request while the first copy is in flight is 500 busy; after a release it goes through", async () => {
    const user = newUser();
    const { envelope, body, request } = await signed(p, "CREATE_USER", user);
    const stub = guardFor(envelope.nonce);
    const hash = await sha256Hex(body);
    const held = await stub.reserve(envelope.nonce, hash, 600_000);
    expect(held.state).toBe("fresh");

    const res = await callWorker(request(), envFor(p));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual(BUSY);
    expect(await usersNamed(user.username)).toEqual([]);
    expect(await deliveriesOf(envelope.nonce)).toEqual([]);
    // Another body under the in-flight nonce is a replay.
    const other = await signed(p, "CREATE_USER", newUser(), envelope.nonce);
    expect(await (await callWorker(other.request(), envFor(p))).json()).toEqual(UNAUTHORIZED);

    await stub.release(envelope.nonce, hash, held.state === "fresh" ? held.lease : undefined);
    expect((await callWorker(request(), envFor(p))).status).toBe(200);
    expect(await usersNamed(user.username)).toHaveLength(1);
  });

  it("the replay row lives twice the timestamp window (plus a margin), on the nonce's shard, committed", async () => {
    const { envelope, request } = await signed(p, "CREATE_USER", newUser());
    expect((await callWorker(request(), { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "120" })).status).toBe(200);
    const row = await guardRow(guardFor(envelope.nonce), envelope.nonce);
    expect(row).toMatchObject({ state: "committed", code: "200" });
    expect(row!.expires_at - row!.reserved_at).toBe(2 * 120 * 1000 + REPLAY_TTL_MARGIN_MS);
  });

  it("a timestamp at the window's far edge cannot be replayed as the window closes, even if the replay's reserve lags", async () => {
    // Window of 1 s. The first copy is stamped 900 ms in the future; the window accepts it until 1.9 s from
    // now. Its replay passes the window check at ~1.75 s, then reaches the replay object 500 ms later
    // (latency, a busy object, or another host's clock): after twice the window, but it must still be
    // recognised.
    const o = { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "1" };
    const t0 = Date.now();
    const envelope = await buildEnvelope(p, "CREATE_USER", JSON.stringify(newUser()), { timestamp: t0 + 900 });
    const body = JSON.stringify(envelope);
    expect((await callWorker(toRequest(CALLBACK_URL, p, body), o)).status).toBe(200);

    const seen: string[] = [];
    const lagging = {
      idFromName: (name: string) => testEnv.REPLAY_GUARD.idFromName(name),
      get: (id: DurableObjectId) => {
        const real = testEnv.REPLAY_GUARD.get(id);
        return {
          process: async (request: GuardedEvent) => {
            await sleep(500);
            const r = await real.process(request);
            seen.push(r.state);
            return r;
          },
        };
      },
    };
    await sleep(t0 + 1750 - Date.now());
    const replay = await callWorker(toRequest(CALLBACK_URL, p, body), { ...o, REPLAY_GUARD: lagging });
    expect(seen).toEqual(["committed"]);
    expect(replay.status).toBe(200);
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
  });

  it("REPLAY_SHARDS spreads nonces over that many objects, each nonce on its hash's shard", async () => {
    const shards = 8;
    const nonces: Envelope["nonce"][] = [];
    for (let i = 0; i < 24; i++) {
      const { envelope, request } = await signed(p, "CREATE_USER", newUser());
      expect((await callWorker(request(), { ...envFor(p), REPLAY_SHARDS: String(shards) })).status).toBe(200);
      nonces.push(envelope.nonce);
    }
    const used = new Set(nonces.map((n) => shardFor(n, shards)));
    expect(used.size).toBeGreaterThan(1);
    for (const n of nonces) expect(await guardRow(guardFor(n, shards), n)).toMatchObject({ state: "committed" });
    const ids = (await listDurableObjectIds(testEnv.REPLAY_GUARD)).map((id) => id.toString());
    for (const s of used) expect(ids).toContain(testEnv.REPLAY_GUARD.idFromName(shardName(s)).toString());
  });
});

describe("failures release the nonce; the guard fails closed", () => {
  const p = profile("sha1+gcm", "iv12");

  it("a failed first attempt (D1 batch rejects) answers 500; the retry with the same nonce and body succeeds", async () => {
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const failing = dbWithFailingBatch();
    const failed = await withDirectoryDb(failing, () => callWorker(request(), { ...envFor(p), DB: failing }));
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual(INTERNAL);
    expect(await usersNamed(user.username)).toEqual([]);
    expect(await deliveriesOf(envelope.nonce)).toEqual([]);
    expect(await guardRow(guardFor(envelope.nonce), envelope.nonce)).toBeNull(); // released

    const retry = await openReply(p, await callWorker(request(), envFor(p)));
    expect(retry).toMatchObject({ status: 200, code: "200", message: "success" });
    const id = (JSON.parse(retry.plaintext) as { id: string }).id;
    expect(await usersNamed(user.username)).toEqual([{ id }]);
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
    expect(await guardRow(guardFor(envelope.nonce), envelope.nonce)).toMatchObject({ state: "committed" });
  });

  it("the replay record failing after the directory write: 500, and the retry converges on the same id", async () => {
    // The one window the guard cannot close: D1 has applied the event but the reply could not be recorded
    // (here the reservation vanishes while the directory is written, so the commit finds nothing to commit).
    // The route answers 500; the retry is processed again, and idempotent creates (contract section 6) make
    // it land on the same user instead of a twin.
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const stub = guardFor(envelope.nonce);
    let vanished = false;
    const reservationVanishes = new Proxy(testEnv.DB, {
      get(target, prop) {
        if (prop === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            const results = await target.batch(statements);
            if (!vanished) {
              vanished = true;
              await runInDurableObject(stub, (_i, state) => {
                state.storage.sql.exec("DELETE FROM nonces WHERE nonce = ?", envelope.nonce);
              });
            }
            return results;
          };
        }
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const failed = await withDirectoryDb(reservationVanishes, () => callWorker(request(), envFor(p)));
    expect(vanished).toBe(true);
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual(INTERNAL);
    expect(await guardRow(stub, envelope.nonce)).toBeNull();
    const created = await usersNamed(user.username);
    expect(created).toHaveLength(1); // the directory write itself went through

    const retry = await openReply(p, await callWorker(request(), envFor(p)));
    expect(retry).toMatchObject({ status: 200, code: "200" });
    const id = (JSON.parse(retry.plaintext) as { id: string }).id;
    expect(await usersNamed(user.username)).toEqual([{ id }]);
    expect(created).toEqual([{ id }]);
    expect(await guardRow(stub, envelope.nonce)).toMatchObject({ state: "committed" });
  });

  it("the replay object unreachable: 500, and nothing is applied or audited", async () => {
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const guardCalls: string[] = [];
    const dbCalls: string[] = [];
    const res = await callWorker(request(), { ...envFor(p), DB: recordingDb(dbCalls), REPLAY_GUARD: unreachableGuard(guardCalls) });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual(INTERNAL);
    // One call, the one that would have reserved, applied and committed; the Worker writes nothing itself.
    expect(guardCalls).toEqual(["process"]);
    expect(dbCalls).toEqual([]);
    expect(await usersNamed(user.username)).toEqual([]);
    expect(await deliveriesOf(envelope.nonce)).toEqual([]);
  });

  it("get() itself throwing is a 500 too, with nothing written", async () => {
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const dbCalls: string[] = [];
    const broken = {
      idFromName: (name: string) => testEnv.REPLAY_GUARD.idFromName(name),
      get: () => {
        throw new Error("namespace unavailable");
      },
    };
    const res = await callWorker(request(), { ...envFor(p), DB: recordingDb(dbCalls), REPLAY_GUARD: broken });
    expect(res.status).toBe(500);
    expect(dbCalls).toEqual([]);
    expect(await deliveriesOf(envelope.nonce)).toEqual([]);
  });
});
