// Who may read the directory: the holder of DIRECTORY_API_TOKEN, through the read API (a bearer header) or
// the operator page (a session cookie that holds an HMAC keyed with the token, never the token itself).
//
// Only the token's own problems disable access: the operator page must work while a callback setting is
// wrong, because saying which one is what it is for. It is read the way config.ts reads every setting
// (trimmed; empty counts as unset).
import { createMiddleware } from "hono/factory";
import { loadConfig } from "../config";
import { constantTimeEqual, sha256, utf8 } from "../protocol/codec";

export type DirectoryAccess = { enabled: true; token: string } | { enabled: false; reason: string };

function setting(env: Env, name: "DIRECTORY_API_TOKEN" | "ONEACCESS_BEARER_TOKEN" | "ONEACCESS_BEARER_TOKEN_PREVIOUS"): string | undefined {
  const v: unknown = env[name];
  return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
}

/** Equal in constant time: both sides are hashed first, so neither their contents nor lengths leak. */
export async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(utf8(given)), sha256(utf8(expected))]);
  return constantTimeEqual(a, b);
}

/**
 * Enabled only with DIRECTORY_API_TOKEN set, and only when it differs from the callback's bearer token
 * (current and previous): the token OneAccess holds must never open the directory.
 */
export async function directoryAccess(env: Env): Promise<DirectoryAccess> {
  const token = setting(env, "DIRECTORY_API_TOKEN");
  if (token === undefined) {
    return { enabled: false, reason: "the directory read API is disabled: set the DIRECTORY_API_TOKEN secret to enable it" };
  }
  // Its own problems only (too short, the public development value): another setting may be wrong meanwhile.
  const config = loadConfig(env);
  const problem = config.ok ? undefined : config.problems.find((p) => p.setting === "DIRECTORY_API_TOKEN");
  if (problem) return { enabled: false, reason: `the directory read API is disabled: DIRECTORY_API_TOKEN ${problem.problem}` };
  for (const name of ["ONEACCESS_BEARER_TOKEN", "ONEACCESS_BEARER_TOKEN_PREVIOUS"] as const) {
    const bearer = setting(env, name);
    if (bearer !== undefined && (await tokensEqual(token, bearer))) {
      return { enabled: false, reason: `the directory read API is disabled: DIRECTORY_API_TOKEN must differ from ${name}` };
    }
  }
  return { enabled: true, token };
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or null. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? "");
  return m ? m[1]! : null;
}

const json = { "content-type": "application/json; charset=UTF-8", "cache-control": "no-store" };

/**
 * The read API's gate: 404 (saying why) while the API is disabled, 401 without the right bearer token.
 * Unknown paths under the API are behind it too, so nothing is learnt without the token.
 */
export const requireApiToken = () =>
  createMiddleware<{ Bindings: Env }>(async (c, next) => {
    const access = await directoryAccess(c.env);
    if (!access.enabled) {
      return new Response(JSON.stringify({ error: "disabled", message: access.reason }), { status: 404, headers: json });
    }
    const given = bearerToken(c.req.header("authorization"));
    if (given === null || !(await tokensEqual(given, access.token))) {
      return new Response(
        JSON.stringify({ error: "unauthorized", message: "send Authorization: Bearer <DIRECTORY_API_TOKEN>" }),
        { status: 401, headers: { ...json, "www-authenticate": 'Bearer realm="directory"' } },
      );
    }
    await next();
  });

// --- operator page session cookie ---------------------------------------------------------------------

export const ADMIN_COOKIE = "oneaccess_admin";
/** A login lasts 8 hours; the cookie's Max-Age and the value's own issue time both enforce it. */
export const ADMIN_SESSION_SECONDS = 8 * 60 * 60;
const SESSION_LABEL = "oneaccess-admin-session/v1/";

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function sessionMac(token: string, issuedAt: number): Promise<string> {
  const key = await crypto.subtle.importKey("raw", utf8(token), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return base64Url(new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(`${SESSION_LABEL}${issuedAt}`))));
}

/** `v1.<issued at, Unix seconds>.<HMAC-SHA256 keyed with the token>`: worthless once the token changes. */
export async function sessionCookieValue(token: string, nowSeconds: number): Promise<string> {
  return `v1.${nowSeconds}.${await sessionMac(token, nowSeconds)}`;
}

/** Whether a cookie value was issued with this token and is not older than the session lifetime. */
export async function validSession(token: string, value: string | undefined, nowSeconds: number): Promise<boolean> {
  const m = /^v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value ?? "");
  if (!m) return false;
  const issuedAt = Number(m[1]);
  // A little clock skew forwards is tolerated (isolates' clocks), never more than a minute.
  if (issuedAt > nowSeconds + 60 || nowSeconds - issuedAt > ADMIN_SESSION_SECONDS) return false;
  const expected = await sessionMac(token, issuedAt);
  return constantTimeEqual(utf8(m[2]!), utf8(expected));
}
