// The directory's pure helpers, without the Worker: ids, extension merging, messages, small decisions.
import { describe, expect, it } from "vitest";
import { newId } from "../../src/directory/ids";
import {
  decideDeleteOrganization,
  deleteRefusalMessage,
  extensionLimitProblem,
  extensionsForCreate,
  isStale,
  mergeExtensions,
  needsCycleCheck,
  type OrgRecord,
} from "../../src/directory/rules";
import { passwordIntent } from "../../src/directory/passwords";
import type { DirectoryEvent } from "../../src/protocol/events";

const org = (over: Partial<OrgRecord> = {}): OrgRecord => ({
  id: "org_A",
  code: "a",
  name: "A",
  parentId: null,
  extensions: {},
  eventTs: 100,
  deletedAt: null,
  ...over,
});

describe("ids", () => {
  it("are a prefix and 12 base62 characters, URL-safe, never '&', and do not repeat", () => {
    const ids = Array.from({ length: 2000 }, () => newId("usr"));
    for (const id of ids) expect(id).toMatch(/^usr_[0-9A-Za-z]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(newId("org")).toMatch(/^org_[0-9A-Za-z]{12}$/);
    // Every base62 character shows up: the alphabet is used in full.
    expect(new Set(ids.join("").replace(/usr_/g, "")).size).toBe(62);
  });
});

describe("extensions", () => {
  it("a create drops null values; an update merges and removes keys set to null", () => {
    expect(extensionsForCreate({ b: 1, a: null, c: "x" })).toEqual({ b: 1, c: "x" });
    expect(mergeExtensions({ keep: 1, drop: 2, change: 3 }, { drop: null, change: 4, add: { n: [1] } })).toEqual({
      add: { n: [1] },
      change: 4,
      keep: 1,
    });
  });

  it("are stored with sorted keys, so equal objects give equal JSON text", () => {
    expect(JSON.stringify(mergeExtensions({ z: 1, a: 2 }, { m: 3 }))).toBe('{"a":2,"m":3,"z":1}');
    expect(JSON.stringify(extensionsForCreate({ z: 1, a: 2 }))).toBe('{"a":2,"z":1}');
  });

  it("merged extensions are held to the per-event limits", () => {
    expect(extensionLimitProblem({ a: 1 })).toBeNull();
    expect(extensionLimitProblem(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])))).toBe(
      "more than 64 extension attributes",
    );
    expect(extensionLimitProblem({ big: "x".repeat(8200) })).toBe("extension attributes exceed 8192 bytes");
  });
});

describe("small rules", () => {
  it("last event wins: only older timestamps are stale (equal ones apply: second-resolution timestamps tie)", () => {
    expect(isStale({ eventTs: 100 }, 99)).toBe(true);
    expect(isStale({ eventTs: 100 }, 100)).toBe(false);
    expect(isStale({ eventTs: 100 }, 101)).toBe(false);
  });

  it("the delete refusal gives both counts, in singular or plural", () => {
    expect(deleteRefusalMessage(2, 3)).toBe("organization has 2 child organizations and 3 members");
    expect(deleteRefusalMessage(1, 1)).toBe("organization has 1 child organization and 1 member");
    expect(deleteRefusalMessage(0, 1)).toBe("organization has 0 child organizations and 1 member");
  });

  it("a cycle check is needed only when an existing organization gets a different parent", () => {
    expect(needsCycleCheck(org({ parentId: "org_P" }), "org_P")).toBe(false);
    expect(needsCycleCheck(org({ parentId: "org_P" }), "org_Q")).toBe(true);
    expect(needsCycleCheck(org(), "org_A")).toBe(false); // itself: refused without a read
  });

  it("passwords: absent keeps the hash; drop clears it; pbkdf2 hashes the sent one; other events keep it", () => {
    const user = (password?: string): DirectoryEvent => ({
      type: "UPDATE_USER",
      id: "usr_A",
      username: "a",
      user: { extensions: {}, ...(password !== undefined ? { password } : {}) },
    });
    expect(passwordIntent(user(), "pbkdf2")).toEqual({ kind: "keep" });
    expect(passwordIntent(user(), "drop")).toEqual({ kind: "keep" });
    expect(passwordIntent(user("s3cret"), "drop")).toEqual({ kind: "clear" });
    expect(passwordIntent(user("s3cret"), "pbkdf2")).toEqual({ kind: "hash", password: "s3cret" });
    expect(passwordIntent({ type: "DELETE_USER", id: "usr_A" }, "pbkdf2")).toEqual({ kind: "keep" });
  });

  it("deleting: unknown is 200 without a write, deleted again only moves a newer time; live with members is refused", () => {
    expect(decideDeleteOrganization("org_X", { existing: null, liveChildren: 0, liveMembers: 0 }, 1)).toMatchObject({
      outcome: { code: "200", replyData: "" },
      write: null,
    });
    const tombstone = org({ deletedAt: 5, eventTs: 100 });
    expect(decideDeleteOrganization("org_A", { existing: tombstone, liveChildren: 0, liveMembers: 0 }, 100)).toMatchObject({
      outcome: { code: "200", message: "already deleted" },
      write: null,
    });
    expect(decideDeleteOrganization("org_A", { existing: tombstone, liveChildren: 0, liveMembers: 0 }, 99).write).toBeNull();
    expect(decideDeleteOrganization("org_A", { existing: tombstone, liveChildren: 0, liveMembers: 0 }, 101)).toMatchObject({
      outcome: { code: "200", message: "already deleted" },
      write: { kind: "retime", id: "org_A", eventTs: 101 },
    });
    expect(decideDeleteOrganization("org_A", { existing: org(), liveChildren: 0, liveMembers: 2 }, 200)).toMatchObject({
      outcome: { code: "400", message: "organization has 0 child organizations and 2 members" },
      write: null,
    });
    expect(decideDeleteOrganization("org_A", { existing: org(), liveChildren: 0, liveMembers: 0 }, 200).write).toEqual({
      kind: "tombstone",
      id: "org_A",
      eventTs: 200,
    });
  });
});
