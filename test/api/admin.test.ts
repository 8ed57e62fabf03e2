// /admin in workerd: the login form, the session cookie (its attributes, what it holds, when it stops
// working), CSRF refusal, and what the page shows: configuration status without values, counts, the
// organization tree, a user search, and failed deliveries highlighted.
import { beforeAll, describe, expect, it } from "vitest";
import { CALLBACK_URL, callWorker, envFor, profile, testEnv } from "../helpers/worker";
import { buildRequest } from "../sender/oneaccess-sender";
import { createOrg, createUser, sendEvent, type Overrides } from "./support";

const ORIGIN = "https://receiver.test";

const SESSION_LABEL = "oneaccess-admin-session/v1/";

/**
 * A session cookie value minted here, from the documented format (not with src/):
 * `v1.<issued at, Unix seconds>.<base64url, unpadded, of HMAC-SHA256 keyed with the token over label + issuedAt>`.
 */
async function mintSession(token: string, issuedAt: number, label = SESSION_LABEL, version = "v1"): Promise<string> {
  const utf8 = (text: string) => new TextEncoder().encode(text);
  const key = await crypto.subtle.importKey("raw", utf8(token), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(`${label}${issuedAt}`)));
  const base64url = btoa(String.fromCharCode(...mac)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${version}.${issuedAt}.${base64url}`;
}

async function admin(
  path: string,
  opts: { method?: string; cookie?: string; form?: Record<string, string>; origin?: string | null; env?: Overrides } = {},
) {
  const headers: Record<string, string> = {};
  if (opts.cookie) headers.cookie = opts.cookie;
  let body: string | undefined;
  if (opts.form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(opts.form).toString();
  }
  const origin = opts.origin === undefined ? ORIGIN : opts.origin;
  if (origin !== null && (opts.method ?? "GET") !== "GET") headers.origin = origin;
  const res = await callWorker(
    new Request(`${ORIGIN}${path}`, { method: opts.method ?? "GET", headers, body, redirect: "manual" }),
    opts.env ?? {},
  );
  return { status: res.status, headers: res.headers, html: await res.text() };
}

const login = (token: string, opts: { origin?: string | null; env?: Overrides } = {}) =>
  admin("/admin/login", { method: "POST", form: { token }, ...opts });

/** `name=value` of the Set-Cookie header, ready for a Cookie header. */
function cookieOf(res: { headers: Headers }): string {
  const header = res.headers.get("set-cookie");
  expect(header).not.toBeNull();
  return header!.split(";", 1)[0]!;
}

const secrets = () => [
  testEnv.DIRECTORY_API_TOKEN,
  testEnv.ONEACCESS_BEARER_TOKEN,
  testEnv.ONEACCESS_SIGNING_KEY,
  testEnv.ONEACCESS_ENCRYPTION_KEY,
];

let sales: string;

beforeAll(async () => {
  const root = await createOrg("a-root", "Acme Corporation");
  sales = await createOrg("a-sales", "Sales & Marketing", root);
  await createOrg("a-eng", "Engineering", root);
  await createUser("a-alice", { name: "Alice Adams", organizationId: sales, email: "alice@acme.example" });
  await createUser("a-bob", { name: "Bob Brown", organizationId: sales });
  await createUser("a-mallory", { name: '<script>alert("x")</script>', organizationId: root, email: "<b>m</b>@acme.example" });
  const failed = await sendEvent("UPDATE_USER", { id: "usr_nosuchuser00", username: "a-ghost", disabled: false });
  expect(failed.code).toBe("404");
});

describe("login", () => {
  it("without a session, the page redirects to the login form", async () => {
    const res = await admin("/admin");
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/admin/login");
    const form = await admin("/admin/login");
    expect(form.status).toBe(200);
    expect(form.html).toMatch(/^<!DOCTYPE html>/);
    expect(form.html).toContain('<form method="post" action="/admin/login">');
    expect(form.html).toContain('type="password" name="token"');
  });

  it("the right token sets a Secure, HttpOnly, SameSite=Strict, Path=/admin cookie that is not the token", async () => {
    const res = await login(testEnv.DIRECTORY_API_TOKEN);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin");
    const setCookie = res.headers.get("set-cookie")!;
    const [pair, ...attributes] = setCookie.split(/;\s*/);
    expect(pair).toMatch(/^oneaccess_admin=v1\.\d+\.[A-Za-z0-9_-]{43}$/);
    expect(attributes).toEqual(expect.arrayContaining(["Secure", "HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=28800"]));
    expect(attributes.some((a) => /^Domain=/i.test(a))).toBe(false);
    for (const secret of secrets()) expect(setCookie).not.toContain(secret);
    const page = await admin("/admin", { cookie: pair });
    expect(page.status).toBe(200);
    expect(page.html).toContain("operator page");
  });

  it("a wrong token, the callback's bearer token, or an empty one is refused without a cookie", async () => {
    for (const token of ["wrong", testEnv.ONEACCESS_BEARER_TOKEN, "", `${testEnv.DIRECTORY_API_TOKEN}x`]) {
      const res = await login(token);
      expect(res.status).toBe(401);
      expect(res.headers.get("set-cookie")).toBeNull();
      expect(res.html).toContain("That is not the directory API token.");
    }
  });

  it("refuses a cross-origin login post (CSRF) and a non-form body", async () => {
    const cross = await login(testEnv.DIRECTORY_API_TOKEN, { origin: "https://evil.example" });
    expect(cross.status).toBe(403);
    expect(cross.headers.get("set-cookie")).toBeNull();
    const res = await callWorker(
      new Request(`${ORIGIN}/admin/login`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: ORIGIN },
        body: JSON.stringify({ token: testEnv.DIRECTORY_API_TOKEN }),
        redirect: "manual",
      }),
    );
    expect(res.status).toBe(415);
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("the cookie a login sets is exactly the documented HMAC of its issue time", async () => {
    const before = Math.floor(Date.now() / 1000);
    const value = cookieOf(await login(testEnv.DIRECTORY_API_TOKEN)).split("=")[1]!;
    const issuedAt = Number(value.split(".")[1]);
    expect(issuedAt).toBeGreaterThanOrEqual(before - 1);
    expect(issuedAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    expect(value).toBe(await mintSession(testEnv.DIRECTORY_API_TOKEN, issuedAt));
  });

  it("a cookie stops working when the token changes, when forged, or when older than 8 hours", async () => {
    const cookie = cookieOf(await login(testEnv.DIRECTORY_API_TOKEN));
    const changed = await admin("/admin", { cookie, env: { DIRECTORY_API_TOKEN: "a-rotated-directory-token-5e8b1c7d" } });
    expect(changed.status).toBe(302);
    const now = Math.floor(Date.now() / 1000);
    const stale = await mintSession(testEnv.DIRECTORY_API_TOKEN, now - 8 * 3600 - 5);
    const future = await mintSession(testEnv.DIRECTORY_API_TOKEN, now + 3600);
    for (const value of [stale, future, testEnv.DIRECTORY_API_TOKEN, `${cookie.split("=")[1]}x`, "v1.1.x"]) {
      const res = await admin("/admin", { cookie: `oneaccess_admin=${value}` });
      expect(res.status, value).toBe(302);
    }
    const fresh = await mintSession(testEnv.DIRECTORY_API_TOKEN, now - 60);
    expect((await admin("/admin", { cookie: `oneaccess_admin=${fresh}` })).status).toBe(200);
    // Still inside the 8 hours (28 800 s), a minute from the end: accepted.
    const old = await mintSession(testEnv.DIRECTORY_API_TOKEN, now - 8 * 3600 + 60);
    expect((await admin("/admin", { cookie: `oneaccess_admin=${old}` })).status).toBe(200);
  });

  it("refuses a cookie minted with another key, another label or another version, and accepts the right one", async () => {
    const now = Math.floor(Date.now() / 1000) - 30;
    const token = testEnv.DIRECTORY_API_TOKEN;
    const refused: Array<[string, string]> = [
      ["another token", await mintSession("some-other-directory-token-of-32-chars", now)],
      ["the callback's bearer token", await mintSession(testEnv.ONEACCESS_BEARER_TOKEN, now)],
      ["the token with a trailing space", await mintSession(`${token} `, now)],
      ["label v2", await mintSession(token, now, "oneaccess-admin-session/v2/")],
      ["label without its final slash", await mintSession(token, now, "oneaccess-admin-session/v1")],
      ["no label", await mintSession(token, now, "")],
      ["another product's label", await mintSession(token, now, "oneaccess-api-session/v1/")],
      ["version v2", await mintSession(token, now, SESSION_LABEL, "v2")],
      ["the MAC of another issue time", (await mintSession(token, now - 1)).replace(`.${now - 1}.`, `.${now}.`)],
    ];
    for (const [why, value] of refused) {
      const res = await admin("/admin", { cookie: `oneaccess_admin=${value}` });
      expect(res.status, why).toBe(302);
      expect(res.headers.get("location"), why).toBe("/admin/login");
    }
    const right = await admin("/admin", { cookie: `oneaccess_admin=${await mintSession(token, now)}` });
    expect(right.status).toBe(200);
    expect(right.html).toContain("operator page");
  });

  it("logout clears the cookie (a POST, same-origin only)", async () => {
    const res = await admin("/admin/logout", { method: "POST", form: {} });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/login");
    const setCookie = res.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^oneaccess_admin=;/);
    expect(setCookie).toMatch(/Max-Age=0/);
    expect(setCookie).toMatch(/Path=\/admin/);
    expect((await admin("/admin/logout", { method: "POST", form: {}, origin: "https://evil.example" })).status).toBe(403);
  });

  it("is disabled with a clear 404 page while DIRECTORY_API_TOKEN is unset", async () => {
    for (const [path, method] of [["/admin", "GET"], ["/admin/login", "GET"], ["/admin/login", "POST"]] as const) {
      const res = await admin(path, { method, form: method === "POST" ? { token: "" } : undefined, env: { DIRECTORY_API_TOKEN: "" } });
      expect(res.status).toBe(404);
      expect(res.html).toContain("set the DIRECTORY_API_TOKEN secret to enable it");
    }
  });

  it("sends headers that forbid scripts, framing and caching", async () => {
    const res = await admin("/admin/login");
    expect(res.headers.get("content-security-policy")).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
  });
});

describe("the page", () => {
  let cookie: string;
  beforeAll(async () => {
    cookie = cookieOf(await login(testEnv.DIRECTORY_API_TOKEN));
  });
  const page = async (path = "/admin", env: Overrides = {}) => {
    const res = await admin(path, { cookie, env });
    expect(res.status).toBe(200);
    return res.html;
  };

  it("highlights a failed delivery and shows its reason", async () => {
    const html = await page();
    const row = /<tr class="failed" data-code="404">([\s\S]*?)<\/tr>/.exec(html);
    expect(row, "a highlighted 404 row").not.toBeNull();
    expect(row![1]).toContain("UPDATE_USER");
    expect(row![1]).toContain("✗ 404");
    expect(row![1]).toContain('<td class="message">user not found</td>');
    expect(html).toMatch(/<tr class="" data-code="200">/);
    const onlyFailures = await page("/admin?failures=1");
    expect(onlyFailures).toContain('data-code="404"');
    expect(onlyFailures).not.toContain('data-code="200"');
  });

  it("shows counts and the organization tree with member counts", async () => {
    const html = await page();
    expect(html).toMatch(/<dt>organizations<\/dt><dd>3<\/dd>/);
    expect(html).toMatch(/<dt>users<\/dt><dd>3<\/dd>/);
    expect(html).toMatch(/<dt>failed deliveries<\/dt><dd>1<\/dd>/);
    expect(html).toContain("Acme Corporation");
    expect(html).toContain("Sales &amp; Marketing"); // escaped
    expect(html).toMatch(new RegExp(`data-org-id="${sales}"><span class="org-name">Sales &amp; Marketing</span>[\\s\\S]*?2 members`));
    expect(html).toMatch(/1 member · 3 with sub-organizations/);
  });

  it("finds users by part of a username, name or email, escaping what it shows", async () => {
    const html = await page("/admin?q=alice");
    expect(html).toContain('value="alice"');
    expect(html).toMatch(/<td class="mono">a-alice<\/td><td>Alice Adams<\/td>/);
    expect(html).not.toContain("Bob Brown");
    const hostile = await page(`/admin?q=${encodeURIComponent("<script>")}`);
    expect(hostile).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(hostile).toContain("&lt;b&gt;m&lt;/b&gt;@acme.example");
    expect(hostile).not.toMatch(/<script|<b>/);
    expect(await page(`/admin?q=${encodeURIComponent("%")}`)).toContain("No live user matches");
    expect(await page(`/admin?q=${"x".repeat(49)}`)).toContain("q must be at most 48 bytes of UTF-8");
  });

  it("shows the configuration status: profile, settings by name, never a value", async () => {
    const ok = await page();
    expect(ok).toContain('<span class="pill ok">ready</span>');
    expect(ok).toContain("<dt>signature</dt><dd>sha1</dd>");
    expect(ok).toContain("ONEACCESS_SIGNING_KEY_PREVIOUS: not set");
    for (const secret of secrets()) expect(ok).not.toContain(secret);

    const broken = await page("/admin", { ONEACCESS_SIGNING_KEY: "" });
    expect(broken).toContain('<span class="pill bad">misconfigured</span>');
    expect(broken).toMatch(/<strong>ONEACCESS_SIGNING_KEY<\/strong> is required when ONEACCESS_SIGNATURE is sha1/);
    expect(broken).toContain("ONEACCESS_SIGNING_KEY: missing");

    const rotating = await page("/admin", { ONEACCESS_BEARER_TOKEN_PREVIOUS: "the-old-bearer-token-2c9e4f6a8b1d3e5f", ONEACCESS_SIGNATURE: "none" });
    expect(rotating).toContain("rotation in progress");
    expect(rotating).toContain("Rotating <strong>ONEACCESS_BEARER_TOKEN</strong>");
    expect(rotating).toContain("signing is off");
    expect(rotating).not.toContain("the-old-bearer-token");
  });

  it("shows the in-memory signature hint after a callback signed with the other algorithm", async () => {
    const p = { ...profile("hmac+gcm") };
    const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "hint-check");
    const refused = await callWorker(request, { ...envFor(profile("sha1+gcm")) });
    expect(refused.status).toBe(401);
    const html = await page();
    expect(html).toMatch(/Signature hint \([^)]*this isolate&#39;s memory\): signature verifies as hmac-sha256/);
  });
});
