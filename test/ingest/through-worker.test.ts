// The replay store as the callback route uses it (one EventLedger.process call per request, which does the
// work once per replay key and records the reply), driven by the independent sender: exact duplicates get the
// first reply again (re-sealed) and apply nothing, concurrent copies apply once and all get that reply, a
// failure records nothing so the retry goes through, and an unreachable store fails closed. The replay key is
// computed here from the contract (the verified digest), not taken from src/.
import { listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventLedger } from "../../src/ingest/event-ledger";
import { shardFor, shardName } from "../../src/ingest/shard";
import { withDirectoryDb } from "../helpers/directory-db";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import { buildEnvelope, openReply, randomNonce, toRequest, unb64, type Envelope, type SenderProfile } from "../sender/oneaccess-sender";

const INTERNAL = { code: "500", message: "internal error, retry later", data: "" };

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
  return { envelope, body, key: replayKeyOf(envelope), request: () => toRequest(CALLBACK_URL, p, body) };
}

/** Contract section 2: the replay key is the verified digest, as lowercase hex (the sender signs in hex or Base64). */
function replayKeyOf(envelope: Envelope): string {
  const digest = /^[0-9a-f]{40}$/.test(envelope.signature) ? envelope.signature : Array.from(unb64(envelope.signature), (b) => b.toString(16).padStart(2, "0")).join("");
  return digest;
}

async function usersNamed(username: string): Promise<Array<{ id: string }>> {
  const r = await testEnv.DB.prepare("SELECT id FROM users WHERE username = ?").bind(username).all<{ id: string }>();
  return r.results;
}

async function deliveriesOf(nonce: string): Promise<Array<{ code: string; event_type: string }>> {
  const r = await testEnv.DB.prepare("SELECT code, event_type FROM deliveries WHERE nonce = ?").bind(nonce).all<{ code: string; event_type: string }>();
  return r.results;
}

/** The replay object a key lands on (the route's sharding), for looking at its row. */
function storeFor(key: string, shards = 4): DurableObjectStub<EventLedger> {
  return testEnv.EVENT_LEDGER.get(testEnv.EVENT_LEDGER.idFromName(shardName(shardFor(key, shards))));
}

interface ReplyRow {
  code: string;
  message: string;
  expires_at: number;
}
const storedRow = (stub: DurableObjectStub<EventLedger>, key: string) =>
  runInDurableObject(stub, (_i, state) =>
    state.storage.sql.exec<ReplyRow & Record<string, SqlStorageValue>>("SELECT code, message, expires_at FROM replies WHERE key = ?", key).toArray()[0] ?? null,
  );

/** Sets the object's clock (the store reads time only through it). */
const setClock = (stub: DurableObjectStub<EventLedger>, now: number) =>
  runInDurableObject(stub, (instance) => {
    instance.clock = () => now;
  });

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

/** A EVENT_LEDGER namespace whose objects cannot be reached: every RPC rejects. */
function unreachableGuard(calls: string[]) {
  const fail = (name: string) => async () => {
    calls.push(name);
    throw new Error("Durable Object is overloaded");
  };
  return {
    idFromName: (name: string) => testEnv.EVENT_LEDGER.idFromName(name),
    get: () => ({ processOnce: fail("processOnce") }),
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

  it("50 concurrent copies of one request: one application, and every copy gets its reply", async () => {
    const p = profile("sha1+gcm", "iv12");
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const replies = await Promise.all(Array.from({ length: 50 }, async () => openReply(p, await callWorker(request(), envFor(p)))));

    // A copy that arrives while the first is being worked on waits for it, instead of answering "busy".
    expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200));
    const ids = new Set(replies.map((r) => (JSON.parse(r.plaintext) as { id: string }).id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    expect(await usersNamed(user.username)).toEqual([{ id }]);
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
  });
});

describe("what a replay is", () => {
  const p = profile("sha1+gcm", "iv12");

  it("the same nonce with another (validly signed) body is another request: applied, with its own reply", async () => {
    const first = await signed(p, "CREATE_USER", newUser());
    expect((await callWorker(first.request(), envFor(p))).status).toBe(200);
    const other = newUser();
    const second = await signed(p, "CREATE_USER", other, first.envelope.nonce);
    expect(second.key).not.toBe(first.key);
    const res = await openReply(p, await callWorker(second.request(), envFor(p)));
    expect(res).toMatchObject({ status: 200, code: "200", message: "success" });
    expect(await usersNamed(other.username)).toHaveLength(1);
    expect(await deliveriesOf(first.envelope.nonce)).toHaveLength(2);
  });

  it("the reply is recorded under the replay key for twice the timestamp window plus a margin, then forgotten", async () => {
    const { key, request, envelope } = await signed(p, "CREATE_USER", newUser());
    const stub = storeFor(key);
    const t0 = 1_900_000_000_000;
    await setClock(stub, t0);
    const o = { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "120" };
    expect((await callWorker(request(), o)).status).toBe(200);
    // 2 × 120 s + 60 s of margin (the window is checked on the Worker's clock, the expiry on the object's).
    const ttl = 2 * 120_000 + 60_000;
    expect(await storedRow(stub, key)).toMatchObject({ code: "200", message: "success", expires_at: t0 + ttl });

    // A copy reaching the object late (a busy object, another host's clock) is still a duplicate.
    await setClock(stub, t0 + ttl - 1);
    const late = await openReply(p, await callWorker(request(), o));
    expect(late).toMatchObject({ status: 200, code: "200", message: "success" });
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
    // Once the record expired the request is new again (the window long refused it on the Worker by then):
    // the directory's own rules make it change nothing.
    await setClock(stub, t0 + ttl);
    const after = await openReply(p, await callWorker(request(), o));
    expect(after).toMatchObject({ status: 200, code: "200", message: "already applied" });
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(2);
    await setClock(stub, Date.now());
  });

  it("REPLAY_SHARDS spreads replay keys over that many objects, each key on its hash's shard", async () => {
    const shards = 8;
    const keys: string[] = [];
    for (let i = 0; i < 24; i++) {
      const { key, request } = await signed(p, "CREATE_USER", newUser());
      expect((await callWorker(request(), { ...envFor(p), REPLAY_SHARDS: String(shards) })).status).toBe(200);
      keys.push(key);
    }
    const used = new Set(keys.map((k) => shardFor(k, shards)));
    expect(used.size).toBeGreaterThan(1);
    for (const k of keys) expect(await storedRow(storeFor(k, shards), k)).toMatchObject({ code: "200" });
    const ids = (await listDurableObjectIds(testEnv.EVENT_LEDGER)).map((id) => id.toString());
    for (const s of used) expect(ids).toContain(testEnv.EVENT_LEDGER.idFromName(shardName(s)).toString());
  });
});

describe("a failure records nothing; the store fails closed", () => {
  const p = profile("sha1+gcm", "iv12");

  it("a failed first attempt (D1 batch rejects) answers 500; the retry with the same nonce and body succeeds", async () => {
    const user = newUser();
    const { envelope, request, key } = await signed(p, "CREATE_USER", user);
    const failing = dbWithFailingBatch();
    const failed = await withDirectoryDb(failing, () => callWorker(request(), { ...envFor(p), DB: failing }));
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual(INTERNAL);
    expect(await usersNamed(user.username)).toEqual([]);
    expect(await deliveriesOf(envelope.nonce)).toEqual([]);
    expect(await storedRow(storeFor(key), key)).toBeNull(); // nothing recorded

    const retry = await openReply(p, await callWorker(request(), envFor(p)));
    expect(retry).toMatchObject({ status: 200, code: "200", message: "success" });
    const id = (JSON.parse(retry.plaintext) as { id: string }).id;
    expect(await usersNamed(user.username)).toEqual([{ id }]);
    expect(await deliveriesOf(envelope.nonce)).toHaveLength(1);
    expect(await storedRow(storeFor(key), key)).toMatchObject({ code: "200" });
  });

  it("the replay record failing after the directory write: 500, and the retry converges on the same id", async () => {
    // The one window the store cannot close: D1 has applied the event but the reply could not be recorded
    // (here the object's storage fails right after the directory write). The route answers 500; the retry is
    // processed again, and idempotent creates (contract section 6) make it land on the same user, no twin.
    const user = newUser();
    const { request, key } = await signed(p, "CREATE_USER", user);
    const stub = storeFor(key);
    await runInDurableObject(stub, (instance) => {
      const real = Reflect.get(instance, "record") as (...a: unknown[]) => Promise<void>;
      Reflect.set(instance, "record", async () => {
        Reflect.set(instance, "record", real);
        throw new Error("SQLITE_FULL: simulated");
      });
    });
    const failed = await callWorker(request(), envFor(p));
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual(INTERNAL);
    expect(await storedRow(stub, key)).toBeNull();
    const created = await usersNamed(user.username);
    expect(created).toHaveLength(1); // the directory write itself went through

    const retry = await openReply(p, await callWorker(request(), envFor(p)));
    expect(retry).toMatchObject({ status: 200, code: "200" });
    const id = (JSON.parse(retry.plaintext) as { id: string }).id;
    expect(await usersNamed(user.username)).toEqual([{ id }]);
    expect(created).toEqual([{ id }]);
    expect(await storedRow(stub, key)).toMatchObject({ code: "200" });
  });

  it("the replay object unreachable: 500, and nothing is applied or audited", async () => {
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const guardCalls: string[] = [];
    const dbCalls: string[] = [];
    const res = await callWorker(request(), { ...envFor(p), DB: recordingDb(dbCalls), EVENT_LEDGER: unreachableGuard(guardCalls) });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual(INTERNAL);
    // One call, the one that would have done the work and recorded it; the Worker writes nothing itself.
    expect(guardCalls).toEqual(["processOnce"]);
    expect(dbCalls).toEqual([]);
    expect(await usersNamed(user.username)).toEqual([]);
    expect(await deliveriesOf(envelope.nonce)).toEqual([]);
  });

  it("get() itself throwing is a 500 too, with nothing written", async () => {
    const user = newUser();
    const { envelope, request } = await signed(p, "CREATE_USER", user);
    const dbCalls: string[] = [];
    const broken = {
      idFromName: (name: string) => testEnv.EVENT_LEDGER.idFromName(name),
      get: () => {
        throw new Error("namespace unavailable");
      },
    };
    const res = await callWorker(request(), { ...envFor(p), DB: recordingDb(dbCalls), EVENT_LEDGER: broken });
    expect(res.status).toBe(500);
    expect(dbCalls).toEqual([]);
    expect(await deliveriesOf(envelope.nonce)).toEqual([]);
  });
});
