// Who can read /api/v1: only the holder of DIRECTORY_API_TOKEN, compared in constant time. Never the
// callback's bearer token, and nothing at all while the token is not configured.
import { describe, expect, it } from "vitest";
import { testEnv } from "../helpers/worker";
import { api, createUser } from "./support";

const ROUTES = [
  "/users",
  "/users/usr_000000000000",
  "/organizations",
  "/organizations/org_000000000000",
  "/organizations/org_000000000000/children",
  "/organizations/org_000000000000/members",
  "/deliveries",
  "/no-such-route",
];

describe("read API authentication", () => {
  it("answers 401 on every route without a token, with a wrong one, or with the callback's bearer token", async () => {
    await createUser("auth-alice");
    const attempts: Array<{ token?: string | null; authorization?: string }> = [
      { token: null },
      { token: "wrong-token" },
      { token: `${testEnv.DIRECTORY_API_TOKEN}x` },
      { token: testEnv.DIRECTORY_API_TOKEN.slice(0, -1) },
      { token: testEnv.ONEACCESS_BEARER_TOKEN },
      { authorization: `Basic ${btoa(`user:${testEnv.DIRECTORY_API_TOKEN}`)}` },
      { authorization: testEnv.DIRECTORY_API_TOKEN },
      { authorization: "Bearer" },
      { authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN} extra` },
    ];
    for (const route of ROUTES) {
      for (const attempt of attempts) {
        const res = await api(route, attempt);
        expect(res.status, `${route} ${JSON.stringify(attempt)}`).toBe(401);
        expect(res.body).toEqual({ error: "unauthorized", message: "send Authorization: Bearer <DIRECTORY_API_TOKEN>" });
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="directory"');
        expect(res.text).not.toContain("auth-alice");
      }
    }
  });

  it("lets the right token in (scheme case-insensitive) and answers no-store", async () => {
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      const res = await api("/users", { authorization: `${scheme} ${testEnv.DIRECTORY_API_TOKEN}` });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    }
  });

  it("the callback bearer token opens nothing even on routes that do not exist", async () => {
    const res = await api("/users", { token: testEnv.ONEACCESS_BEARER_TOKEN });
    expect(res.status).toBe(401);
  });

  it("is disabled with a clear 404 while DIRECTORY_API_TOKEN is unset or blank, whatever the request carries", async () => {
    for (const value of [undefined, "", "   "]) {
      for (const token of [null, testEnv.DIRECTORY_API_TOKEN, testEnv.ONEACCESS_BEARER_TOKEN, ""]) {
        const res = await api("/users", { token, env: { DIRECTORY_API_TOKEN: value } });
        expect(res.status).toBe(404);
        expect(res.body).toEqual({
          error: "disabled",
          message: "the directory read API is disabled: set the DIRECTORY_API_TOKEN secret to enable it",
        });
      }
    }
  });

  it("is disabled when DIRECTORY_API_TOKEN equals the callback's bearer token (current or previous)", async () => {
    const same = "the-same-token-for-both-callback-and-api";
    for (const env of [
      { DIRECTORY_API_TOKEN: same, ONEACCESS_BEARER_TOKEN: same },
      { DIRECTORY_API_TOKEN: same, ONEACCESS_BEARER_TOKEN_PREVIOUS: same },
    ]) {
      const res = await api("/users", { token: same, env });
      expect(res.status).toBe(404);
      expect(res.body.message).toMatch(/DIRECTORY_API_TOKEN must differ from ONEACCESS_BEARER_TOKEN/);
      expect(res.text).not.toContain(same);
    }
  });

  it("follows a changed token at once: the old one is refused", async () => {
    const changed = "a-brand-new-directory-token-0f3a9c";
    const res = await api("/users", { env: { DIRECTORY_API_TOKEN: changed } });
    expect(res.status).toBe(401);
    const fresh = await api("/users", { token: changed, env: { DIRECTORY_API_TOKEN: changed } });
    expect(fresh.status).toBe(200);
  });

  it("is disabled, saying why, while DIRECTORY_API_TOKEN is shorter than 32 characters", async () => {
    const short = "x".repeat(31);
    const res = await api("/users", { token: short, env: { DIRECTORY_API_TOKEN: short } });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: "disabled", message: "the directory read API is disabled: DIRECTORY_API_TOKEN must be at least 32 characters" });
  });

  it("is read-only: other methods answer 405 (behind the token)", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      expect((await api("/users", { method, token: null })).status).toBe(401);
      const res = await api("/users", { method });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
    }
  });

  it("answers unknown routes under /api/v1 with a JSON 404 (behind the token)", async () => {
    const res = await api("/nothing/here");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: "not_found", message: "no such route under /api/v1" });
  });
});

describe("D1 Sessions API", () => {
  it("returns the session's bookmark, accepts it back, and refuses a malformed one", async () => {
    const first = await api("/users");
    expect(first.status).toBe(200);
    const bookmark = first.headers.get("x-d1-bookmark");
    expect(bookmark).toMatch(/^[0-9A-Za-z-]+$/);
    const again = await api("/users", { headers: { "x-d1-bookmark": bookmark! } });
    expect(again.status).toBe(200);
    const bad = await api("/users", { headers: { "x-d1-bookmark": "' OR 1=1 --" } });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: "bad_request", parameter: "x-d1-bookmark", message: "x-d1-bookmark is invalid" });
    // Like every answer under /api/v1, the refusal is not for caches.
    expect(bad.headers.get("cache-control")).toBe("no-store");
  });
});
