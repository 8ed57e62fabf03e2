// SQL-injection strings in every parameter and path segment are harmless: they are bound values (or refused
// before any SQL), LIKE wildcards in a search match themselves, the tables stay intact and no extra row
// comes back.
import { beforeAll, describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/read/cursor";
import { testEnv } from "../helpers/worker";
import { allPages, api, createOrg, createUser, sendEvent } from "./support";

const HOSTILE = [
  "' OR 1=1 --",
  "%",
  "_",
  '"; DROP TABLE users; --',
  "\\",
  "%' OR '1'='1",
  "'); DELETE FROM users; --",
  "1 UNION SELECT password_hash FROM users",
  "*",
  "' OR ''='",
  "org_%",
  "usr__",
];

interface Shape {
  tables: string;
  counts: string;
}

async function shape(): Promise<Shape> {
  const { results } = await testEnv.DB.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").all();
  const counts = await testEnv.DB.prepare(
    "SELECT (SELECT count(*) FROM users) AS u, (SELECT count(*) FROM organizations) AS o, (SELECT count(*) FROM deliveries) AS d",
  ).first();
  return { tables: JSON.stringify(results), counts: JSON.stringify(counts) };
}

/** What a substring search must return, computed in JS from the table itself. */
async function expectedMatches(term: string): Promise<string[]> {
  const { results } = await testEnv.DB.prepare("SELECT id, username, name, email FROM users WHERE deleted_at IS NULL ORDER BY id").all<{
    id: string;
    username: string;
    name: string;
    email: string | null;
  }>();
  const needle = term.toLowerCase();
  return results.filter((u) => [u.username, u.name, u.email].some((f) => f !== null && f.toLowerCase().includes(needle))).map((u) => u.id);
}

let org: string;
let before: Shape;

beforeAll(async () => {
  org = await createOrg("i-org", "Injection Org");
  await createUser("i-plain-1", { organizationId: org, email: "plain1@example.com" });
  await createUser("i-plain-2", { organizationId: org, email: "plain2@example.com" });
  await createUser("i_under_score", { organizationId: org });
  await createUser("i-percent", { name: "Sure 100% of the time", organizationId: org });
  await createUser("i-backslash", { name: "back\\slash", organizationId: org });
  await createUser('"; DROP TABLE users; --', { name: "' OR 1=1 --", organizationId: org });
  // An audit row with a failure, so the deliveries filters have something to not leak.
  expect((await sendEvent("UPDATE_USER", { id: "usr_unknown00000", username: "x", disabled: false })).code).toBe("404");
  before = await shape();
});

describe("hostile strings", () => {
  it("in q: only users that literally contain the text (wildcards escaped), tables intact", async () => {
    for (const term of HOSTILE) {
      const res = await api(`/users?q=${encodeURIComponent(term)}&limit=200`);
      expect(res.status, term).toBe(200);
      const ids = res.body.data.map((u: { id: string }) => u.id);
      expect(ids, term).toEqual(await expectedMatches(term.trim()));
    }
    // The escaping is what makes these exact: a LIKE wildcard would have matched every user.
    expect((await api("/users?q=%25")).body.data.map((u: { username: string }) => u.username)).toEqual(["i-percent"]);
    expect((await api("/users?q=_")).body.data.map((u: { username: string }) => u.username)).toEqual(["i_under_score"]);
    expect((await api("/users?q=%5C")).body.data.map((u: { username: string }) => u.username)).toEqual(["i-backslash"]);
    expect((await api(`/users?q=${encodeURIComponent("' OR 1=1 --")}`)).body.data).toHaveLength(1);
    expect(await shape()).toEqual(before);
  });

  it("in organization: no organization has that id, so nothing comes back", async () => {
    for (const term of HOSTILE) {
      const res = await api(`/users?organization=${encodeURIComponent(term)}&include_deleted=true`);
      expect(res.status, term).toBe(200);
      expect(res.body, term).toEqual({ data: [], next_cursor: null });
    }
    expect(await shape()).toEqual(before);
  });

  it("in limit, cursor, include_deleted and code: 400 naming the parameter", async () => {
    for (const term of HOSTILE) {
      const v = encodeURIComponent(term);
      for (const [path, parameter] of [
        [`/users?limit=${v}`, "limit"],
        [`/users?cursor=${v}`, "cursor"],
        [`/users?include_deleted=${v}`, "include_deleted"],
        [`/organizations?cursor=${v}`, "cursor"],
        [`/organizations/${org}/members?limit=${v}`, "limit"],
        [`/organizations/${org}/children?cursor=${v}`, "cursor"],
        [`/deliveries?code=${v}`, "code"],
        [`/deliveries?cursor=${v}`, "cursor"],
        [`/deliveries?limit=${v}`, "limit"],
      ] as const) {
        const res = await api(path);
        expect(res.status, `${path}`).toBe(400);
        expect(res.body.parameter).toBe(parameter);
      }
    }
    expect(await shape()).toEqual(before);
  });

  it("inside a well-formed cursor: the key is bound, the page continues after it as text", async () => {
    const all = (await allPages<{ id: string }>("/users", 200)).flat().map((u) => u.id);
    for (const term of HOSTILE) {
      const res = await api(`/users?limit=200&cursor=${encodeCursor("users", term)}`);
      expect(res.status, term).toBe(200);
      expect(res.body.data.map((u: { id: string }) => u.id), term).toEqual(all.filter((id) => id > term));
      const orgs = await api(`/organizations?limit=200&cursor=${encodeCursor("organizations", term)}`);
      expect(orgs.status).toBe(200);
      expect(orgs.body.data.every((o: { id: string }) => o.id > term)).toBe(true);
    }
    expect(await shape()).toEqual(before);
  });

  it("as path ids: 404, never a row", async () => {
    for (const term of HOSTILE) {
      const id = encodeURIComponent(term);
      for (const path of [`/users/${id}`, `/organizations/${id}`, `/organizations/${id}/children`, `/organizations/${id}/members`]) {
        const res = await api(`${path}?include_deleted=true`);
        expect(res.status, path).toBe(404);
        expect(res.body.error).toBe("not_found");
      }
    }
    expect(await shape()).toEqual(before);
  });

  it("stored as data they come back verbatim (JSON-escaped), and match only themselves", async () => {
    const res = await api(`/users?q=${encodeURIComponent('"; DROP TABLE users; --')}`);
    expect(res.body.data).toMatchObject([{ username: '"; DROP TABLE users; --', name: "' OR 1=1 --" }]);
    expect(await shape()).toEqual(before);
  });
});
