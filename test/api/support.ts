// Shared by the read API and operator page tests: directory data is created the way OneAccess creates it,
// signed and encrypted callbacks through the Worker's fetch (independent sender), and read back through the
// Worker's fetch. D1 is isolated per test file, so each file's names only need to be unique within it.
import { expect } from "vitest";
import { CALLBACK_URL, callWorker, envFor, profile, testEnv } from "../helpers/worker";
import { buildRequest, openReply } from "../sender/oneaccess-sender";

export type Overrides = Partial<Record<keyof Env, unknown>>;

export const API = "https://receiver.test/api/v1";
export const apiToken = () => testEnv.DIRECTORY_API_TOKEN;

let clock = Date.now();
/** Strictly increasing millisecond timestamps, so last-event-wins never ignores a test's own event. */
const nextTimestamp = () => ++clock;

export interface Delivered {
  code: string;
  message: string;
  id: string | undefined;
  nonce: string;
}

/** Sends one event through /callback (sha1 + aes-gcm) and returns the opened reply. */
export async function sendEvent(eventType: string, payload: unknown, env: Overrides = {}, opts: { timestamp?: number } = {}): Promise<Delivered> {
  const p = profile("sha1+gcm");
  const { request, envelope } = await buildRequest(CALLBACK_URL, p, eventType, payload, { timestamp: opts.timestamp ?? nextTimestamp() });
  const reply = await openReply(p, await callWorker(request, { ...envFor(p), ...env }));
  const id = reply.plaintext.startsWith("{") ? (JSON.parse(reply.plaintext) as { id?: string }).id : undefined;
  return { code: reply.code, message: reply.message, id, nonce: envelope.nonce };
}

async function created(eventType: string, payload: unknown, env: Overrides = {}): Promise<string> {
  const sent = await sendEvent(eventType, payload, env);
  if (sent.code !== "200" || sent.id === undefined) throw new Error(`${eventType} answered ${sent.code} ${sent.message}`);
  return sent.id;
}

export const createOrg = (code: string, name: string, parentId?: string) =>
  created("CREATE_ORGANIZATION", { code, name, ...(parentId ? { parentId } : {}) });

export const createUser = (username: string, attrs: Record<string, unknown> = {}, env: Overrides = {}) =>
  created("CREATE_USER", { username, name: `Name of ${username}`, ...attrs }, env);

export interface ApiAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** GET (or another method) on the read API with the directory token unless told otherwise. */
export async function api<T = any>(
  path: string,
  opts: { token?: string | null; authorization?: string; method?: string; env?: Overrides; headers?: Record<string, string> } = {},
): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? apiToken() : opts.token;
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await callWorker(new Request(`${API}${path}`, { method: opts.method ?? "GET", headers }), opts.env ?? {});
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: left as text for the assertion to show
  }
  return { status: res.status, headers: res.headers, body: body as T, text };
}

/** Follows next_cursor from `path` (which may carry other parameters, not limit or cursor) to the end; returns every page. */
export async function allPages<T = any>(path: string, limit: number, startCursor: string | null = null): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = startCursor;
  const join = path.includes("?") ? "&" : "?";
  for (let guard = 0; guard < 1000; guard++) {
    const res: ApiAnswer<{ data: T[]; next_cursor: string | null }> = await api(
      `${path}${join}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    expect(res.status, res.text).toBe(200);
    pages.push(res.body.data);
    cursor = res.body.next_cursor;
    if (cursor === null) return pages;
  }
  throw new Error("pagination did not end");
}

/** Every user, organization and delivery id in the tables, for "nothing missing, nothing extra" checks. */
export async function idsInTable(table: "users" | "organizations" | "deliveries", where = "1"): Promise<Array<string | number>> {
  const { results } = await testEnv.DB.prepare(`SELECT id FROM ${table} WHERE ${where} ORDER BY id`).all<{ id: string | number }>();
  return results.map((r) => r.id);
}
