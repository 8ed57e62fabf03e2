// GET /api/v1/deliveries: the audit log, newest first, filtered by reply code, paginated.
import { beforeAll, describe, expect, it } from "vitest";
import { allPages, api, createOrg, createUser, sendEvent } from "./support";

const nonces: string[] = [];
let failedNonce: string;

beforeAll(async () => {
  const org = await createOrg("d-org", "Deliveries Org");
  for (let i = 0; i < 9; i++) await createUser(`d-user-${i}`, { organizationId: org });
  const failed = await sendEvent("UPDATE_USER", { id: "usr_doesnotexist", username: "d-ghost", disabled: false });
  expect(failed.code).toBe("404");
  failedNonce = failed.nonce;
  const bad = await sendEvent("CREATE_USER", { name: "no username" });
  expect(bad.code).toBe("400");
  for (let i = 0; i < 3; i++) nonces.push((await sendEvent("CREATE_ORGANIZATION", { code: `d-more-${i}`, name: `More ${i}` })).nonce);
});

describe("GET /api/v1/deliveries", () => {
  it("lists the audit rows newest first, with their fields", async () => {
    const res = await api("/deliveries");
    expect(res.status).toBe(200);
    const rows = res.body.data as Array<{ id: number; nonce: string }>;
    expect(rows).toHaveLength(15);
    expect(rows.map((d) => d.id)).toEqual([...rows.map((d) => d.id)].sort((a, b) => b - a));
    expect(rows.slice(0, 3).map((d) => d.nonce)).toEqual([...nonces].reverse());
    expect(rows.find((d) => d.nonce === failedNonce)).toEqual({
      id: expect.any(Number),
      received_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      event_type: "UPDATE_USER",
      nonce: failedNonce,
      code: "404",
      message: "user not found",
      entity_id: "usr_doesnotexist",
      duration_ms: expect.any(Number),
    });
  });

  it("pages newest first without gaps or duplicates", async () => {
    const everything = (await api("/deliveries?limit=200")).body.data.map((d: { id: number }) => d.id);
    for (const limit of [1, 4, 14, 15]) {
      const pages = await allPages<{ id: number }>("/deliveries", limit);
      expect(pages.flat().map((d) => d.id), `limit ${limit}`).toEqual(everything);
    }
  });

  it("filters by reply code", async () => {
    expect((await api("/deliveries?code=404")).body.data).toMatchObject([{ code: "404", message: "user not found", nonce: failedNonce }]);
    expect((await api("/deliveries?code=400")).body.data).toMatchObject([{ code: "400", event_type: "CREATE_USER" }]);
    const ok = (await allPages<{ code: string }>("/deliveries?code=200", 5)).flat();
    expect(ok).toHaveLength(13);
    expect(ok.every((d) => d.code === "200")).toBe(true);
    expect((await api("/deliveries?code=500")).body).toEqual({ data: [], next_cursor: null });
  });

  it("a cursor from another list is refused", async () => {
    const users = await api("/users?limit=1");
    const res = await api(`/deliveries?cursor=${users.body.next_cursor}`);
    expect(res).toMatchObject({ status: 400, body: { parameter: "cursor", message: "cursor is invalid" } });
  });
});
