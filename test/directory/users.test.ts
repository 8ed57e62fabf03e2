// User events through the Worker (contract sections 4 and 6): reply and rows for each rule.
import { describe, expect, it } from "vitest";
import { readDirectory } from "../../src/directory/snapshot";
import { createOrg, createUser, db, deliveriesFor, ID_SHAPE, liveUser, nextTimestamp, send, userRow } from "./support";

describe("CREATE_USER", () => {
  it("creates the user with every attribute, replies with our id, and audits the delivery", async () => {
    const org = await createOrg("u-create-org", "Org");
    const sent = await send("CREATE_USER", {
      username: "alice",
      name: "Alice Liddell",
      organizationId: org,
      password: "",
      disabled: false,
      firstName: "Alice",
      lastName: "Liddell",
      mobile: "+44 20 0000 0000",
      email: "alice@example.com",
      employeeNo: "E-001",
      badge: { color: "blue" },
    });
    expect(sent).toMatchObject({ status: 200, code: "200", message: "success" });
    expect(sent.plaintext).toBe(JSON.stringify({ id: sent.id }));
    expect(sent.id).toMatch(ID_SHAPE.usr);
    expect(await liveUser(sent.id!)).toEqual({
      id: sent.id,
      username: "alice",
      name: "Alice Liddell",
      organizationId: org,
      organizationMissing: false,
      disabled: false,
      firstName: "Alice",
      middleName: null,
      lastName: "Liddell",
      mobile: "+44 20 0000 0000",
      email: "alice@example.com",
      extensions: { badge: { color: "blue" }, employeeNo: "E-001" },
      eventTs: sent.envelope.timestamp,
      createdAt: expect.any(Number),
      updatedAt: expect.any(Number),
      deletedAt: null,
    });
    expect(await deliveriesFor(sent.envelope.nonce)).toMatchObject([
      { event_type: "CREATE_USER", code: "200", message: "success", entity_id: sent.id },
    ]);
  });

  it("is idempotent by username: same id, the create's attributes replace the stored ones, disabled stays unless said", async () => {
    const id = await createUser("bob", { email: "bob@old.example", mobile: "1", disabled: true, x: 1 });
    const again = await send("CREATE_USER", { username: "bob", name: "Bob Again", email: "bob@new.example", y: 2 });
    expect(again).toMatchObject({ code: "200", id });
    expect(await db().prepare("SELECT count(*) AS n FROM users WHERE username = 'bob'").first("n")).toBe(1);
    // Fail closed: a create that does not say `disabled` never re-enables anyone.
    expect(await liveUser(id)).toMatchObject({
      name: "Bob Again",
      email: "bob@new.example",
      mobile: null,
      disabled: true,
      extensions: { y: 2 },
    });
    await send("CREATE_USER", { username: "bob", name: "Bob Again", disabled: false });
    expect(await liveUser(id)).toMatchObject({ disabled: false });
  });

  it("accepts disabled as a string and an unknown organizationId (flagged)", async () => {
    const id = await createUser("carol", { disabled: "true", organizationId: "org_notknownyet0" });
    expect(await liveUser(id)).toMatchObject({ disabled: true, organizationId: "org_notknownyet0", organizationMissing: true });
  });

  it("a create older than the stored state is acknowledged with the existing id and ignored", async () => {
    const ts = nextTimestamp();
    const id = (await send("CREATE_USER", { username: "dave", name: "Dave New" }, { timestamp: ts })).id!;
    const older = await send("CREATE_USER", { username: "dave", name: "Dave Old" }, { timestamp: ts - 5_000 });
    expect(older).toMatchObject({ code: "200", message: "already applied", id });
    expect(await liveUser(id)).toMatchObject({ name: "Dave New", eventTs: ts });
  });

  it("refuses an invalid field with 400 naming it, stores nothing but the audit row", async () => {
    const sent = await send("CREATE_USER", { username: "erin" });
    expect(sent).toMatchObject({ status: 400, code: "400", message: "name is required", plaintext: "" });
    expect(await db().prepare("SELECT id FROM users WHERE username = 'erin'").first()).toBeNull();
    expect(await deliveriesFor(sent.envelope.nonce)).toMatchObject([{ code: "400", message: "name is required", entity_id: null }]);
  });
});

describe("UPDATE_USER", () => {
  it("applies only changed attributes: absent unchanged, null clears, extensions merged", async () => {
    const org = await createOrg("u-upd-org", "Org");
    const other = await createOrg("u-upd-other", "Other");
    const id = await createUser("frank", {
      organizationId: org,
      firstName: "Frank",
      lastName: "Stone",
      email: "frank@example.com",
      mobile: "123",
      keep: "k",
      drop: "d",
      change: 1,
    });
    const sent = await send("UPDATE_USER", {
      id,
      username: "frank",
      disabled: true,
      organizationId: other,
      email: null,
      mobile: "",
      drop: null,
      change: 2,
      added: true,
    });
    expect(sent).toMatchObject({ status: 200, code: "200", message: "success", plaintext: JSON.stringify({ id }) });
    expect(await liveUser(id)).toMatchObject({
      username: "frank",
      name: "Name of frank",
      organizationId: other,
      disabled: true,
      firstName: "Frank",
      lastName: "Stone",
      email: null,
      mobile: null,
      extensions: { added: true, change: 2, keep: "k" },
    });
  });

  it("renames the username, keeping the id; refuses a username held by another user", async () => {
    const id = await createUser("grace");
    await createUser("heidi");
    expect(await send("UPDATE_USER", { id, username: "grace.hopper" })).toMatchObject({ code: "200", id });
    expect(await liveUser(id)).toMatchObject({ username: "grace.hopper" });
    const taken = await send("UPDATE_USER", { id, username: "heidi" });
    expect(taken).toMatchObject({ status: 400, message: "username is already used by another user" });
    expect(await liveUser(id)).toMatchObject({ username: "grace.hopper" });
  });

  it("a create sent before a username rename is about the renamed user: same id, ignored", async () => {
    const t0 = nextTimestamp();
    const id = (await send("CREATE_USER", { username: "olga", name: "Olga" }, { timestamp: t0 })).id!;
    await send("UPDATE_USER", { id, username: "olga.renamed" });
    const late = await send("CREATE_USER", { username: "olga", name: "Olga (late resend)" }, { timestamp: t0 });
    expect(late).toMatchObject({ code: "200", message: "already applied", id });
    expect(await db().prepare("SELECT count(*) AS n FROM users WHERE username = 'olga'").first("n")).toBe(0);
    expect(await liveUser(id)).toMatchObject({ username: "olga.renamed", name: "Olga" });
    // A create newer than the rename is a new user taking the freed username.
    const newcomer = await send("CREATE_USER", { username: "olga", name: "Another Olga" });
    expect(newcomer.id).not.toBe(id);
    expect(await liveUser(newcomer.id!)).toMatchObject({ username: "olga", name: "Another Olga" });
  });

  it("moving a user to an unknown organization flags it; null organizationId clears both", async () => {
    const id = await createUser("ivan", { organizationId: await createOrg("u-move-org", "Org") });
    await send("UPDATE_USER", { id, username: "ivan", organizationId: "org_notyetknown0" });
    expect(await liveUser(id)).toMatchObject({ organizationId: "org_notyetknown0", organizationMissing: true });
    await send("UPDATE_USER", { id, username: "ivan", organizationId: null });
    expect(await liveUser(id)).toMatchObject({ organizationId: null, organizationMissing: false });
  });

  it("ignores an older update and an identical resend (200, existing id)", async () => {
    const id = await createUser("judy");
    const ts = nextTimestamp();
    await send("UPDATE_USER", { id, username: "judy", name: "Judy Current" }, { timestamp: ts });
    const before = await userRow(id);
    for (const timestamp of [ts - 1, ts - 60_000]) {
      const stale = await send("UPDATE_USER", { id, username: "judy", name: "Judy Stale", disabled: true }, { timestamp });
      expect(stale).toMatchObject({ status: 200, code: "200", message: "already applied", id });
    }
    const resent = await send("UPDATE_USER", { id, username: "judy", name: "Judy Current" }, { timestamp: ts });
    expect(resent).toMatchObject({ status: 200, message: "already applied", id });
    expect(await userRow(id)).toEqual(before);
  });

  it("applies an update with the same timestamp as the last one (second-resolution timestamps tie)", async () => {
    const seconds = Math.floor(Date.now() / 1000);
    const created = await send("CREATE_USER", { username: "same-second", name: "First" }, { timestamp: seconds });
    const id = created.id!;
    const update = await send("UPDATE_USER", { id, username: "same-second", name: "Second", disabled: true }, { timestamp: seconds });
    expect(update).toMatchObject({ status: 200, message: "success", id });
    expect(await userRow(id)).toMatchObject({ name: "Second", disabled: 1 });
  });

  it("answers 404 for an unknown or deleted id", async () => {
    const unknown = await send("UPDATE_USER", { id: "usr_doesnotexist", username: "nobody" });
    expect(unknown).toMatchObject({ status: 404, code: "404", message: "user not found", plaintext: "" });
    expect(await db().prepare("SELECT id FROM users WHERE username = 'nobody'").first()).toBeNull();

    const id = await createUser("karl");
    await send("DELETE_USER", { id });
    const deleted = await send("UPDATE_USER", { id, username: "karl", name: "Karl?" });
    expect(deleted).toMatchObject({ status: 404, message: "user not found" });
    expect(await userRow(id)).toMatchObject({ name: "Name of karl", deleted_at: expect.any(Number) });
    expect((await deliveriesFor(deleted.envelope.nonce))[0]).toMatchObject({ code: "404", entity_id: id });
  });
});

describe("DELETE_USER", () => {
  it("keeps a tombstone that reads hide; deleting again or an unknown id answers 200", async () => {
    const id = await createUser("leo");
    const sent = await send("DELETE_USER", { id });
    expect(sent).toMatchObject({ status: 200, code: "200", message: "success", plaintext: "" });
    expect(await liveUser(id)).toBeUndefined();
    const all = await readDirectory(db(), { includeDeleted: true });
    expect(all.users.find((u) => u.id === id)).toMatchObject({ username: "leo", deletedAt: expect.any(Number) });

    expect(await send("DELETE_USER", { id })).toMatchObject({ code: "200", message: "already deleted", plaintext: "" });
    expect(await send("DELETE_USER", { id: "usr_neverexisted" })).toMatchObject({ code: "200", message: "nothing to delete" });
  });

  it("a create of a deleted username revives the same id with the create's attributes (disabled as stored unless said)", async () => {
    const id = await createUser("mallory", { email: "m@old.example", disabled: true });
    await send("DELETE_USER", { id });
    const revived = await send("CREATE_USER", { username: "mallory", name: "Mallory Back" });
    expect(revived).toMatchObject({ code: "200", id });
    expect(await liveUser(id)).toMatchObject({ name: "Mallory Back", email: null, disabled: true, deletedAt: null });
  });

  it("ignores a delete older than the last applied event", async () => {
    const id = await createUser("nina");
    const ts = nextTimestamp();
    await send("UPDATE_USER", { id, username: "nina", name: "Nina Updated" }, { timestamp: ts });
    expect(await send("DELETE_USER", { id }, { timestamp: ts - 1 })).toMatchObject({ code: "200", message: "already applied" });
    expect(await liveUser(id)).toMatchObject({ name: "Nina Updated" });
  });

  // Found by the stream properties: "already deleted" was answered before the timestamp was looked at, so a
  // newer delete of a tombstone left its time as it was, and a create older than that delete (OneAccess
  // retrying a failed create after the delete went through) revived the user.
  it("a newer delete of a tombstone moves its time forward: a create older than that delete stays ignored", async () => {
    const t = nextTimestamp() + 10;
    const id = (await send("CREATE_USER", { username: "olga", name: "Olga" }, { timestamp: t + 1 })).id!;
    await send("DELETE_USER", { id }, { timestamp: t + 2 });
    expect(await send("DELETE_USER", { id }, { timestamp: t + 4 })).toMatchObject({ code: "200", message: "already deleted" });
    const late = await send("CREATE_USER", { username: "olga", name: "Olga" }, { timestamp: t + 3 });
    expect(late).toMatchObject({ code: "200", message: "already applied", id });
    expect(await userRow(id)).toMatchObject({ deleted_at: expect.any(Number), event_ts: t + 4 });
    // An older delete of the tombstone changes nothing.
    expect(await send("DELETE_USER", { id }, { timestamp: t + 3 })).toMatchObject({ code: "200", message: "already deleted" });
    expect(await userRow(id)).toMatchObject({ event_ts: t + 4 });
  });
});
