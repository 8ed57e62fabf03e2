// One event is one D1 batch (contract section 6): a failing batch leaves nothing and answers 500 so the
// retry succeeds (shown with real D1 batches in which a statement fails only because the event's own writes
// ran before it, so what is left afterwards is D1's rollback, not a stub's); a concurrent event between an
// event's read and its batch makes it decide again instead of writing a stale decision; every
// authenticated callback leaves one audit row.
import { describe, expect, it } from "vitest";
import { readDirectory } from "../../src/directory/snapshot";
import { callWorker, CALLBACK_URL, profile, testEnv } from "../helpers/worker";
import { buildRequest, type SenderProfile } from "../sender/oneaccess-sender";
import {
  createOrg,
  createUser,
  db,
  deliveriesFor,
  liveOrg,
  liveUser,
  nextTimestamp,
  orgRow,
  ownBinding,
  send,
  sendEnvelope,
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

/**
 * A binding of its own whose `n`-th D1 batch goes to the real database with `edit` applied (the others as
 * they are); records each batch it saw and the error any batch failed with.
 */
function editBatch(n: number, edit: (statements: D1PreparedStatement[]) => D1PreparedStatement[]) {
  let seen = 0;
  const errors: string[] = [];
  const binding = ownBinding(async (statements) => {
    try {
      return await db().batch(++seen === n ? edit(statements) : statements);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
      throw e;
    }
  });
  return { binding, batches: () => seen, errors };
}

/** The event's statements with `extra` inserted just before the last one (the audit row). */
const beforeAuditRow = (extra: D1PreparedStatement) => (s: D1PreparedStatement[]) => [...s.slice(0, -1), extra, ...s.slice(-1)];

/**
 * A statement that fails (UNIQUE constraint on the primary key) exactly when the table already holds a row
 * matching `where`: it copies that row under the same id. Placed after an event's write, it fails only
 * because the write ran inside the same batch, so what is left afterwards shows the batch's rollback.
 */
function duplicateOf(table: "users" | "organizations", where: string, value: string): D1PreparedStatement {
  const key = table === "users" ? "username" : "code";
  return db()
    .prepare(
      `INSERT INTO ${table} (id, ${key}, name, event_ts, created_at, updated_at)
       SELECT id, ${key} || '#twin', name, 0, 0, 0 FROM ${table} WHERE ${where}`,
    )
    .bind(value);
}

async function releasedKeys(key: string) {
  const { results } = await db().prepare("SELECT entity, key, entity_id FROM released_keys WHERE key = ?").bind(key).all();
  return results;
}

describe("a D1 failure in the middle of a batch", () => {
  it("a create whose batch fails after its insert ran (a constraint violation): no row, no audit row, 500, then the retry applies", async () => {
    const username = "atomic-create";
    const failing = editBatch(1, beforeAuditRow(duplicateOf("users", "username = ?", username)));
    const first = await send("CREATE_USER", { username, name: "Atomic" }, { env: { DB: failing.binding } });
    expect(first).toMatchObject({ status: 500, code: "500", message: "internal error, retry later", plaintext: "" });
    // One batch (the guarded insert and its audit row), failed by the duplicate of the row its insert made.
    expect(failing.batches()).toBe(1);
    expect(failing.errors).toHaveLength(1);
    expect(failing.errors[0]).toMatch(/UNIQUE constraint failed: users\.id/);
    expect(await countUsers(username)).toBe(0);
    expect(await countUsers(`${username}#twin`)).toBe(0);
    expect(await deliveriesFor(first.envelope.nonce)).toEqual([]);

    const retry = await first.resend({});
    expect(retry).toMatchObject({ status: 200, code: "200", message: "success" });
    expect(await liveUser(retry.id!)).toMatchObject({ username, name: "Atomic" });
    expect(await countUsers(username)).toBe(1);
    expect(await deliveriesFor(first.envelope.nonce)).toMatchObject([{ code: "200", entity_id: retry.id }]);
  });

  it("a rename whose write batch fails after the update and the released key ran: the old row, no released key, no audit row", async () => {
    const id = await createUser("atomic-rename-old", { name: "Before" });
    const before = await userRow(id);
    const failing = editBatch(2, beforeAuditRow(duplicateOf("users", "username = ?", "atomic-rename-new")));
    const first = await send("UPDATE_USER", { id, username: "atomic-rename-new", name: "After" }, { env: { DB: failing.binding } });
    expect(first).toMatchObject({ status: 500, code: "500" });
    // The read batch, then the write batch [snapshot check, update, released key, audit row] that failed.
    expect(failing.batches()).toBe(2);
    expect(failing.errors).toEqual([expect.stringMatching(/UNIQUE constraint failed: users\.id/)]);
    expect(await userRow(id)).toEqual(before);
    expect(await countUsers("atomic-rename-new")).toBe(0);
    expect(await releasedKeys("atomic-rename-old")).toEqual([]);
    expect(await deliveriesFor(first.envelope.nonce)).toEqual([]);

    expect(await first.resend({})).toMatchObject({ code: "200", message: "success", id });
    expect(await userRow(id)).toMatchObject({ username: "atomic-rename-new", name: "After", version: (before!.version as number) + 1 });
    expect(await releasedKeys("atomic-rename-old")).toEqual([{ entity: "user", key: "atomic-rename-old", entity_id: id }]);
    expect(await deliveriesFor(first.envelope.nonce)).toMatchObject([{ code: "200", entity_id: id }]);
  });

  it("a batch rejected before it reaches D1 (connection lost): 500, and the same request then applies once", async () => {
    const lost = ownBinding(async () => Promise.reject(new Error("D1_ERROR: network connection lost")));
    const first = await send("CREATE_USER", { username: "atomic-lost", name: "Lost" }, { env: { DB: lost } });
    expect(first).toMatchObject({ status: 500, code: "500", message: "internal error, retry later", plaintext: "" });
    const retry = await first.resend({});
    expect(retry).toMatchObject({ status: 200, code: "200", message: "success" });
    expect(await countUsers("atomic-lost")).toBe(1);
    expect(await deliveriesFor(first.envelope.nonce)).toMatchObject([{ code: "200", entity_id: retry.id }]);
  });

  it("D1 itself: a batch whose snapshot check aborts after its inserts and update ran leaves none of them", async () => {
    const existing = await createUser("atomic-raw-existing", { name: "Unchanged" });
    const before = await userRow(existing);
    const writes = (suffix: string) => [
      db()
        .prepare("INSERT INTO organizations (id, code, name, event_ts, created_at, updated_at) VALUES (?, ?, 'Raw', 1, 1, 1)")
        .bind(`org_atomicRaw${suffix}0`, `atomic-raw-org-${suffix}`),
      db()
        .prepare("INSERT INTO users (id, username, name, event_ts, created_at, updated_at) VALUES (?, ?, 'Raw', 1, 1, 1)")
        .bind(`usr_atomicRaw${suffix}0`, `atomic-raw-user-${suffix}`),
      db().prepare("UPDATE users SET name = ?, version = version + 1 WHERE id = ?").bind(`Changed ${suffix}`, existing),
      db()
        .prepare("INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms) VALUES (1, 'CREATE_USER', ?, '200', 'success', NULL, 1)")
        .bind(`atomic-raw-nonce-${suffix}`),
    ];
    // Holds (1) while the user the batch inserts does not exist; false (0) once it does: the trigger aborts.
    const check = (suffix: string) =>
      db().prepare("INSERT INTO snapshot_checks (holds) SELECT NOT EXISTS (SELECT 1 FROM users WHERE username = ?)").bind(`atomic-raw-user-${suffix}`);

    let message = "";
    try {
      await db().batch([...writes("A"), check("A")]);
    } catch (e) {
      message = e instanceof Error ? e.message : String(e);
    }
    expect(message).toContain("directory snapshot changed");
    expect(await db().prepare("SELECT count(*) AS n FROM organizations WHERE code = 'atomic-raw-org-A'").first("n")).toBe(0);
    expect(await countUsers("atomic-raw-user-A")).toBe(0);
    expect(await userRow(existing)).toEqual(before);
    expect(await deliveriesFor("atomic-raw-nonce-A")).toEqual([]);

    // The same statements with the check first (nothing inserted yet, so it holds): all of them land. So the
    // abort above came from the batch's own earlier writes, and what they wrote was rolled back.
    await db().batch([check("B"), ...writes("B")]);
    expect(await db().prepare("SELECT count(*) AS n FROM organizations WHERE code = 'atomic-raw-org-B'").first("n")).toBe(1);
    expect(await countUsers("atomic-raw-user-B")).toBe(1);
    expect(await userRow(existing)).toMatchObject({ name: "Changed B", version: (before!.version as number) + 1 });
    expect(await deliveriesFor("atomic-raw-nonce-B")).toHaveLength(1);
  });

  it("a revival with flag clearing is all or nothing too", async () => {
    const parent = await createOrg("atomic-parent", "Parent");
    await send("DELETE_ORGANIZATION", { id: parent });
    const child = await createOrg("atomic-child", "Child", parent);
    const member = await createUser("atomic-member", { organizationId: parent });
    const parentBefore = await orgRow(parent);
    // Batches: the guarded insert (changes nothing: the code is held by the tombstone), the reads, then the
    // write batch [check, revive, clear parent flags, clear member flags, audit row]. Fail it after the
    // revive and the parent flags ran, by a duplicate of the revived (live) row.
    const failing = editBatch(3, (s) => [
      ...s.slice(0, -2),
      duplicateOf("organizations", "id = ? AND deleted_at IS NULL", parent),
      ...s.slice(-2),
    ]);
    const first = await send("CREATE_ORGANIZATION", { code: "atomic-parent", name: "Parent back" }, { env: { DB: failing.binding } });
    expect(first.code).toBe("500");
    expect(failing.batches()).toBe(3);
    expect(failing.errors).toEqual([expect.stringMatching(/UNIQUE constraint failed: organizations\.id/)]);
    expect(await orgRow(parent)).toEqual(parentBefore);
    expect(await liveOrg(parent)).toBeUndefined();
    expect(await liveOrg(child)).toMatchObject({ parentMissing: true });
    expect(await liveUser(member)).toMatchObject({ organizationMissing: true });
    expect(await deliveriesFor(first.envelope.nonce)).toEqual([]);

    expect(await first.resend({})).toMatchObject({ code: "200", id: parent });
    expect(await liveOrg(parent)).toMatchObject({ name: "Parent back" });
    expect(await liveOrg(child)).toMatchObject({ parentMissing: false });
    expect(await liveUser(member)).toMatchObject({ organizationMissing: false });
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
    let statements = 0;
    const busy = ownBinding(async (s) => {
      statements += s.length;
      // Each attempt reads (odd batches), then writes (even ones). Between the two, another writer changes
      // the row every time (its version moves; its event timestamp stays older than this event's).
      if (++batches % 2 === 0) await db().prepare("UPDATE users SET version = version + 1 WHERE id = ?").bind(id).run();
      return db().batch(s);
    });
    const first = await send("UPDATE_USER", { id, username: "race-busy", name: "Renamed" }, { env: { DB: busy }, timestamp: ts });
    expect(first).toMatchObject({ status: 500, code: "500" });
    expect(batches).toBe(10); // 5 attempts (under the Free plan's 50 queries per invocation), a read and a write batch each
    expect(statements).toBeLessThanOrEqual(50);
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
  it("hold time, event type, nonce, outcome, message, entity id and duration, never the payload; a change adds its record", async () => {
    const sent = await send("CREATE_USER", { username: "audit-user", name: "Distinctive Payload Name", email: "audit@example.com", password: "Audit-Secret-9" });
    const { results } = await db().prepare("SELECT * FROM deliveries WHERE nonce = ?").bind(sent.envelope.nonce).all();
    expect(results).toHaveLength(1);
    const row = results[0]!;
    expect(Object.keys(row).sort()).toEqual(
      ["code", "duration_ms", "entity_id", "event_type", "id", "message", "nonce", "received_at", "change_type", "changed", "entity_version", "event_at", "entity"].sort(),
    );
    expect(row).toMatchObject({ event_type: "CREATE_USER", code: "200", message: "success", entity_id: sent.id, change_type: "user.created", entity_version: 0 });
    expect(row.received_at).toBeGreaterThan(Date.now() - 60_000);
    expect(row.duration_ms).toBeGreaterThanOrEqual(0);
    // The audit columns never hold the payload; the change record holds the entity as the read API shows it
    // (its name and email, then), and never the password or a hash of it.
    const { entity, changed, ...audit } = row;
    expect(JSON.stringify(audit)).not.toMatch(/Distinctive|audit@example/);
    const shown = await callWorker(new Request(`https://receiver.test/api/v1/users/${sent.id}`, { headers: { authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN}` } }));
    expect(JSON.parse(entity as string)).toEqual(((await shown.json()) as { data: unknown }).data);
    expect(JSON.parse(changed as string)).toEqual(["username", "name", "disabled", "email"]);
    expect(JSON.stringify(row)).not.toMatch(/Audit-Secret-9|pbkdf2/);
  });

  it("CHECK_URL leaves one row, written by its replay key's object before the echo is sent", async () => {
    const sent = await send("CHECK_URL", "audit-check-url-random");
    expect(sent).toMatchObject({ code: "200", plaintext: "audit-check-url-random" });
    expect(await deliveriesFor(sent.envelope.nonce)).toMatchObject([
      { event_type: "CHECK_URL", code: "200", message: "success", entity_id: null },
    ]);
  });

  it("a CHECK_URL whose audit row fails in D1 after its insert ran answers 500 and leaves no row; its retry is echoed and audited once", async () => {
    const p = profile("sha1+gcm");
    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "failed-audit");
    // After the audit insert, a copy of its row under its own id: fails only because the row was inserted.
    const duplicate = db()
      .prepare(
        `INSERT INTO deliveries (id, received_at, event_type, nonce, code, message, entity_id, duration_ms)
         SELECT id, received_at, event_type, nonce, code, message, entity_id, duration_ms FROM deliveries WHERE nonce = ?`,
      )
      .bind(envelope.nonce);
    const errors: string[] = [];
    const failing = ownBinding(async (s) => {
      try {
        return await db().batch([...s, duplicate]);
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
        throw e;
      }
    });
    const failed = await sendEnvelope(p, envelope, { DB: failing });
    expect(failed).toMatchObject({ status: 500, code: "500", message: "internal error, retry later" });
    expect(errors).toEqual([expect.stringMatching(/UNIQUE constraint failed: deliveries\.id/)]);
    expect(await deliveriesFor(envelope.nonce)).toEqual([]);

    const retry = await sendEnvelope(p, envelope);
    expect(retry).toMatchObject({ status: 200, code: "200", plaintext: "failed-audit" });
    expect(await sendEnvelope(p, envelope)).toMatchObject({ status: 200, plaintext: "failed-audit" });
    expect(await deliveriesFor(envelope.nonce)).toMatchObject([{ event_type: "CHECK_URL", code: "200" }]);
  });

  it("a CHECK_URL whose audit row never reaches D1 (connection lost) answers 500, then its retry goes through", async () => {
    const lost = ownBinding(async () => Promise.reject(new Error("D1_ERROR: network connection lost")));
    const p = profile("sha1+gcm");
    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "lost-audit");
    expect(await sendEnvelope(p, envelope, { DB: lost })).toMatchObject({ status: 500 });
    expect(await sendEnvelope(p, envelope)).toMatchObject({ status: 200, plaintext: "lost-audit" });
    expect(await deliveriesFor(envelope.nonce)).toHaveLength(1);
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
