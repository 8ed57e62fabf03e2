// Organization events through the Worker (contract sections 4 and 6): reply and rows for each rule.
import { describe, expect, it } from "vitest";
import { readDirectory } from "../../src/directory/snapshot";
import { createOrg, createUser, db, deliveriesFor, ID_SHAPE, liveOrg, nextTimestamp, orgRow, send } from "./support";

describe("CREATE_ORGANIZATION", () => {
  it("creates the organization, replies with our id, and audits the delivery", async () => {
    const sent = await send("CREATE_ORGANIZATION", { code: "create-1", name: "Create One", costCenter: "CC-1" });
    expect(sent).toMatchObject({ status: 200, code: "200", message: "success" });
    expect(sent.plaintext).toBe(JSON.stringify({ id: sent.id }));
    expect(sent.id).toMatch(ID_SHAPE.org);

    expect(await liveOrg(sent.id!)).toMatchObject({
      code: "create-1",
      name: "Create One",
      parentId: null,
      parentMissing: false,
      extensions: { costCenter: "CC-1" },
      deletedAt: null,
    });
    const [delivery, ...more] = await deliveriesFor(sent.envelope.nonce);
    expect(more).toEqual([]);
    expect(delivery).toMatchObject({ event_type: "CREATE_ORGANIZATION", code: "200", message: "success", entity_id: sent.id });
  });

  it("is idempotent by code: a resent create returns the same id and applies its attributes", async () => {
    const first = await send("CREATE_ORGANIZATION", { code: "idem-1", name: "First name", a: 1 });
    const again = await send("CREATE_ORGANIZATION", { code: "idem-1", name: "Second name", b: 2 });
    expect(again).toMatchObject({ code: "200", message: "success", id: first.id });
    const { results } = await db().prepare("SELECT id, name, extensions FROM organizations WHERE code = 'idem-1'").all();
    // The create states the whole record: extensions are replaced, not merged.
    expect(results).toEqual([{ id: first.id, name: "Second name", extensions: '{"b":2}' }]);
  });

  it("a create older than the stored state is acknowledged with the existing id and ignored", async () => {
    const ts = nextTimestamp();
    const id = (await send("CREATE_ORGANIZATION", { code: "old-create", name: "Newer" }, { timestamp: ts })).id!;
    const older = await send("CREATE_ORGANIZATION", { code: "old-create", name: "Older" }, { timestamp: ts - 1000 });
    expect(older).toMatchObject({ code: "200", message: "already applied", id });
    expect((await orgRow(id))!.name).toBe("Newer");
  });

  it("accepts an unknown parentId and flags it", async () => {
    const id = await createOrg("orphan-1", "Orphan", "org_unknown00000");
    expect(await liveOrg(id)).toMatchObject({ parentId: "org_unknown00000", parentMissing: true });
  });

  it("refuses a create (of an existing code) whose parent is its own descendant", async () => {
    const top = await createOrg("cyc-create-top", "Top");
    const child = await createOrg("cyc-create-child", "Child", top);
    const sent = await send("CREATE_ORGANIZATION", { code: "cyc-create-top", name: "Top", parentId: child });
    expect(sent).toMatchObject({ status: 400, code: "400", message: "parentId would create a cycle", plaintext: "" });
    expect(await liveOrg(top)).toMatchObject({ parentId: null });
    expect((await deliveriesFor(sent.envelope.nonce))[0]).toMatchObject({ code: "400", entity_id: top });
  });

  it("stores extension names and values as data, never as SQL", async () => {
    const ext = { "x.y-z_1": "'); DROP TABLE organizations; --", Nested: { a: [1, "b", null] }, Flag: true };
    const id = await createOrg("ext-data", "Ext", undefined, ext);
    expect((await liveOrg(id))!.extensions).toEqual(ext);
    expect(await db().prepare("SELECT count(*) AS n FROM organizations").first("n")).toBeGreaterThan(0);
  });

  it("refuses an invalid field with 400 naming it, stores nothing but the audit row", async () => {
    const sent = await send("CREATE_ORGANIZATION", { code: "too-long-name", name: "x".repeat(41) });
    expect(sent).toMatchObject({ status: 400, code: "400", message: "name exceeds 40 characters", plaintext: "" });
    expect(await db().prepare("SELECT id FROM organizations WHERE code = 'too-long-name'").first()).toBeNull();
    expect(await deliveriesFor(sent.envelope.nonce)).toMatchObject([
      { event_type: "CREATE_ORGANIZATION", code: "400", message: "name exceeds 40 characters", entity_id: null },
    ]);
  });
});

describe("UPDATE_ORGANIZATION", () => {
  it("applies code, name and parent; merges extensions (null removes a key)", async () => {
    const parent = await createOrg("upd-parent", "Parent");
    const id = await createOrg("upd-1", "Before", undefined, { keep: "k", drop: "d", change: 1 });
    const sent = await send("UPDATE_ORGANIZATION", { id, code: "upd-1-renamed", name: "After", parentId: parent, drop: null, change: 2, added: "a" });
    expect(sent).toMatchObject({ code: "200", message: "success", plaintext: JSON.stringify({ id }) });
    expect(await liveOrg(id)).toMatchObject({
      code: "upd-1-renamed",
      name: "After",
      parentId: parent,
      parentMissing: false,
      extensions: { added: "a", change: 2, keep: "k" },
    });
  });

  it("ignores an older update and an identical resend (200, existing id)", async () => {
    const id = await createOrg("lww-org", "Original");
    const ts = nextTimestamp();
    expect((await send("UPDATE_ORGANIZATION", { id, code: "lww-org", name: "Current" }, { timestamp: ts })).code).toBe("200");
    const before = await orgRow(id);
    const resent = await send("UPDATE_ORGANIZATION", { id, code: "lww-org", name: "Current" }, { timestamp: ts });
    expect(resent).toMatchObject({ status: 200, message: "already applied", id });
    for (const timestamp of [ts - 1, ts - 60_000]) {
      const stale = await send("UPDATE_ORGANIZATION", { id, code: "lww-org", name: `Stale ${timestamp}` }, { timestamp });
      expect(stale).toMatchObject({ status: 200, code: "200", message: "already applied", id });
      expect((await deliveriesFor(stale.envelope.nonce))[0]).toMatchObject({ code: "200", message: "already applied" });
    }
    expect(await orgRow(id)).toEqual(before);
    expect(before).toMatchObject({ name: "Current", event_ts: ts });
  });

  it("an update without parentId keeps the parent (updates carry only what changed)", async () => {
    const parent = await createOrg("keep-parent-p", "Parent");
    const child = (await send("CREATE_ORGANIZATION", { code: "keep-parent-c", name: "Child", parentId: parent })).id!;
    expect((await send("UPDATE_ORGANIZATION", { id: child, code: "keep-parent-c", name: "Renamed" })).code).toBe("200");
    expect(await orgRow(child)).toMatchObject({ name: "Renamed", parent_id: parent });
    expect((await send("UPDATE_ORGANIZATION", { id: child, code: "keep-parent-c", name: "Renamed", parentId: "" })).code).toBe("200");
    expect(await orgRow(child)).toMatchObject({ parent_id: null });
  });

  it("answers 404 for an unknown id", async () => {
    const sent = await send("UPDATE_ORGANIZATION", { id: "org_doesnotexist", code: "nope", name: "Nope" });
    expect(sent).toMatchObject({ status: 404, code: "404", message: "organization not found", plaintext: "" });
    expect(await db().prepare("SELECT id FROM organizations WHERE code = 'nope'").first()).toBeNull();
    expect((await deliveriesFor(sent.envelope.nonce))[0]).toMatchObject({ code: "404", entity_id: "org_doesnotexist" });
  });

  it("answers 404 for a deleted organization", async () => {
    const id = await createOrg("upd-deleted", "Deleted");
    await send("DELETE_ORGANIZATION", { id });
    const sent = await send("UPDATE_ORGANIZATION", { id, code: "upd-deleted", name: "Back?" });
    expect(sent).toMatchObject({ code: "404", message: "organization not found" });
    expect(await orgRow(id)).toMatchObject({ name: "Deleted" });
  });

  it("refuses to make an organization its own parent", async () => {
    const id = await createOrg("self-parent", "Self");
    const sent = await send("UPDATE_ORGANIZATION", { id, code: "self-parent", name: "Self", parentId: id });
    expect(sent).toMatchObject({ status: 400, code: "400", message: "parentId would create a cycle" });
    expect(await liveOrg(id)).toMatchObject({ parentId: null });
  });

  it("refuses to make an organization its own ancestor (three levels)", async () => {
    const a = await createOrg("cyc-a", "A");
    const b = await createOrg("cyc-b", "B", a);
    const c = await createOrg("cyc-c", "C", b);
    const sent = await send("UPDATE_ORGANIZATION", { id: a, code: "cyc-a", name: "A", parentId: c });
    expect(sent).toMatchObject({ status: 400, code: "400", message: "parentId would create a cycle" });
    expect(await liveOrg(a)).toMatchObject({ parentId: null });
    // Moving a leaf elsewhere in the tree is fine.
    expect((await send("UPDATE_ORGANIZATION", { id: c, code: "cyc-c", name: "C", parentId: a })).code).toBe("200");
    expect(await liveOrg(c)).toMatchObject({ parentId: a });
  });

  it("a create sent before a code change is about the renamed organization: same id, ignored", async () => {
    const t0 = nextTimestamp();
    const id = (await send("CREATE_ORGANIZATION", { code: "old-code", name: "Org" }, { timestamp: t0 })).id!;
    await send("UPDATE_ORGANIZATION", { id, code: "new-code", name: "Org" });
    const late = await send("CREATE_ORGANIZATION", { code: "old-code", name: "Org (late resend)" }, { timestamp: t0 });
    expect(late).toMatchObject({ code: "200", message: "already applied", id });
    expect(await db().prepare("SELECT id FROM organizations WHERE code = 'old-code'").first()).toBeNull();
    const newcomer = await send("CREATE_ORGANIZATION", { code: "old-code", name: "Newcomer" });
    expect(newcomer.id).not.toBe(id);
  });

  it("refuses a code already held by another organization", async () => {
    await createOrg("held-code", "Holder");
    const id = await createOrg("wants-code", "Wants");
    const sent = await send("UPDATE_ORGANIZATION", { id, code: "held-code", name: "Wants" });
    expect(sent).toMatchObject({ status: 400, message: "code is already used by another organization" });
    expect(await orgRow(id)).toMatchObject({ code: "wants-code" });
  });

  it("refuses merged extensions that outgrow the limits", async () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`first${i}`, i]));
    const more = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`second${i}`, i]));
    const id = await createOrg("ext-limit", "Ext", undefined, many);
    const sent = await send("UPDATE_ORGANIZATION", { id, code: "ext-limit", name: "Ext", ...more });
    expect(sent).toMatchObject({ status: 400, message: "more than 64 extension attributes" });
    expect(Object.keys((await liveOrg(id))!.extensions)).toHaveLength(40);
  });
});

describe("DELETE_ORGANIZATION", () => {
  it("keeps a tombstone that reads hide; deleting again or deleting an unknown id answers 200", async () => {
    const id = await createOrg("del-1", "Del");
    const sent = await send("DELETE_ORGANIZATION", { id });
    expect(sent).toMatchObject({ status: 200, code: "200", message: "success", plaintext: "" });
    expect(await liveOrg(id)).toBeUndefined();
    const all = await readDirectory(db(), { includeDeleted: true });
    expect(all.organizations.find((o) => o.id === id)).toMatchObject({ code: "del-1", deletedAt: expect.any(Number) });
    expect((await deliveriesFor(sent.envelope.nonce))[0]).toMatchObject({ code: "200", entity_id: id, event_type: "DELETE_ORGANIZATION" });

    expect(await send("DELETE_ORGANIZATION", { id })).toMatchObject({ code: "200", message: "already deleted", plaintext: "" });
    expect(await send("DELETE_ORGANIZATION", { id: "org_neverexisted" })).toMatchObject({
      code: "200",
      message: "nothing to delete",
      plaintext: "",
    });
  });

  it("a create of a deleted code revives the same id with the create's attributes", async () => {
    const id = await createOrg("revive-org", "Old name", undefined, { old: 1 });
    await send("DELETE_ORGANIZATION", { id });
    const revived = await send("CREATE_ORGANIZATION", { code: "revive-org", name: "New name", fresh: 2 });
    expect(revived).toMatchObject({ code: "200", id });
    expect(await liveOrg(id)).toMatchObject({ name: "New name", deletedAt: null, extensions: { fresh: 2 } });
  });

  it("refuses to delete an organization with live children or members, giving the counts", async () => {
    const id = await createOrg("busy-org", "Busy");
    const kids = [await createOrg("busy-kid-1", "K1", id), await createOrg("busy-kid-2", "K2", id)];
    const members = [];
    for (const n of [1, 2, 3]) members.push(await createUser(`busy-member-${n}`, { organizationId: id }));
    // Tombstones do not count.
    const gone = await createUser("busy-member-gone", { organizationId: id });
    await send("DELETE_USER", { id: gone });

    const sent = await send("DELETE_ORGANIZATION", { id });
    expect(sent).toMatchObject({ status: 400, code: "400", message: "organization has 2 child organizations and 3 members" });
    expect(await liveOrg(id)).toBeDefined();

    for (const kid of kids) await send("DELETE_ORGANIZATION", { id: kid });
    for (const m of members.slice(1)) await send("DELETE_USER", { id: m });
    expect((await send("DELETE_ORGANIZATION", { id })).message).toBe("organization has 0 child organizations and 1 member");

    await send("DELETE_USER", { id: members[0] });
    expect((await send("DELETE_ORGANIZATION", { id })).code).toBe("200");
    expect(await liveOrg(id)).toBeUndefined();
  });

  it("ignores a delete older than the last applied event", async () => {
    const id = await createOrg("old-delete", "Kept");
    const ts = nextTimestamp();
    await send("UPDATE_ORGANIZATION", { id, code: "old-delete", name: "Kept too" }, { timestamp: ts });
    const stale = await send("DELETE_ORGANIZATION", { id }, { timestamp: ts - 1 });
    expect(stale).toMatchObject({ code: "200", message: "already applied", plaintext: "" });
    expect(await liveOrg(id)).toMatchObject({ name: "Kept too" });
  });

  it("a newer delete of a tombstone moves its time forward: a create older than that delete stays ignored", async () => {
    const t = nextTimestamp() + 10;
    const id = (await send("CREATE_ORGANIZATION", { code: "late-create", name: "Late" }, { timestamp: t + 1 })).id!;
    await send("DELETE_ORGANIZATION", { id }, { timestamp: t + 2 });
    expect(await send("DELETE_ORGANIZATION", { id }, { timestamp: t + 4 })).toMatchObject({ code: "200", message: "already deleted" });
    expect(await send("CREATE_ORGANIZATION", { code: "late-create", name: "Late" }, { timestamp: t + 3 })).toMatchObject({
      code: "200",
      message: "already applied",
      id,
    });
    expect(await orgRow(id)).toMatchObject({ deleted_at: expect.any(Number), event_ts: t + 4 });
  });

  it("flags rows pointing to a deleted organization and clears the flags when it is revived", async () => {
    const id = await createOrg("flag-parent", "Parent");
    await send("DELETE_ORGANIZATION", { id });
    const child = await createOrg("flag-child", "Child", id);
    const member = await createUser("flag-member", { organizationId: id });
    const far = await createOrg("flag-far", "Far", "org_neverexists0");
    expect(await liveOrg(child)).toMatchObject({ parentId: id, parentMissing: true });
    expect(await db().prepare("SELECT organization_missing FROM users WHERE id = ?").bind(member).first("organization_missing")).toBe(1);

    expect(await createOrg("flag-parent", "Parent again")).toBe(id);
    expect(await liveOrg(child)).toMatchObject({ parentId: id, parentMissing: false });
    expect(await db().prepare("SELECT organization_missing FROM users WHERE id = ?").bind(member).first("organization_missing")).toBe(0);
    expect(await liveOrg(far)).toMatchObject({ parentMissing: true });
  });
});
