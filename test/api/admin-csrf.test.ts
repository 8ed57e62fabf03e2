// /admin's origin check on POST /admin/login and /admin/logout, beyond a cross-site Origin: a POST goes
// through only when Sec-Fetch-Site is exactly "same-origin" or Origin equals the request URL's origin,
// whatever its Content-Type. Everything else is 403. These tests pin that, and that no cross-site post
// (what a browser sends for a <form> or a no-cors fetch on another site: its Origin, or "null", and
// Sec-Fetch-Site cross-site or same-site, or neither on old browsers) can ever log in or out.
import { describe, expect, it } from "vitest";
import { callWorker, testEnv } from "../helpers/worker";

const ORIGIN = "https://receiver.test";
const EVIL = "https://evil.example";

interface Post {
  origin?: string;
  secFetchSite?: string;
  contentType?: string | null;
  body?: string;
}

async function post(path: "/admin/login" | "/admin/logout", opts: Post = {}) {
  const headers = new Headers();
  if (opts.origin !== undefined) headers.set("origin", opts.origin);
  if (opts.secFetchSite !== undefined) headers.set("sec-fetch-site", opts.secFetchSite);
  const contentType = opts.contentType === undefined ? "application/x-www-form-urlencoded" : opts.contentType;
  if (contentType !== null) headers.set("content-type", contentType);
  const body = opts.body ?? (path === "/admin/login" ? new URLSearchParams({ token: testEnv.DIRECTORY_API_TOKEN }).toString() : "");
  const res = await callWorker(new Request(`${ORIGIN}${path}`, { method: "POST", headers, body, redirect: "manual" }));
  return { status: res.status, setCookie: res.headers.get("set-cookie"), location: res.headers.get("location"), text: await res.text() };
}

/** A login that worked: 303 to /admin with a session cookie. */
function expectLoggedIn(res: Awaited<ReturnType<typeof post>>, why: string) {
  expect(res.status, why).toBe(303);
  expect(res.location, why).toBe("/admin");
  expect(res.setCookie, why).toMatch(/^oneaccess_admin=v1\.\d+\.[A-Za-z0-9_-]{43};/);
}

/** A logout that worked: 303 to the login form, clearing the cookie. */
function expectLoggedOut(res: Awaited<ReturnType<typeof post>>, why: string) {
  expect(res.status, why).toBe(303);
  expect(res.location, why).toBe("/admin/login");
  expect(res.setCookie, why).toMatch(/^oneaccess_admin=;.*Max-Age=0/);
}

/** Refused by the CSRF check: 403 "Forbidden", no cookie set or cleared, no redirect. */
function expectForbidden(res: Awaited<ReturnType<typeof post>>, why: string) {
  expect(res.status, why).toBe(403);
  expect(res.text, why).toBe("Forbidden");
  expect(res.setCookie, why).toBeNull();
  expect(res.location, why).toBeNull();
}

describe("the CSRF check on POST /admin/login and /admin/logout: Origin and Sec-Fetch-Site", () => {
  // [what, Origin, Sec-Fetch-Site, let through?]
  const matrix: Array<[string, string | undefined, string | undefined, boolean]> = [
    ["same-origin Origin, no Sec-Fetch-Site", ORIGIN, undefined, true],
    ["no Origin, no Sec-Fetch-Site", undefined, undefined, false],
    ["Origin: null, no Sec-Fetch-Site", "null", undefined, false],
    ["cross-site Origin, no Sec-Fetch-Site", EVIL, undefined, false],
    ["no Origin, Sec-Fetch-Site: same-origin", undefined, "same-origin", true],
    ["no Origin, Sec-Fetch-Site: same-site", undefined, "same-site", false],
    ["no Origin, Sec-Fetch-Site: cross-site", undefined, "cross-site", false],
    ["no Origin, Sec-Fetch-Site: none", undefined, "none", false],
    ["same-origin Origin, Sec-Fetch-Site: same-origin", ORIGIN, "same-origin", true],
    // Either check passing is enough (hono/csrf's rule). Browsers never send these two mixtures: both
    // headers are set by the browser and not by the page.
    ["same-origin Origin, Sec-Fetch-Site: cross-site", ORIGIN, "cross-site", true],
    ["cross-site Origin, Sec-Fetch-Site: same-origin", EVIL, "same-origin", true],
    ["same-origin Origin, Sec-Fetch-Site: none", ORIGIN, "none", true],
    ["cross-site Origin, Sec-Fetch-Site: cross-site", EVIL, "cross-site", false],
    ["cross-site Origin, Sec-Fetch-Site: same-site", EVIL, "same-site", false],
    ["cross-site Origin, Sec-Fetch-Site: none", EVIL, "none", false],
    ["Origin: null, Sec-Fetch-Site: cross-site", "null", "cross-site", false],
    ["Origin: null, Sec-Fetch-Site: same-origin", "null", "same-origin", true],
    ["Origin: null, Sec-Fetch-Site: none", "null", "none", false],
  ];

  for (const [what, origin, secFetchSite, allowed] of matrix) {
    it(`${what}: ${allowed ? "let through" : "403"}`, async () => {
      const login = await post("/admin/login", { origin, secFetchSite });
      const logout = await post("/admin/logout", { origin, secFetchSite });
      if (allowed) {
        expectLoggedIn(login, `login, ${what}`);
        expectLoggedOut(logout, `logout, ${what}`);
      } else {
        expectForbidden(login, `login, ${what}`);
        expectForbidden(logout, `logout, ${what}`);
      }
    });
  }

  it("an Origin is compared as the exact serialized origin of the request URL", async () => {
    for (const origin of [
      "http://receiver.test", // scheme downgrade
      "https://receiver.test:443", // browsers never serialize the default port
      "https://receiver.test:8443",
      "https://receiver.test/",
      "https://receiver.test.evil.example",
      "https://sub.receiver.test",
      "https://evilreceiver.test",
      "HTTPS://RECEIVER.TEST",
      "",
      `${ORIGIN}, ${EVIL}`,
    ]) {
      expectForbidden(await post("/admin/login", { origin }), `login, Origin ${JSON.stringify(origin)}`);
      expectForbidden(await post("/admin/logout", { origin }), `logout, Origin ${JSON.stringify(origin)}`);
    }
  });

  it("Sec-Fetch-Site counts only as exactly same-origin", async () => {
    for (const secFetchSite of ["Same-Origin", "SAME-ORIGIN", "same-origin, cross-site", "cross-site, same-origin", "same_origin", "", "samesite"]) {
      expectForbidden(await post("/admin/login", { secFetchSite }), `login, Sec-Fetch-Site ${JSON.stringify(secFetchSite)}`);
      expectForbidden(await post("/admin/logout", { secFetchSite }), `logout, Sec-Fetch-Site ${JSON.stringify(secFetchSite)}`);
    }
  });
});

describe("a cross-site form post can never log in or out", () => {
  // What a <form method="post"> on another site sends: one of the three enctypes (text/plain with the
  // token smuggled as a field name), its Origin ("null" from a sandboxed frame or a data: URL), and
  // Sec-Fetch-Site cross-site or same-site (a sibling subdomain), or no Sec-Fetch-Site on older browsers.
  const token = () => testEnv.DIRECTORY_API_TOKEN;
  const forms: Array<[string, string, () => string]> = [
    ["urlencoded", "application/x-www-form-urlencoded", () => new URLSearchParams({ token: token() }).toString()],
    ["urlencoded with charset", "application/x-www-form-urlencoded; charset=UTF-8", () => new URLSearchParams({ token: token() }).toString()],
    ["multipart", "multipart/form-data; boundary=X", () => `--X\r\nContent-Disposition: form-data; name="token"\r\n\r\n${token()}\r\n--X--\r\n`],
    ["text/plain", "text/plain", () => `token=${token()}`],
    ["text/plain with charset", "text/plain;charset=UTF-8", () => `token=${token()}`],
  ];
  const senders: Array<[string, string, string | undefined]> = [
    ["another site", EVIL, "cross-site"],
    ["a sibling subdomain", "https://other.receiver.test", "same-site"],
    ["a sandboxed frame", "null", "cross-site"],
    ["another site, older browser", EVIL, undefined],
    ["a sandboxed frame, older browser", "null", undefined],
  ];

  for (const [sender, origin, secFetchSite] of senders) {
    it(`from ${sender}: every enctype refused 403, no cookie set or cleared`, async () => {
      for (const [enctype, contentType, body] of forms) {
        expectForbidden(await post("/admin/login", { origin, secFetchSite, contentType, body: body() }), `login, ${enctype}`);
        expectForbidden(await post("/admin/logout", { origin, secFetchSite, contentType, body: body() }), `logout, ${enctype}`);
      }
    });
  }

  it("a login post from another site without any Content-Type is refused too (hono counts it as text/plain)", async () => {
    expectForbidden(await post("/admin/login", { origin: EVIL, secFetchSite: "cross-site", contentType: null, body: `token=${token()}` }), "login");
    expectForbidden(await post("/admin/logout", { origin: EVIL, secFetchSite: "cross-site", contentType: null, body: "" }), "logout");
  });

  it("the same forms from the page itself are accepted (so the refusals above are the CSRF check, not the form)", async () => {
    for (const [enctype, contentType, body] of forms) {
      const login = await post("/admin/login", { origin: ORIGIN, secFetchSite: "same-origin", contentType, body: body() });
      // Only the urlencoded form is a login; the others pass the CSRF check and are then refused as not the form.
      if (contentType.startsWith("application/x-www-form-urlencoded")) expectLoggedIn(login, `login, ${enctype}`);
      else expect(login.status, `login, ${enctype}`).toBe(415);
      expectLoggedOut(await post("/admin/logout", { origin: ORIGIN, secFetchSite: "same-origin", contentType, body: body() }), `logout, ${enctype}`);
    }
  });

  it("a cross-site login with a Content-Type a form cannot send is refused by the origin check too (403)", async () => {
    // hono/csrf would not have checked these; the origin check applies to every content type.
    for (const contentType of ["application/json", "application/json, text/plain", "application/json, application/x-www-form-urlencoded"]) {
      const res = await post("/admin/login", { origin: EVIL, secFetchSite: "cross-site", contentType, body: new URLSearchParams({ token: token() }).toString() });
      expectForbidden(res, contentType);
    }
  });

  it("no CORS: a preflight gets no Access-Control-Allow-* header, so another site cannot send a non-form POST", async () => {
    // A JSON logout from another site passes hono/csrf (it only checks form types) but needs a preflight.
    for (const path of ["/admin/login", "/admin/logout"]) {
      const res = await callWorker(
        new Request(`${ORIGIN}${path}`, {
          method: "OPTIONS",
          headers: { origin: EVIL, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
          redirect: "manual",
        }),
      );
      expect(res.status, path).not.toBe(204);
      expect([...res.headers.keys()].filter((k) => k.startsWith("access-control-")), path).toEqual([]);
    }
  });

  // Found by these tests: hono/csrf only checks a request whose Content-Type *starts with* one of the
  // three form types, but "application/json, text/plain" is CORS-safelisted too (the Fetch spec takes the
  // last MIME type of the list), so another site can send it with fetch(..., { mode: "no-cors" }) without a
  // preflight, and /admin/logout answered 303 clearing the session. The origin check covers every type now.
  it("a cross-site logout with a CORS-safelisted 'application/json, text/plain' Content-Type is refused", async () => {
    const res = await post("/admin/logout", { origin: EVIL, secFetchSite: "cross-site", contentType: "application/json, text/plain" });
    expect(res.status).toBe(403);
    expect(res.setCookie).toBeNull();
  });
});
