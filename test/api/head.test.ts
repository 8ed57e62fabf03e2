// HEAD on the read API: the GET answer's status and headers without a body, behind the same token.
import { beforeAll, describe, expect, it } from "vitest";
import { testEnv } from "../helpers/worker";
import { api, createOrg, createUser } from "./support";

let org: string;
let user: string;

beforeAll(async () => {
  org = await createOrg("h-org", "Head Org");
  await createOrg("h-child", "Head Child", org);
  user = await createUser("h-user", { organizationId: org });
});

const routes = () => [
  "/users",
  "/users?limit=1",
  `/users/${user}`,
  "/organizations",
  `/organizations/${org}`,
  `/organizations/${org}/children`,
  `/organizations/${org}/members`,
  "/deliveries",
  "/deliveries?code=200",
];

describe("HEAD on the read API", () => {
  it("answers every route like GET: same status and headers, empty body", async () => {
    for (const route of routes()) {
      const get = await api(route);
      const head = await api(route, { method: "HEAD" });
      expect(get.status, route).toBe(200);
      expect(get.text.length, route).toBeGreaterThan(0);
      expect(head.status, route).toBe(200);
      expect(head.text, route).toBe("");
      expect(head.headers.get("content-type"), route).toBe("application/json");
      expect(head.headers.get("content-type"), route).toBe(get.headers.get("content-type"));
      expect(head.headers.get("cache-control"), route).toBe("no-store");
      expect(head.headers.get("x-d1-bookmark"), route).toMatch(/^[0-9A-Za-z-]+$/);
    }
  });

  it("still requires the token: 401 with the challenge, no body", async () => {
    for (const route of [...routes(), "/no-such-route"]) {
      for (const token of [null, "wrong-token", testEnv.ONEACCESS_BEARER_TOKEN]) {
        const res = await api(route, { method: "HEAD", token });
        expect(res.status, `${route} ${token}`).toBe(401);
        expect(res.text).toBe("");
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="directory"');
        expect(res.headers.has("x-d1-bookmark")).toBe(false);
      }
    }
  });

  it("answers 404 and 400 like GET, without a body", async () => {
    const cases: Array<[string, number]> = [
      ["/users/usr_000000000000", 404],
      ["/organizations/org_000000000000", 404],
      ["/organizations/org_000000000000/members", 404],
      ["/no-such-route", 404],
      ["/users?limit=0", 400],
      ["/users?org=x", 400],
      ["/users/not-an-id", 404],
      ["/deliveries?code=abc", 400],
      ["/users?include_deleted=maybe", 400],
    ];
    for (const [route, status] of cases) {
      const get = await api(route);
      const head = await api(route, { method: "HEAD" });
      expect(get.status, route).toBe(status);
      expect(head.status, route).toBe(status);
      expect(get.text.length, route).toBeGreaterThan(0);
      expect(head.text, route).toBe("");
    }
  });

  it("is disabled with the API: 404 without a body", async () => {
    const res = await api("/users", { method: "HEAD", env: { DIRECTORY_API_TOKEN: "" } });
    expect(res.status).toBe(404);
    expect(res.text).toBe("");
  });
});
