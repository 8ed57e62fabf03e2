// GET /api/v1/events: the change log, through the Worker. Every event that changes the directory records
// exactly one change, with the most specific type, the attributes that changed, the entity's version and the
// entity as the read API showed it right then; a duplicate, a stale event, a refusal or a no-op records none.
// The feed is read in commit order with a cursor that is always returned, and answers 410 outside the log.
import { describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/read/cursor";
import { testEnv } from "../helpers/worker";
import { api, sendEvent } from "./support";

interface Change {
  id: string;
  type: string;
  entity_type: string;
  entity_id: string;
  version: number;
  changed: string[];
  occurred_at: string;
  recorded_at: string;
  entity: Record<string, unknown> | null;
}

async function latest(): Promise<string> {
  const res = await api<{ data: { cursor: string } }>("/events/latest");
  expect(res.status).toBe(200);
  return res.body.data.cursor;
}

async function changesAfter(cursor: string, query = ""): Promise<{ data: Change[]; next_cursor: string }> {
  const res = await api<{ data: Change[]; next_cursor: string }>(`/events?after=${encodeURIComponent(cursor)}${query}`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Sends the events, then returns the changes they recorded (types, ids, versions, changed lists). */
async function recorded(send: () => Promise<unknown>): Promise<Change[]> {
  const before = await latest();
  await send();
  return (await changesAfter(before, "&limit=200")).data;
}

async function ok(eventType: string, payload: unknown) {
  const sent = await sendEvent(eventType, payload);
  expect(sent.code, `${eventType} ${sent.message}`).toBe("200");
  return sent;
}

describe("one change record per event that changed the directory", () => {
  it("organizations: created, updated, moved, deleted, restored", async () => {
    let root = "";
    let child = "";
    const created = await recorded(async () => {
      root = (await ok("CREATE_ORGANIZATION", { code: "ev-root", name: "Root" })).id!;
      child = (await ok("CREATE_ORGANIZATION", { code: "ev-child", name: "Child", costCenter: "42" })).id!;
    });
    expect(created.map((c) => [c.type, c.entity_id, c.version, c.changed])).toEqual([
      ["organization.created", root, 0, ["code", "name"]],
      ["organization.created", child, 0, ["code", "name", "extensions"]],
    ]);
    const renamed = await recorded(() => ok("UPDATE_ORGANIZATION", { id: child, code: "ev-child", name: "Child renamed" }));
    expect(renamed.map((c) => [c.type, c.version, c.changed])).toEqual([["organization.updated", 1, ["name"]]]);
    const moved = await recorded(() => ok("UPDATE_ORGANIZATION", { id: child, code: "ev-child", name: "Child renamed", parentId: root }));
    expect(moved.map((c) => [c.type, c.version, c.changed])).toEqual([["organization.moved", 2, ["parent_id"]]]);
    expect(moved[0]!.entity).toMatchObject({ id: child, parent_id: root, name: "Child renamed" });
    const deleted = await recorded(() => ok("DELETE_ORGANIZATION", { id: child }));
    expect(deleted.map((c) => [c.type, c.version, c.changed, c.entity])).toEqual([["organization.deleted", 3, ["deleted_at"], null]]);
    const restored = await recorded(() => ok("CREATE_ORGANIZATION", { code: "ev-child", name: "Child back" }));
    expect(restored.map((c) => [c.type, c.entity_id, c.version])).toEqual([["organization.restored", child, 4]]);
    expect(restored[0]!.changed).toEqual(expect.arrayContaining(["name", "parent_id", "extensions", "deleted_at"]));
  });

  it("users: created, updated, disabled, enabled, moved (updated), deleted, restored", async () => {
    const org = (await ok("CREATE_ORGANIZATION", { code: "ev-users", name: "Users" })).id!;
    const other = (await ok("CREATE_ORGANIZATION", { code: "ev-other", name: "Other" })).id!;
    let id = "";
    const created = await recorded(async () => {
      id = (await ok("CREATE_USER", { username: "ev-user", name: "Ev User", organizationId: org, email: "ev@example.test", password: "Ev-Secret-1" })).id!;
    });
    expect(created.map((c) => [c.type, c.entity_id, c.version, c.changed])).toEqual([["user.created", id, 0, ["username", "name", "organization_id", "disabled", "email"]]]);
    const steps: Array<[string, Record<string, unknown>, string, string[]]> = [
      ["rename", { name: "Ev Renamed" }, "user.updated", ["name"]],
      ["disable", { disabled: true }, "user.disabled", ["disabled"]],
      ["disable and change mobile", { disabled: false, mobile: "+86 2" }, "user.enabled", ["disabled", "mobile"]],
      ["move", { organizationId: other }, "user.updated", ["organization_id"]],
    ];
    let version = 0;
    for (const [what, change, type, changed] of steps) {
      const c = await recorded(() => ok("UPDATE_USER", { id, username: "ev-user", ...change }));
      version++;
      expect(c.map((x) => [x.type, x.version, x.changed]), what).toEqual([[type, version, changed]]);
    }
    const deleted = await recorded(() => ok("DELETE_USER", { id }));
    expect(deleted.map((c) => [c.type, c.version, c.entity])).toEqual([["user.deleted", version + 1, null]]);
    const restored = await recorded(() => ok("CREATE_USER", { username: "ev-user", name: "Ev Back" }));
    expect(restored.map((c) => [c.type, c.entity_id, c.version])).toEqual([["user.restored", id, version + 2]]);
  });

  it("the entity is the read API's view right after the change, never a password or its hash", async () => {
    const before = await latest();
    const sent = await ok("CREATE_USER", { username: "ev-view", name: "Ev View", email: "view@example.test", password: "Ev-Secret-2", employeeNo: "7" });
    const [change] = (await changesAfter(before)).data;
    const shown = await api<{ data: Record<string, unknown> }>(`/users/${sent.id}`);
    expect(change!.entity).toEqual(shown.body.data);
    expect(JSON.stringify(change)).not.toMatch(/Ev-Secret-2|pbkdf2|password/);
    expect(change).toMatchObject({ entity_type: "user", entity_id: sent.id, occurred_at: expect.any(String), recorded_at: expect.any(String) });
  });

  it("records nothing for a duplicate, a stale event, a refusal, a no-op resend, a CHECK_URL or a delete that finds nothing", async () => {
    const id = (await ok("CREATE_USER", { username: "ev-quiet", name: "Quiet" })).id!;
    const none = await recorded(async () => {
      await sendEvent("CREATE_USER", { username: "ev-quiet", name: "Quiet" }); // same attributes again
      await sendEvent("CHECK_URL", "ev-random-check");
      await sendEvent("UPDATE_USER", { id: "usr_unknownxxxxx", username: "nobody" }); // 404
      await sendEvent("CREATE_USER", { username: "" }); // 400
      await sendEvent("DELETE_USER", { id: "usr_neverexisted0" }); // nothing to delete
    });
    expect(none).toEqual([]);
    // A stale update (older timestamp than the one applied) records nothing either.
    const stale = await recorded(() => sendEvent("UPDATE_USER", { id, username: "ev-quiet", name: "Old" }, { TIMESTAMP_TOLERANCE_SECONDS: "0" }, { timestamp: 1_000_000_000_001 }));
    expect(stale).toEqual([]);
  });
});

describe("reading the feed", () => {
  it("in commit order, exactly once each across pages, with next_cursor on every page, empty ones included", async () => {
    const start = await latest();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await ok("CREATE_ORGANIZATION", { code: `ev-page-${i}`, name: `Page ${i}` })).id!);
    const seen: string[] = [];
    let cursor = start;
    for (let guard = 0; guard < 10; guard++) {
      const page = await changesAfter(cursor, "&limit=3");
      expect(typeof page.next_cursor).toBe("string");
      seen.push(...page.data.map((c) => c.entity_id));
      if (page.data.length === 0) {
        // An empty page still hands back a cursor to poll with: the same position.
        expect(page.next_cursor).toBe(cursor);
        break;
      }
      cursor = page.next_cursor;
    }
    expect(seen).toEqual(ids);
    const positions = (await changesAfter(start, "&limit=200")).data.map((c) => Number(c.id));
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it("types filters, and the cursor moves past what the filter skipped", async () => {
    const start = await latest();
    const id = (await ok("CREATE_USER", { username: "ev-types", name: "Types" })).id!;
    await ok("UPDATE_USER", { id, username: "ev-types", disabled: true });
    await ok("UPDATE_USER", { id, username: "ev-types", name: "Types again" });
    const disabled = await changesAfter(start, "&types=user.disabled,user.deleted");
    expect(disabled.data.map((c) => c.type)).toEqual(["user.disabled"]);
    // Nothing after the cursor matches: an empty page whose cursor is past every row looked at.
    const after = await changesAfter(disabled.next_cursor, "&types=user.deleted");
    expect(after.data).toEqual([]);
    expect(after.next_cursor).toBe(await latest());
  });

  it("without `after`, from the oldest change the log holds; `latest` gives a cursor that sees only what follows", async () => {
    const all = await api<{ data: Change[] }>("/events?limit=1");
    expect(all.status).toBe(200);
    expect(all.body.data).toHaveLength(1);
    const cursor = await latest();
    expect((await changesAfter(cursor)).data).toEqual([]);
    await ok("CREATE_ORGANIZATION", { code: "ev-after-latest", name: "After" });
    expect((await changesAfter(cursor)).data.map((c) => c.type)).toEqual(["organization.created"]);
  });

  it("answers 410 for a cursor the retention trimmed past, or one ahead of the log, saying how to recover", async () => {
    const { oldest, newest } = (await testEnv.DB.prepare("SELECT min(id) AS oldest, max(id) AS newest FROM deliveries").first<{ oldest: number; newest: number }>())!;
    // The oldest rows trimmed, as the retention does (never the newest).
    await testEnv.DB.prepare("DELETE FROM deliveries WHERE id < ?").bind(oldest + 3).run();
    for (const position of [oldest - 1, oldest + 1, newest + 1]) {
      const res = await api<{ error: string; message: string }>(`/events?after=${encodeCursor("events", position)}`);
      expect(res.status, String(position)).toBe(410);
      expect(res.body.error).toBe("gone");
      expect(res.body.message).toMatch(/take the newest cursor \(GET \/api\/v1\/events\/latest\), re-read the users and organizations lists, then follow the feed from that cursor/);
    }
    // The first position still held is fine: the row right after it exists.
    expect((await api(`/events?after=${encodeCursor("events", oldest + 2)}`)).status).toBe(200);
  });

  it("refuses an unknown type, a cursor of another list, and an unknown parameter (400 naming it)", async () => {
    expect((await api("/events?types=user.vanished")).body).toMatchObject({ error: "bad_request", parameter: "types" });
    expect((await api(`/events?after=${encodeCursor("deliveries", 5)}`)).body).toMatchObject({ error: "bad_request", parameter: "after" });
    expect((await api("/events?cursor=x")).body).toMatchObject({ error: "bad_request", parameter: "cursor" });
    expect((await api("/events", { token: null })).status).toBe(401);
  });
});
