// GET /api/v1/organizations, /organizations/{id}, …/children and …/members.
import { beforeAll, describe, expect, it } from "vitest";
import { allPages, api, createOrg, createUser, idsInTable, sendEvent } from "./support";

let root: string;
let emea: string;
let apac: string;
let paris: string;
let closed: string;
const emeaChildren: string[] = [];
const emeaMembers: string[] = [];

beforeAll(async () => {
  root = await createOrg("o-root", "Company");
  emea = await createOrg("o-emea", "EMEA", root);
  apac = await createOrg("o-apac", "APAC", root);
  paris = await createOrg("o-paris", "Paris", emea);
  emeaChildren.push(paris);
  for (let i = 0; i < 11; i++) emeaChildren.push(await createOrg(`o-emea-team-${i}`, `EMEA team ${i}`, emea));
  for (let i = 0; i < 13; i++) emeaMembers.push(await createUser(`o-emea-user-${i}`, { organizationId: emea }));
  await createUser("o-paris-user", { organizationId: paris });
  closed = await createOrg("o-closed", "Closed office", emea);
  expect((await sendEvent("DELETE_ORGANIZATION", { id: closed })).code).toBe("200");
});

describe("GET /api/v1/organizations", () => {
  it("is a flat list with parent ids, live only, in id order", async () => {
    const all = (await allPages<{ id: string; parent_id: string | null }>("/organizations", 200)).flat();
    expect(all.map((o) => o.id)).toEqual(await idsInTable("organizations", "deleted_at IS NULL"));
    const byId = new Map(all.map((o) => [o.id, o]));
    expect(byId.get(root)).toEqual({
      id: root,
      code: "o-root",
      name: "Company",
      parent_id: null,
      parent_missing: false,
      extensions: {},
      last_event_at: expect.stringMatching(/Z$/),
      created_at: expect.stringMatching(/Z$/),
      updated_at: expect.stringMatching(/Z$/),
      deleted_at: null,
    });
    expect(byId.get(emea)!.parent_id).toBe(root);
    expect(byId.get(paris)!.parent_id).toBe(emea);
    expect(byId.has(closed)).toBe(false);
  });

  it("pages without gaps or duplicates", async () => {
    const expected = await idsInTable("organizations", "deleted_at IS NULL");
    expect(expected.length).toBe(15);
    for (const limit of [1, 2, 4, 14, 15, 16]) {
      const pages = await allPages<{ id: string }>("/organizations", limit);
      expect(pages.flat().map((o) => o.id), `limit ${limit}`).toEqual(expected);
    }
  });

  it("include_deleted=true adds tombstones", async () => {
    const all = (await allPages<{ id: string; deleted_at: string | null }>("/organizations?include_deleted=true", 50)).flat();
    expect(all.find((o) => o.id === closed)?.deleted_at).toMatch(/Z$/);
  });
});

describe("GET /api/v1/organizations/{id}", () => {
  it("returns one organization with its live child and member counts", async () => {
    const res = await api(`/organizations/${emea}`);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ id: emea, code: "o-emea", name: "EMEA", parent_id: root, child_count: 12, member_count: 13 });
    expect((await api(`/organizations/${root}`)).body.data).toMatchObject({ child_count: 2, member_count: 0 });
  });

  it("404 for an unknown id, and for a tombstone unless include_deleted=true", async () => {
    expect(await api("/organizations/org_000000000000")).toMatchObject({
      status: 404,
      body: { error: "not_found", message: "organization not found" },
    });
    expect((await api(`/organizations/${closed}`)).status).toBe(404);
    expect((await api(`/organizations/${closed}?include_deleted=true`)).body.data).toMatchObject({ id: closed, deleted_at: expect.any(String) });
  });
});

describe("GET /api/v1/organizations/{id}/children", () => {
  it("lists direct children only, paginated", async () => {
    const pages = await allPages<{ id: string; parent_id: string }>(`/organizations/${emea}/children`, 5);
    expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
    expect(pages.flat().map((o) => o.id)).toEqual([...emeaChildren].sort());
    expect(pages.flat().every((o) => o.parent_id === emea)).toBe(true);
    const top = await api(`/organizations/${root}/children`);
    expect(top.body.data.map((o: { id: string }) => o.id).sort()).toEqual([emea, apac].sort());
    expect((await api(`/organizations/${apac}/children`)).body).toEqual({ data: [], next_cursor: null });
  });

  it("include_deleted=true adds the deleted child", async () => {
    const all = (await allPages<{ id: string }>(`/organizations/${emea}/children?include_deleted=true`, 50)).flat();
    expect(all.map((o) => o.id)).toContain(closed);
  });

  it("404 for an unknown or deleted organization", async () => {
    expect((await api("/organizations/org_000000000000/children")).status).toBe(404);
    expect((await api(`/organizations/${closed}/children`)).status).toBe(404);
    expect((await api(`/organizations/${closed}/children?include_deleted=true`)).status).toBe(200);
  });
});

describe("GET /api/v1/organizations/{id}/members", () => {
  it("lists the organization's own users (not its sub-organizations'), paginated", async () => {
    const pages = await allPages<{ id: string; organization_id: string }>(`/organizations/${emea}/members`, 6);
    expect(pages.map((p) => p.length)).toEqual([6, 6, 1]);
    expect(pages.flat().map((u) => u.id)).toEqual([...emeaMembers].sort());
    expect((await api(`/organizations/${root}/members`)).body).toEqual({ data: [], next_cursor: null });
  });

  it("hides deleted members unless include_deleted=true", async () => {
    const gone = emeaMembers[0]!;
    expect((await sendEvent("DELETE_USER", { id: gone })).code).toBe("200");
    const live = (await allPages<{ id: string }>(`/organizations/${emea}/members`, 50)).flat().map((u) => u.id);
    expect(live).not.toContain(gone);
    const all = (await allPages<{ id: string }>(`/organizations/${emea}/members?include_deleted=true`, 50)).flat().map((u) => u.id);
    expect(all).toContain(gone);
    expect((await api(`/organizations/${emea}`)).body.data.member_count).toBe(12);
  });

  it("404 for an unknown organization, even when users point at that id", async () => {
    await createUser("o-orphan", { organizationId: "org_notyetknown1" });
    expect((await api("/organizations/org_notyetknown1/members")).status).toBe(404);
    const filtered = await api("/users?organization=org_notyetknown1");
    expect(filtered.body.data).toMatchObject([{ username: "o-orphan", organization_missing: true }]);
  });
});
