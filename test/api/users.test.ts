// GET /api/v1/users and /api/v1/users/{id}: filters, pagination, tombstones, and never a password.
import { beforeAll, describe, expect, it } from "vitest";
import { testEnv } from "../helpers/worker";
import { allPages, api, createOrg, createUser, idsInTable, sendEvent } from "./support";

let sales: string;
let support: string;
const salesUsers: string[] = [];
let carol: string;
let dave: string;

beforeAll(async () => {
  sales = await createOrg("u-sales", "Sales");
  support = await createOrg("u-support", "Support");
  for (let i = 0; i < 23; i++) {
    salesUsers.push(await createUser(`u-sales-${String(i).padStart(2, "0")}`, { organizationId: sales, email: `s${i}@sales.example` }));
  }
  carol = await createUser("carol.k", { name: "Carol Kowalski", organizationId: support, email: "CK@Example.org", mobile: "+48 1", firstName: "Carol" });
  dave = await createUser("dave", { name: "Dave Gone", organizationId: support });
  expect((await sendEvent("DELETE_USER", { id: dave })).code).toBe("200");
});

describe("GET /api/v1/users", () => {
  it("lists live users with their attributes, in id order, 50 by default", async () => {
    const res = await api("/users");
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(["data", "next_cursor"]);
    const ids = res.body.data.map((u: { id: string }) => u.id);
    expect(ids).toEqual(await idsInTable("users", "deleted_at IS NULL"));
    expect(ids).not.toContain(dave);
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.data.find((u: { id: string }) => u.id === carol)).toEqual({
      id: carol,
      username: "carol.k",
      name: "Carol Kowalski",
      organization_id: support,
      organization_missing: false,
      disabled: false,
      first_name: "Carol",
      middle_name: null,
      last_name: null,
      mobile: "+48 1",
      email: "CK@Example.org",
      extensions: {},
      last_event_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      created_at: expect.stringMatching(/Z$/),
      updated_at: expect.stringMatching(/Z$/),
      deleted_at: null,
    });
  });

  it("pages through every user exactly once with next_cursor (several page sizes)", async () => {
    const expected = await idsInTable("users", "deleted_at IS NULL");
    expect(expected.length).toBe(24);
    for (const limit of [1, 5, 7, 23, 24, 200]) {
      const pages = await allPages<{ id: string }>("/users", limit);
      const seen = pages.flat().map((u) => u.id);
      expect(seen, `limit ${limit}`).toEqual(expected); // no gap, no duplicate, same order
      expect(pages.length).toBe(Math.max(1, Math.ceil(expected.length / limit)));
      pages.slice(0, -1).forEach((page) => expect(page.length).toBe(limit));
    }
  });

  it("a cursor keeps its place when users are added or deleted between pages (keyset, not offset)", async () => {
    const first = await api("/users?limit=10");
    const lastSeen = first.body.data[9].id as string;
    const late = await createUser("u-late-arrival");
    const rest = (await allPages<{ id: string }>("/users", 10, first.body.next_cursor)).flat();
    expect(rest.every((u) => u.id > lastSeen)).toBe(true);
    expect(rest.map((u) => u.id).includes(late)).toBe(late > lastSeen);
    expect((await sendEvent("DELETE_USER", { id: late })).code).toBe("200");
  });

  it("filters by organization", async () => {
    const inSales = (await allPages<{ id: string; organization_id: string }>(`/users?organization=${sales}`, 10)).flat();
    expect(inSales.map((u) => u.id).sort()).toEqual([...salesUsers].sort());
    expect(inSales.every((u) => u.organization_id === sales)).toBe(true);
    const inSupport = await api(`/users?organization=${support}`);
    expect(inSupport.body.data.map((u: { id: string }) => u.id)).toEqual([carol]);
    const none = await api("/users?organization=org_doesnotexist");
    expect(none.body).toEqual({ data: [], next_cursor: null });
  });

  it("searches username, name and email, case-insensitively, as a substring", async () => {
    const ids = async (q: string) => (await api(`/users?q=${encodeURIComponent(q)}`)).body.data.map((u: { id: string }) => u.id);
    expect(await ids("CAROL.K")).toEqual([carol]); // username
    expect(await ids("kowal")).toEqual([carol]); // name
    expect(await ids("ck@example")).toEqual([carol]); // email
    expect((await ids("sales-1")).length).toBe(10); // u-sales-10 … u-sales-19
    expect(await ids("nobody-has-this")).toEqual([]);
    expect((await ids("")).length).toBe(24); // an empty search box searches nothing
    expect(await ids("Dave")).toEqual([]); // tombstones stay hidden
  });

  it("combines filters, and pages a search", async () => {
    const res = await api(`/users?organization=${sales}&q=sales-0&limit=4`);
    expect(res.body.data).toHaveLength(4);
    const all = (await allPages<{ username: string }>(`/users?organization=${sales}&q=sales-0`, 4)).flat();
    expect(all.map((u) => u.username).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `u-sales-0${i}`));
  });

  it("include_deleted=true shows tombstones with deleted_at", async () => {
    const res = await api("/users?include_deleted=true&q=dave");
    expect(res.body.data).toMatchObject([{ id: dave, deleted_at: expect.stringMatching(/Z$/) }]);
    expect((await api("/users?include_deleted=false&q=dave")).body.data).toEqual([]);
    expect((await api("/users?include_deleted=1")).body.data.length).toBe((await idsInTable("users")).length);
  });
});

describe("GET /api/v1/users/{id}", () => {
  it("returns one user", async () => {
    const res = await api(`/users/${carol}`);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ id: carol, username: "carol.k", organization_id: support });
  });

  it("404 for an unknown id, and for a tombstone unless include_deleted=true", async () => {
    expect(await api("/users/usr_000000000000")).toMatchObject({
      status: 404,
      body: { error: "not_found", message: "user not found" },
    });
    expect((await api(`/users/${dave}`)).status).toBe(404);
    const deleted = await api(`/users/${dave}?include_deleted=true`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.data.deleted_at).toMatch(/Z$/);
  });

  it("never returns a password or its hash, even when PASSWORD_POLICY=pbkdf2 stored one", async () => {
    const id = await createUser("u-with-secret", { password: "Secret-Passw0rd!" }, { PASSWORD_POLICY: "pbkdf2" });
    const stored = await testEnv.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(id).first<{ password_hash: string }>();
    expect(stored!.password_hash).toMatch(/^pbkdf2-sha256\$/);
    for (const path of [`/users/${id}`, "/users?q=u-with-secret", `/users?include_deleted=true&limit=200`]) {
      const res = await api(path);
      expect(res.status).toBe(200);
      expect(res.text).not.toMatch(/password|pbkdf2|Secret-Passw0rd/i);
      expect(res.text).not.toContain(stored!.password_hash.split("$")[3]);
    }
  });
});
