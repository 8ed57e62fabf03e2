// The operator page from a test: a session cookie got the way a browser gets one (the login form, posted
// from this origin with the directory token from the test env), then pages fetched with it.
import { expect } from "vitest";
import { callWorker, testEnv } from "./worker";

export const ADMIN_ORIGIN = "https://receiver.test";

/** Logs in through POST /admin/login and returns the session cookie as `name=value`. */
export async function adminCookie(): Promise<string> {
  const res = await callWorker(
    new Request(`${ADMIN_ORIGIN}/admin/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: ADMIN_ORIGIN },
      body: new URLSearchParams({ token: testEnv.DIRECTORY_API_TOKEN }).toString(),
      redirect: "manual",
    }),
  );
  expect(res.status).toBe(303);
  const header = res.headers.get("set-cookie");
  expect(header).not.toBeNull();
  return header!.split(";", 1)[0]!;
}

/** GET `path` (e.g. "/admin?q=x") with the session cookie; `env` overrides bindings for this call. */
export async function adminGet(path: string, cookie: string, env: Partial<Record<keyof Env, unknown>> = {}) {
  const res = await callWorker(new Request(`${ADMIN_ORIGIN}${path}`, { headers: { cookie }, redirect: "manual" }), env);
  return { status: res.status, html: await res.text() };
}
