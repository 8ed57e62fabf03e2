// One event is one D1 batch (contract section 6): a failing batch leaves nothing and answers 500 so the
// retry succeeds; a concurrent event between an event's read and its batch makes it decide again instead of
// writing a stale decision; every authenticated callback leaves one audit row.
import { describe, expect, it } from "vitest";
import { MAX_ATTEMPTS } from "../../src/directory/apply-event";
import { readDirectory } from "../../src/directory/snapshot";
import { callWorker, CALLBACK_URL, profile } from "../helpers/worker";
import { buildRequest, type SenderProfile } from "../sender/oneaccess-sender";
import {
  createOrg,
  createUser,
  db,
  deliveriesFor,
  liveOrg,
  liveUser,
  nextTimestamp,
  ownBinding,
  send,
  type Batch,
  sendForId,
  userRow,
  workerEnv,
} from "./support";

/**
 * Runs `interlude` once, just before the event's `beforeBatch`-th batch. An event reads in its first batch
 * and writes in its second, so the default lands another event between this one's read and write. A
 * create's first batch is its guarded insert: `beforeBatch` 1 lands the other event before it.
 */
function withInterlude(interlude: () => Promise<unknown>, beforeBatch = 2): D1Database {
  let batches = 0;
  return ownBinding(async (statements) => {
    if (++batches === beforeBatch) await interlude();
    return db().batch(statements);
  });
}

async function countUsers(username: string) {
  return db().prepare("SELECT count(*) AS n FROM users WHERE username = ?").bind(username).first<number>("n");
}

describe("a D1 failure in the middle of a batch", () => {
  const failures: Array<[string, Batch]> = [
    [
      "a broken statement before the audit row (D1 rolls back)",
      (s) => db().batch([...s.slice(0, -1), db().prepare("INSERT INTO no_such_table (x) VALUES (1)"), ...s.slice(-1)]),
    ],
    ["the batch rejected without running", async () => Promise.reject(new Error("D1_ERROR: network connection lost"))],
  ];
  for (const [name, batch] of failures) {
    it(`${name}: no partial rows, 500, and the same request then succeeds`, async () => {
      const username = `atomic-${name.split(" ")[1]}`;
      const first = await send("CREATE_USER", { username, name: "Atomic" }, { env: { DB: ownBinding(batch) } });
      expect(first).toMatchObject({ status: 500, code: "500", message: "internal error, retry later", plaintext: "" });
      expect(await countUsers(username)).toBe(0);
      expect(await deliveriesFor(first.envelope.nonce)).toEqual([]);

      const retry = await first.resend({});
      expect(retry).toMatchObject({ status: 200, code: "200", message: "success" });
      expect(await liveUser(retry.id!)).toMatchObject({ username, name: "Atomic" });
      expect(await deliveriesFor(first.envelope.nonce)).toMatchObject([{ code: "200", entity_id: retry.id }]);
    });
  }

  it("a revival with flag clearing is all or nothing too", async () => {
    const parent = await createOrg("atomic-parent", "Parent");
    await send("DELETE_ORGANIZATION", { id: parent });
    const child = await createOrg("atomic-child", "Child", parent);
    // Statements: check, revive, clear parent flags, clear member flags, audit row. Break the last flag clear.
    const broken = ownBinding((s) =>
      db().batch([...s.slice(0, -2), db().prepare("UPDATE no_such_table SET x = 1"), ...s.slice(-2)]),
    );
    const first = await send("CREATE_ORGANIZATION", { code: "atomic-parent", name: "Parent back" }, { env: { DB: broken } });
    expect(first.code).toBe("500");
    expect(await liveOrg(parent)).toBeUndefined();
    expect(await liveOrg(child)).toMatchObject({ parentMissing: true });

    expect(await first.resend({})).toMatchObject({ code: "200", id: parent });
    expect(await liveOrg(parent)).toMatchObject({ name: "Parent back" });
    expect(await liveOrg(child)).toMatchObject({ parentMissing: false });
  });

  it("a batch that committed but reported failure: the retry is acknowledged with the same id, no twin", async () => {
    const afterCommit = ownBinding(async (s) => {
      await db().batch(s);
      throw new Error("D1_ERROR: response lost");
    });
    const first = await send("CREATE_USER", { username: "atomic-ambiguous", name: "Ambiguous" }, { env: { DB: afterCommit } });
    expect(first.code).toBe("500");
    const retry = await first.resend({});
    expect(retry).toMatchObject({ code: "200", message: "already applied" });
    expect(await countUsers("atomic-ambiguous")).toBe(1);
    expect((await liveUser(retry.id!))!.username).toBe("atomic-ambiguous");
  });
});

describe("concurrent events for the same entities", () => {
  it("two moves that together would close a cycle: the second to write is decided again and refused", async () => {
    const a = await createOrg("race-a", "A");
    const b = await createOrg("race-b", "B");
    const db = withInterlude(async () => {
      // Lands after "A under B" read the tree and before it writes.
      expect((await send("UPDATE_ORGANIZATION", { id: b, code: "race-b", name: "B", parentId: a }, { env: { DB: ownBinding() } })).code).toBe("200");
    });
    const sent = await send("UPDATE_ORGANIZATION", { id: a, code: "race-a", name: "A", parentId: b }, { env: { DB: db } });
    expect(sent).toMatchObject({ status: 400, message: "parentId would create a cycle" });
    expect(await liveOrg(a)).toMatchObject({ parentId: null });
    expect(await liveOrg(b)).toMatchObject({ parentId: a });
    expect(await deliveriesFor(sent.envelope.nonce)).toMatchObject([{ code: "400" }]);
  });

  it("two creates of one username: one row, both answered with its id", async () => {
    let winner: string | undefined;
    const db = withInterlude(async () => {
      winner = (await send("CREATE_USER", { username: "race-user", name: "Winner" }, { env: { DB: ownBinding() } })).id;
    }, 1);
    const ts = nextTimestamp() - 10_000; // older than the winner: acknowledged, not applied
    const sent = await send("CREATE_USER", { username: "race-user", name: "Loser" }, { env: { DB: db }, timestamp: ts });
    expect(sent).toMatchObject({ code: "200", message: "already applied", id: winner });
    expect(await countUsers("race-user")).toBe(1);
    expect(await liveUser(winner!)).toMatchObject({ name: "Winner" });
  });

  it("an update merged on a stale read would lose a concurrent change: it is merged again on a fresh one", async () => {
    const id = await createUser("race-merge", { base: 0 });
    const older = nextTimestamp();
    const newer = nextTimestamp();
    const db = withInterlude(() => send("UPDATE_USER", { id, username: "race-merge", fromOlder: 1 }, { timestamp: older, env: { DB: ownBinding() } }));
    const sent = await send("UPDATE_USER", { id, username: "race-merge", fromNewer: 2 }, { env: { DB: db }, timestamp: newer });
    expect(sent).toMatchObject({ code: "200", message: "success" });
    expect(await liveUser(id)).toMatchObject({ extensions: { base: 0, fromNewer: 2, fromOlder: 1 }, eventTs: newer });
  });

  it("deleting an organization while a member joins it: the delete is refused with the new count", async () => {
    const org = await createOrg("race-org", "Org");
    const db = withInterlude(() => sendForId("CREATE_USER", { username: "race-member", name: "Member", organizationId: org }, { env: { DB: ownBinding() } }));
    const sent = await send("DELETE_ORGANIZATION", { id: org }, { env: { DB: db } });
    expect(sent).toMatchObject({ status: 400, message: "organization has 0 child organizations and 1 member" });
    expect(await liveOrg(org)).toBeDefined();
  });

  it("gives up with 500 when the entity keeps changing, writing nothing; the retry then applies", async () => {
    const id = await createUser("race-busy", { name: "Busy" });
    const ts = nextTimestamp();
    let batches = 0;
    const busy = ownBinding(async (s) => {
      // Each attempt reads (odd batches), then writes (even ones). Between the two, another writer changes
      // the row every time (its version moves; its event timestamp stays older than this event's).
      if (++batches % 2 === 0) await db().prepare("UPDATE users SET version = version + 1 WHERE id = ?").bind(id).run();
      return db().batch(s);
    });
    const first = await send("UPDATE_USER", { id, username: "race-busy", name: "Renamed" }, { env: { DB: busy }, timestamp: ts });
    expect(first).toMatchObject({ status: 500, code: "500" });
    expect(batches).toBe(2 * MAX_ATTEMPTS);
    expect(await userRow(id)).toMatchObject({ name: "Busy" });
    expect(await deliveriesFor(first.envelope.nonce)).toEqual([]);
    expect(await first.resend({})).toMatchObject({ code: "200", message: "success" });
    expect(await userRow(id)).toMatchObject({ name: "Renamed" });
  });

  it("many simultaneous creates of one username and of one organization make one row each", async () => {
    const users = await Promise.all(Array.from({ length: 8 }, (_, i) => send("CREATE_USER", { username: "swarm", name: `Swarm ${i}` })));
    const orgs = await Promise.all(Array.from({ length: 8 }, (_, i) => send("CREATE_ORGANIZATION", { code: "swarm-org", name: `Swarm ${i}` })));
    for (const replies of [users, orgs]) {
      expect(replies.map((r) => r.code)).toEqual(Array(8).fill("200"));
      expect(new Set(replies.map((r) => r.id)).size).toBe(1);
    }
    expect(await countUsers("swarm")).toBe(1);
    const all = await readDirectory(db(), { includeDeleted: true });
    expect(all.organizations.filter((o) => o.code === "swarm-org")).toHaveLength(1);
  });
});

describe("audit rows (deliveries)", () => {
  it("hold time, event type, nonce, outcome, message, entity id and duration, never the payload", async () => {
    const sent = await send("CREATE_USER", { username: "audit-user", name: "Distinctive Payload Name", email: "audit@example.com" });
    const { results } = await db().prepare("SELECT * FROM deliveries WHERE nonce = ?").bind(sent.envelope.nonce).all();
    expect(results).toHaveLength(1);
    const row = results[0]!;
    expect(Object.keys(row).sort()).toEqual(
      ["code", "duration_ms", "entity_id", "event_type", "id", "message", "nonce", "received_at"].sort(),
    );
    expect(row).toMatchObject({ event_type: "CREATE_USER", code: "200", message: "success", entity_id: sent.id });
    expect(row.received_at).toBeGreaterThan(Date.now() - 60_000);
    expect(row.duration_ms).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(row)).not.toMatch(/Distinctive|audit@example/);
  });

  it("CHECK_URL leaves one row through recordDelivery", async () => {
    const sent = await send("CHECK_URL", "audit-check-url-random");
    expect(sent).toMatchObject({ code: "200", plaintext: "audit-check-url-random" });
    expect(await deliveriesFor(sent.envelope.nonce)).toMatchObject([
      { event_type: "CHECK_URL", code: "200", message: "success", entity_id: null },
    ]);
  });

  it("concurrent CHECK_URLs share D1 batches: each audited exactly once, in fewer batches than requests", async () => {
    let batches = 0;
    const counting = ownBinding((statements) => {
      batches++;
      return db().batch(statements);
    });
    const p = profile("sha1+gcm");
    const built = await Promise.all(
      Array.from({ length: 40 }, (_, i) => buildRequest(CALLBACK_URL, p, "CHECK_URL", `coalesced-check-${i}`)),
    );
    const replies = await Promise.all(built.map(({ request }) => callWorker(request, workerEnv(p, { DB: counting }))));
    expect(replies.map((r) => r.status)).toEqual(built.map(() => 200));
    for (const { envelope } of built) {
      expect(await deliveriesFor(envelope.nonce)).toMatchObject([{ event_type: "CHECK_URL", code: "200", message: "success" }]);
    }
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThan(40);
  });

  it("a shared audit batch that fails leaves none of its rows and still answers every CHECK_URL 200", async () => {
    const failing = ownBinding(async () => Promise.reject(new Error("D1_ERROR: network connection lost")));
    const p = profile("sha1+gcm");
    const built = await Promise.all(
      Array.from({ length: 5 }, (_, i) => buildRequest(CALLBACK_URL, p, "CHECK_URL", `failed-audit-${i}`)),
    );
    const replies = await Promise.all(built.map(({ request }) => callWorker(request, workerEnv(p, { DB: failing }))));
    expect(replies.map((r) => r.status)).toEqual(built.map(() => 200));
    for (const { envelope } of built) expect(await deliveriesFor(envelope.nonce)).toEqual([]);
  });

  it("an authenticated request refused before applyEvent (undecryptable) leaves one 400 row", async () => {
    const gcm = profile("sha1+gcm");
    const plaintextSender: SenderProfile = { ...gcm, encryption: "none" };
    const { request, envelope } = await buildRequest(CALLBACK_URL, plaintextSender, "CREATE_USER", { username: "audit-x", name: "X" });
    const res = await callWorker(request, workerEnv(gcm));
    expect(res.status).toBe(400);
    expect(await deliveriesFor(envelope.nonce)).toMatchObject([{ event_type: "CREATE_USER", code: "400", entity_id: null }]);
    expect(await countUsers("audit-x")).toBe(0);
  });

  it("an unauthenticated request leaves none", async () => {
    const { request, envelope } = await buildRequest(CALLBACK_URL, profile("sha1+gcm"), "CREATE_USER", { username: "audit-y", name: "Y" }, {
      bearer: "wrong",
    });
    expect((await callWorker(request, workerEnv(profile("sha1+gcm")))).status).toBe(401);
    expect(await deliveriesFor(envelope.nonce)).toEqual([]);
  });
});
