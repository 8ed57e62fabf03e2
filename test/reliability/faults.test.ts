// Issue #7, fault injection through wrapped bindings, for every kind of directory event (creates, revivals,
// renames, moves, deletes, and a payload refused after authentication):
//   - D1 failing at each statement of each of the event's batches (a failing statement at every position:
//     D1 rolls the batch back), at each statement the event prepares, and each batch failing after its
//     commit;
//   - the Durable Object failing between the D1 write and its record (its own record throws), the
//     object evicted in the middle of an event and between events, and its alarm running twice.
// Pass mark: zero partial writes (every table byte-for-byte as before a failed attempt, or the whole event
// with its audit row when the failure came after the commit), zero 200 for a write that did not happen, and
// the retried event (the very same request) succeeds.
//
// The event is applied to D1 by the replay object (EventLedger.process): the wrapped D1 binding is swapped
// into that object's env (and the Worker's, for completeness), and REPLAY_SHARDS=1 keeps every nonce on it.
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { shardName } from "../../src/ingest/shard";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import { buildEnvelope, openReply, randomNonce, toRequest, type SenderProfile } from "../sender/oneaccess-sender";
import { summarize } from "./support";

const P: SenderProfile = profile("sha1+gcm", "iv12");
const BASE_ENV = { ...envFor(P), TIMESTAMP_TOLERANCE_SECONDS: "0", REPLAY_SHARDS: "1" };
const tally = { cases: 0, faults: 0, answered500: 0, partialWrites: 0, false200: 0, retriesSucceeded: 0, retries: 0, alarmRuns: 0, evictions: 0 };

let evictedAnswer = 0;
const guard = () => testEnv.EVENT_LEDGER.get(testEnv.EVENT_LEDGER.idFromName(shardName(0)));
let clock = Date.now();
const ts = () => ++clock;

// --- bindings -------------------------------------------------------------------------------------------

type Db = D1Database;
const realDb = () => testEnv.DB;

/** A D1 binding whose batch() is `batch`, everything else the real database. */
function dbWithBatch(batch: (statements: D1PreparedStatement[]) => Promise<D1Result[]>): Db {
  return new Proxy(realDb(), {
    get(target, prop) {
      if (prop === "batch") return batch;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const failingStatement = () => realDb().prepare("INSERT INTO no_such_table (x) VALUES (1)");

/**
 * The event's `batch`-th D1 batch gets a failing statement inserted at `position`: D1 runs what precedes
 * it, then rolls the whole batch back. Other batches go through. Counts the batches the attempt made.
 */
function failInBatch(batch: number, position: number) {
  let batches = 0;
  let length = -1;
  const db = dbWithBatch(async (s) => {
    if (++batches !== batch) return realDb().batch(s);
    length = s.length;
    return realDb().batch([...s.slice(0, position), failingStatement(), ...s.slice(position)]);
  });
  return { db, batches: () => batches, length: () => length };
}

/** The event's `batch`-th batch commits, then the call reports a failure (the answer lost on the way back). */
function failAfterCommit(batch: number) {
  let batches = 0;
  const db = dbWithBatch(async (s) => {
    const results = await realDb().batch(s);
    if (++batches === batch) throw new Error("D1_ERROR: network connection lost");
    return results;
  });
  return { db, batches: () => batches };
}

/**
 * The `call`-th statement the event prepares (a read, a batch member, a single run) is one that fails when
 * it runs (a table that does not exist): a read rejects, a batch holding it rolls back.
 */
function failAtCall(call: number): { db: Db; calls: () => number } {
  let n = 0;
  const db = new Proxy(realDb(), {
    get(target, prop) {
      if (prop === "prepare") {
        return (sql: string) => {
          n++;
          return target.prepare(n === call ? "SELECT injected FROM no_such_table_injected" : sql);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db, calls: () => n };
}

/**
 * Runs `fn` with `db` as the D1 binding everywhere the event might use it: the Worker's env (the override
 * passed to `fn`) and the replay object's env, where EventLedger.process applies the event (swapped in
 * place, as test/helpers/directory-db.ts does, but through a fresh stub each time: a fault may have evicted
 * the object, which breaks the stubs that reached it).
 */
async function withDb<T>(db: Db, fn: (env: Record<string, unknown>) => Promise<T>): Promise<T> {
  type WithEnv = { env: Env };
  let saved: Env | undefined;
  await runInDurableObject(guard(), (instance) => {
    saved = (instance as unknown as WithEnv).env;
    (instance as unknown as WithEnv).env = { ...saved, DB: db };
  });
  try {
    return await fn({ ...BASE_ENV, DB: db });
  } finally {
    await runInDurableObject(guard(), (instance) => {
      const current = instance as unknown as WithEnv;
      if (saved && current.env.DB === db) current.env = saved;
    });
  }
}

// --- state ----------------------------------------------------------------------------------------------

/** Every row of every directory table, in a fixed order: equal dumps mean nothing was written. */
async function dump(): Promise<string> {
  const tables = ["organizations ORDER BY id", "users ORDER BY id", "released_keys ORDER BY entity, key", "deliveries ORDER BY id"];
  const parts: string[] = [];
  for (const t of tables) parts.push(JSON.stringify((await realDb().prepare(`SELECT * FROM ${t}`).all()).results));
  return parts.join("\n");
}

interface Sent {
  status: number;
  code: string;
  message: string;
  id: string | undefined;
}

/** One signed request, sent as often as needed with the same bytes (OneAccess's retry). */
async function signed(eventType: string, payload: unknown) {
  const envelope = await buildEnvelope(P, eventType, JSON.stringify(payload), { nonce: randomNonce(), timestamp: ts() });
  const body = JSON.stringify(envelope);
  const send = async (env: Record<string, unknown> = BASE_ENV): Promise<Sent> => {
    const reply = await openReply(P, await callWorker(toRequest(CALLBACK_URL, P, body), env));
    const id = reply.plaintext.startsWith("{") ? (JSON.parse(reply.plaintext) as { id?: string }).id : undefined;
    return { status: reply.status, code: reply.code, message: reply.message, id };
  };
  return { envelope, send };
}

async function ok(eventType: string, payload: unknown): Promise<string | undefined> {
  const sent = await (await signed(eventType, payload)).send();
  if (sent.code !== "200") throw new Error(`${eventType}: ${sent.code} ${sent.message}`);
  return sent.id;
}

async function row(table: "organizations" | "users", id: string) {
  return realDb().prepare(`SELECT * FROM ${table} WHERE id = ?`).bind(id).first<Record<string, unknown>>();
}

// --- scenarios: each sets up what its event needs, and says what the applied event looks like -----------

interface Scenario {
  name: string;
  /** Prepares the directory; returns the event and a check that it was applied whole. */
  setup: () => Promise<{ eventType: string; payload: unknown; expectCode: string; applied: (reply: Sent) => Promise<void> }>;
}

const uniq = () => randomNonce(8).toLowerCase();

const scenarios: Scenario[] = [
  {
    name: "CREATE_ORGANIZATION",
    setup: async () => {
      const code = `f-org-${uniq()}`;
      return {
        eventType: "CREATE_ORGANIZATION",
        payload: { code, name: "Fault Org", costCenter: "CC-1" },
        expectCode: "200",
        applied: async (r) => expect(await row("organizations", r.id!)).toMatchObject({ code, name: "Fault Org", deleted_at: null }),
      };
    },
  },
  {
    name: "CREATE_ORGANIZATION reviving a tombstone with a waiting child",
    setup: async () => {
      const code = `f-rev-${uniq()}`;
      const parent = (await ok("CREATE_ORGANIZATION", { code, name: "Parent" }))!;
      await ok("DELETE_ORGANIZATION", { id: parent });
      const child = (await ok("CREATE_ORGANIZATION", { code: `${code}-child`, name: "Child", parentId: parent }))!;
      return {
        eventType: "CREATE_ORGANIZATION",
        payload: { code, name: "Parent back" },
        expectCode: "200",
        applied: async (r) => {
          expect(r.id).toBe(parent);
          expect(await row("organizations", parent)).toMatchObject({ name: "Parent back", deleted_at: null });
          expect(await row("organizations", child)).toMatchObject({ parent_missing: 0 });
        },
      };
    },
  },
  {
    name: "UPDATE_ORGANIZATION renaming its code and moving it",
    setup: async () => {
      const code = `f-upd-${uniq()}`;
      const id = (await ok("CREATE_ORGANIZATION", { code, name: "Before" }))!;
      const parent = (await ok("CREATE_ORGANIZATION", { code: `${code}-p`, name: "New parent" }))!;
      return {
        eventType: "UPDATE_ORGANIZATION",
        payload: { id, code: `${code}-renamed`, name: "After", parentId: parent },
        expectCode: "200",
        applied: async () => {
          expect(await row("organizations", id)).toMatchObject({ code: `${code}-renamed`, name: "After", parent_id: parent });
          const released = await realDb().prepare("SELECT entity_id FROM released_keys WHERE key = ?").bind(code).first<string>("entity_id");
          expect(released).toBe(id);
        },
      };
    },
  },
  {
    name: "DELETE_ORGANIZATION",
    setup: async () => {
      const id = (await ok("CREATE_ORGANIZATION", { code: `f-del-${uniq()}`, name: "Doomed" }))!;
      return {
        eventType: "DELETE_ORGANIZATION",
        payload: { id },
        expectCode: "200",
        applied: async () => expect((await row("organizations", id))!.deleted_at).not.toBeNull(),
      };
    },
  },
  {
    name: "CREATE_USER",
    setup: async () => {
      const org = (await ok("CREATE_ORGANIZATION", { code: `f-uorg-${uniq()}`, name: "Org" }))!;
      const username = `f.user.${uniq()}`;
      return {
        eventType: "CREATE_USER",
        payload: { username, name: "Fault User", organizationId: org, password: "Fault-Secret-1", email: "f@example.test", title: "Engineer" },
        expectCode: "200",
        applied: async (r) => {
          expect(await row("users", r.id!)).toMatchObject({ username, name: "Fault User", organization_id: org, email: "f@example.test" });
          const n = await realDb().prepare("SELECT count(*) AS n FROM users WHERE username = ?").bind(username).first<number>("n");
          expect(n).toBe(1);
        },
      };
    },
  },
  {
    name: "UPDATE_USER renaming the username and moving the user",
    setup: async () => {
      const username = `f.upd.${uniq()}`;
      const id = (await ok("CREATE_USER", { username, name: "Before" }))!;
      const org = (await ok("CREATE_ORGANIZATION", { code: `f-uto-${uniq()}`, name: "Target" }))!;
      return {
        eventType: "UPDATE_USER",
        payload: { id, username: `${username}.renamed`, name: "After", organizationId: org, disabled: true },
        expectCode: "200",
        applied: async () => expect(await row("users", id)).toMatchObject({ username: `${username}.renamed`, name: "After", organization_id: org, disabled: 1 }),
      };
    },
  },
  {
    name: "DELETE_USER",
    setup: async () => {
      const id = (await ok("CREATE_USER", { username: `f.del.${uniq()}`, name: "Leaving" }))!;
      return {
        eventType: "DELETE_USER",
        payload: { id },
        expectCode: "200",
        applied: async () => expect((await row("users", id))!.deleted_at).not.toBeNull(),
      };
    },
  },
  {
    name: "CREATE_USER reviving a tombstone",
    setup: async () => {
      const username = `f.rev.${uniq()}`;
      const id = (await ok("CREATE_USER", { username, name: "First life" }))!;
      await ok("DELETE_USER", { id });
      return {
        eventType: "CREATE_USER",
        payload: { username, name: "Second life" },
        expectCode: "200",
        applied: async (r) => {
          expect(r.id).toBe(id);
          expect(await row("users", id)).toMatchObject({ name: "Second life", deleted_at: null });
        },
      };
    },
  },
  {
    name: "a payload refused after authentication (its audit row is the only write)",
    setup: async () => ({
      eventType: "CREATE_USER",
      payload: { username: `f.bad.${uniq()}`, name: "x".repeat(41) },
      expectCode: "400",
      applied: async () => {},
    }),
  },
];

/** One failed attempt: must be a 500 that wrote nothing. */
function expectNothingWritten(what: string, reply: Sent, before: string, after: string) {
  tally.faults++;
  if (reply.status === 500) tally.answered500++;
  if (reply.code === "200") tally.false200++;
  if (after !== before) tally.partialWrites++;
  expect({ what, status: reply.status, code: reply.code }).toEqual({ what, status: 500, code: "500" });
  expect(after, `${what}: nothing written`).toBe(before);
}

async function deliveryRows(nonce: string) {
  const r = await realDb().prepare("SELECT code, entity_id FROM deliveries WHERE nonce = ?").bind(nonce).all<{ code: string; entity_id: string | null }>();
  return r.results;
}

describe("D1 failing at every point of every event", () => {
  for (const scenario of scenarios) {
    it(`${scenario.name}: every statement of each of its batches, every statement it prepares, each batch after its commit`, async () => {
      tally.cases++;

      // 1. A failing statement at each position of each batch the event sends (reads, then writes; a create's
      //    first batch also holds its guarded insert), learnt as it goes. When an attempt makes fewer batches
      //    than the one to break, nothing failed: that attempt is the retry, and it must succeed.
      {
        const at = await scenario.setup();
        const request = await signed(at.eventType, at.payload);
        let batch = 1;
        let position = 0;
        let reply: Sent;
        for (;;) {
          const before = await dump();
          const f = failInBatch(batch, position);
          reply = await withDb(f.db, request.send);
          if (f.batches() < batch) break;
          expectNothingWritten(`${scenario.name}: batch ${batch}, statement ${position} of ${f.length()}`, reply, before, await dump());
          if (position < f.length()) position++;
          else [batch, position] = [batch + 1, 0];
        }
        tally.retries++;
        expect(reply.code).toBe(at.expectCode);
        await at.applied(reply);
        tally.retriesSucceeded++;
      }

      // 2. Each statement the event prepares (a read, a member of a batch, a single write) fails in turn.
      {
        const at = await scenario.setup();
        const request = await signed(at.eventType, at.payload);
        let reply: Sent;
        for (let call = 1; ; call++) {
          const before = await dump();
          const f = failAtCall(call);
          reply = await withDb(f.db, request.send);
          if (f.calls() < call) break;
          expectNothingWritten(`${scenario.name}: statement ${call} prepared`, reply, before, await dump());
        }
        tally.retries++;
        expect(reply.code).toBe(at.expectCode);
        await at.applied(reply);
        tally.retriesSucceeded++;
      }

      // 3. Each batch commits and then reports a failure: 500; nothing written (a read batch) or the whole
      //    event with its audit row (the write batch), never a part; the retry is answered 200, no twin.
      for (let batch = 1; ; batch++) {
        const at = await scenario.setup();
        const request = await signed(at.eventType, at.payload);
        const before = await dump();
        const f = failAfterCommit(batch);
        const failed = await withDb(f.db, request.send);
        if (f.batches() < batch) {
          expect(failed.code).toBe(at.expectCode); // no such batch: it went through
          break;
        }
        tally.faults++;
        if (failed.status === 500) tally.answered500++;
        expect({ batch, status: failed.status }).toEqual({ batch, status: 500 });
        if ((await dump()) !== before) {
          // Written: all of it, audit row included.
          const rows = await deliveryRows(request.envelope.nonce);
          if (rows.length !== 1) tally.partialWrites++;
          expect(rows).toHaveLength(1);
          await at.applied({ status: 200, code: rows[0]!.code, message: "", id: rows[0]!.entity_id ?? undefined });
        }
        const retry = await request.send();
        tally.retries++;
        expect(retry.code).toBe(at.expectCode);
        await at.applied(retry);
        tally.retriesSucceeded++;
      }
    });
  }
});

describe("the replay object failing, evicted, and its alarm running twice", () => {
  it("fails after the directory write, before the reply is recorded: 500, and the retry succeeds once", async () => {
    tally.cases++;
    const username = `f.do.${uniq()}`;
    const request = await signed("CREATE_USER", { username, name: "Between" });
    // The object's own record write fails (its storage write lost), after the D1 batch.
    type Recording = { record: (...a: unknown[]) => Promise<void> };
    await runInDurableObject(guard(), (instance) => {
      (instance as unknown as Recording).record = async () => Promise.reject(new Error("SQLITE_IOERR: disk I/O error"));
    });
    let first: Sent;
    try {
      first = await request.send();
    } finally {
      await runInDurableObject(guard(), (instance) => {
        delete (instance as unknown as Partial<Recording>).record;
      });
    }
    tally.faults++;
    expect(first.status).toBe(500);
    tally.answered500++;
    // Nothing was recorded and nothing is held: the retry is worked on at once, and the directory's rules
    // land it on the user the first attempt wrote.
    const retry = await request.send();
    tally.retries++;
    expect(retry).toMatchObject({ status: 200, code: "200" });
    tally.retriesSucceeded++;
    const rows = await realDb().prepare("SELECT id FROM users WHERE username = ?").bind(username).all<{ id: string }>();
    expect(rows.results).toEqual([{ id: retry.id }]);
  });

  it("evicted in the middle of an event (after the directory write, before the reply is recorded): no twin, the retry succeeds", async () => {
    tally.cases++;
    const username = `f.evict.${uniq()}`;
    const request = await signed("CREATE_USER", { username, name: "Evicted" });
    const evicting = dbWithBatch(async (s) => {
      const results = await realDb().batch(s);
      await abortAllDurableObjects();
      tally.evictions++;
      return results;
    });
    const first = await withDb(evicting, request.send);
    evictedAnswer = first.status;
    tally.faults++;
    if (first.status === 500) tally.answered500++;
    // The write happened: a 200 here would be true, a 500 makes OneAccess retry; anything else is wrong.
    expect([200, 500]).toContain(first.status);
    // The evicted instance's in-flight guard went with it: the retry is worked on at once.
    const retry = await request.send();
    tally.retries++;
    expect(retry).toMatchObject({ status: 200, code: "200" });
    tally.retriesSucceeded++;
    const rows = await realDb().prepare("SELECT id FROM users WHERE username = ?").bind(username).all<{ id: string }>();
    expect(rows.results).toEqual([{ id: retry.id }]);
  });

  it("evicted between events: replies already recorded are still answered from the store, nothing applied twice", async () => {
    tally.cases++;
    const request = await signed("CREATE_USER", { username: `f.ev2.${uniq()}`, name: "Before eviction" });
    const first = await request.send();
    expect(first.code).toBe("200");
    const before = await dump();
    await abortAllDurableObjects();
    tally.evictions++;
    tally.faults++;
    const again = await request.send();
    expect(again).toMatchObject({ status: 200, id: first.id });
    expect(await dump()).toBe(before);
  });

  it("its alarm running twice, around and in the middle of events: duplicates still answered from the store, the event in flight applied once", async () => {
    tally.cases++;
    const done = await signed("CREATE_USER", { username: `f.alarm.${uniq()}`, name: "Before the alarms" });
    const first = await done.send();
    expect(first.code).toBe("200");
    expect(await runDurableObjectAlarm(guard())).toBe(true);
    tally.alarmRuns++;
    if (await runDurableObjectAlarm(guard())) tally.alarmRuns++;
    const before = await dump();
    expect(await done.send()).toMatchObject({ status: 200, id: first.id });
    expect(await dump()).toBe(before);

    // Twice more while an event is between its directory write and its record.
    const username = `f.alarm2.${uniq()}`;
    const inFlight = await signed("CREATE_USER", { username, name: "During the alarms" });
    const alarming = dbWithBatch(async (s) => {
      const results = await realDb().batch(s);
      for (let i = 0; i < 2; i++) if (await runDurableObjectAlarm(guard())) tally.alarmRuns++;
      return results;
    });
    const during = await withDb(alarming, inFlight.send);
    tally.faults += 2;
    expect(during).toMatchObject({ status: 200, code: "200" });
    const after = await dump();
    expect(await inFlight.send()).toMatchObject({ status: 200, id: during.id });
    expect(await dump()).toBe(after);
    const rows = await realDb().prepare("SELECT id FROM users WHERE username = ?").bind(username).all<{ id: string }>();
    expect(rows.results).toEqual([{ id: during.id }]);
  });

  it("summary", async (context) => {
    await summarize(context, "faults", {
      cases: tally.cases,
      "faults-injected": tally.faults,
      "answered-500": tally.answered500,
      "alarm-runs": tally.alarmRuns,
      evictions: tally.evictions,
      "evicted-mid-event-answer": evictedAnswer,
      "partial-writes": tally.partialWrites,
      "false-200": tally.false200,
      retries: tally.retries,
      "retries-succeeded": tally.retriesSucceeded,
      "lost-writes": tally.retries - tally.retriesSucceeded,
    });
    expect(tally.partialWrites).toBe(0);
    expect(tally.false200).toBe(0);
  });
});
