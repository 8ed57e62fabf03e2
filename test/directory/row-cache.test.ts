// The user row cache (src/directory/row-cache.ts): an update of a user this isolate knows is one D1 round
// trip, and a known row that is no longer current is caught by its version and decided again from a read.
import { describe, expect, it } from "vitest";
import { UserRowCache } from "../../src/directory/row-cache";
import type { UserRecord } from "../../src/directory/rules";
import { countingBinding, db, send, sendForId, userRow } from "./support";

const record = (id: string, extra: Partial<UserRecord> = {}): UserRecord => ({
  id,
  username: `${id}-name`,
  name: "N",
  organizationId: null,
  disabled: false,
  firstName: null,
  middleName: null,
  lastName: null,
  mobile: null,
  email: null,
  extensions: {},
  eventTs: 1,
  deletedAt: null,
  ...extra,
});

describe("UserRowCache", () => {
  it("keeps the most recently used entries, and forgets tombstones", () => {
    const cache = new UserRowCache(2);
    cache.remember(record("a"), 0);
    cache.remember(record("b"), 0);
    expect(cache.get("a")?.version).toBe(0); // a is now the most recent
    cache.remember(record("c"), 3);
    expect(cache.get("b")).toBeUndefined(); // the least recently used went
    expect(cache.get("c")).toEqual({ record: record("c"), version: 3 });
    cache.remember(record("a", { deletedAt: 5 }), 1);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(1);
  });
});

describe("updates of users this isolate knows", () => {
  it("a user created here, then updated twice: each update is one D1 round trip, and both apply", async () => {
    const { binding, sizes } = countingBinding();
    const env = { DB: binding };
    const id = await sendForId("CREATE_USER", { username: "cache-known", name: "Known", email: "a@example.test" }, { env });
    expect(sizes).toHaveLength(1); // the guarded insert
    expect(await send("UPDATE_USER", { id, username: "cache-known", name: "Known Twice" }, { env })).toMatchObject({ code: "200", message: "success" });
    expect(await send("UPDATE_USER", { id, username: "cache-known", mobile: "+1 555 0100" }, { env })).toMatchObject({ code: "200", message: "success" });
    expect(sizes).toHaveLength(3);
    expect(await userRow(id)).toMatchObject({ name: "Known Twice", email: "a@example.test", mobile: "+1 555 0100", version: 2 });
  });

  it("a known row written meanwhile by someone else (same event timestamp) is caught by its version: decided again, nothing lost", async () => {
    const { binding, sizes } = countingBinding();
    const env = { DB: binding };
    const id = await sendForId("CREATE_USER", { username: "cache-stale", name: "Stale", email: "old@example.test" }, { env });
    // Another isolate applies an event with the create's own timestamp: event_ts unchanged, version up.
    await db().prepare("UPDATE users SET email = 'other@example.test', version = version + 1 WHERE id = ?").bind(id).run();
    const sent = await send("UPDATE_USER", { id, username: "cache-stale", name: "Fresh" }, { env });
    expect(sent).toMatchObject({ code: "200", message: "success" });
    // The write decided on the known row was rolled back; a read, then the write decided on it.
    expect(sizes).toHaveLength(4);
    expect(await userRow(id)).toMatchObject({ name: "Fresh", email: "other@example.test", version: 2 });
  });

  it("a rename is decided from a read even when the user is known (who holds the new username matters)", async () => {
    const { binding, sizes } = countingBinding();
    const env = { DB: binding };
    await sendForId("CREATE_USER", { username: "cache-taken", name: "Holder" }, { env });
    const id = await sendForId("CREATE_USER", { username: "cache-renamer", name: "Renamer" }, { env });
    const before = sizes.length;
    const sent = await send("UPDATE_USER", { id, username: "cache-taken" }, { env });
    expect(sent).toMatchObject({ code: "400", message: "username is already used by another user" });
    expect(sizes.length - before).toBe(2); // read, then the refusal's audit row
  });
});
