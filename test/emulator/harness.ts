// The emulator's app inside workerd, delivering its callbacks to the receiver through the Worker's own fetch,
// and a small client for its management API (token first, then Bearer on every call).
import { createEmulator, type Emulator, type EmulatorOptions } from "../../emulator/core/app";
import { MemoryStore } from "../../emulator/core/store";
import type { FetchLike } from "../../sim/core/wire";
import { CALLBACK_URL } from "../helpers/worker";
import { directoryByCode, simProfile, workerFetch, type Layout, type ProfileName } from "../simulator/harness";

export const EMULATOR = "http://emulator.test";
export const APP_ID = "local-app";

export interface Answer<T = any> {
  status: number;
  body: T;
}

/** The management API as a script would call it. */
export class Client {
  token = "";

  constructor(readonly emulator: Emulator) {}

  async raw(method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const response = await this.emulator.app.fetch(new Request(`${EMULATOR}${path}`, { method, headers: init.headers, body: init.body }));
    const text = await response.text();
    return { status: response.status, body: text === "" ? null : JSON.parse(text) };
  }

  async login(): Promise<this> {
    const answer = await this.raw("POST", "/api/v2/tenant/token", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=emulator-client-id&client_secret=emulator-client-secret",
    });
    if (answer.status !== 200) throw new Error(`token: ${answer.status} ${JSON.stringify(answer.body)}`);
    this.token = answer.body.access_token;
    return this;
  }

  call<T = any>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json;charset=utf8";
    return this.raw(method, path, { headers, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  /** A path under the application. */
  app = (path: string) => `/api/v2/tenant/applications/${APP_ID}${path}`;

  /** A call that must succeed: 201 for an add, 204 for a delete, 200 otherwise (retries and settings included). */
  async ok<T = any>(method: string, path: string, body?: unknown, expected = defaultStatus(method, path)): Promise<T> {
    const answer = await this.call<T>(method, path, body);
    if (answer.status !== expected) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  createUser = async (userName: string, name?: string): Promise<string> =>
    (await this.ok("POST", "/api/v2/tenant/users", { user_name: userName, ...(name ? { name } : {}) })).user_id;
  createOrg = async (code: string, name: string, parentId?: string): Promise<string> =>
    (await this.ok("POST", this.app("/organizations"), { org_code: code, name, parent_id: parentId ?? "" })).org_id;
  createAccount = async (body: Record<string, unknown>): Promise<string> =>
    (await this.ok("POST", this.app("/accounts/basic-account"), body)).account_id;
  general = (accountDeletion: string, organizationDeletion: string) =>
    this.ok("PUT", this.app("/sync-settings/general"), { account_deletion: accountDeletion, organization_deletion: organizationDeletion });

  /** Every record (newest first, as the API lists them). */
  async records(status?: string): Promise<any[]> {
    const all: any[] = [];
    for (let offset = 0; ; offset++) {
      const q = `?offset=${offset}&limit=100${status ? `&status=${status}` : ""}`;
      const body = await this.ok("GET", this.app(`/sync-records${q}`));
      all.push(...body.records);
      if (all.length >= body.total) return all;
    }
  }

  /** A list API read page by page (offset is the page number). */
  async list(path: string, key: string, limit = 20): Promise<any[]> {
    const all: any[] = [];
    for (let offset = 0; ; offset++) {
      const body = await this.ok("GET", this.app(`${path}?offset=${offset}&limit=${limit}`));
      all.push(...body[key]);
      if (body[key].length < limit) return all;
    }
  }
}

function defaultStatus(method: string, path: string): number {
  if (method === "DELETE") return 204;
  return method === "POST" && !path.includes("/sync-records/") ? 201 : 200;
}

/** The settings body that configures the emulator like the Worker is configured for a test profile. */
export function settingsBody(name: ProfileName, layout?: Layout): Record<string, string> {
  const p = simProfile(name, layout);
  return {
    callback_url: CALLBACK_URL,
    security_token: p.bearer,
    signature_algorithm: p.signature,
    signing_key: p.signingKey,
    encryption_algorithm: p.encryption,
    encryption_key: p.encryptionKey,
    gcm_layout: p.layout,
    receive_id: p.receiveId,
  };
}

/** An emulator for a profile (settings applied from the start unless `configured: false`). */
export function emulatorFor(
  name: ProfileName,
  layout?: Layout,
  options: Partial<EmulatorOptions> & { configured?: boolean; fetch?: FetchLike } = {},
): Emulator {
  const { configured = true, ...rest } = options;
  return createEmulator({
    store: new MemoryStore(),
    fetch: workerFetch(name, layout),
    ...(configured ? { settings: { callbackUrl: CALLBACK_URL, profile: simProfile(name, layout) } } : {}),
    ...rest,
  });
}

/** A transport that can be switched off (no answer) or made to answer 503, like a receiver outage. */
export function switchableFetch(inner: FetchLike) {
  const state = { mode: "up" as "up" | "down" | "503", sent: 0 };
  const fetch: FetchLike = async (request) => {
    state.sent++;
    if (state.mode === "down") throw new TypeError("fetch failed (connect ECONNREFUSED)");
    if (state.mode === "503") return new Response("Service Unavailable", { status: 503 });
    return inner(request);
  };
  return { fetch, state };
}

type ExpectedOrg = { code: string; name: string; parentCode: string | null; extensions: Record<string, unknown>; parentMissing: false };
type ExpectedUser = Record<string, unknown>;

const STANDARD = ["firstName", "middleName", "lastName", "email", "mobile"] as const;

/** An account as the receiver should hold it (directoryByCode's shape). */
export function userFromAccount(account: any, codeOf: (orgId: string) => string, overrides: { disabled?: boolean } = {}): ExpectedUser {
  const ext = { ...account.extension } as Record<string, unknown>;
  const standard: Record<string, unknown> = {};
  for (const key of STANDARD) {
    standard[key] = ext[key] ?? null;
    delete ext[key];
  }
  return {
    username: account.account_name,
    name: account.name,
    orgCode: account.org_id === null ? null : codeOf(account.org_id),
    disabled: overrides.disabled ?? account.disabled,
    ...standard,
    extensions: ext,
    organizationMissing: false,
  };
}

export function orgFromOrganization(org: any, codeOf: (orgId: string) => string, extensions: Record<string, unknown> = {}): ExpectedOrg {
  return { code: org.org_code, name: org.name, parentCode: org.parent_id === null ? null : codeOf(org.parent_id), extensions, parentMissing: false };
}

/** The receiver's directory, only the entities whose code or username starts with the tag. */
export async function receiverDirectory(tag: string) {
  const mine = (key: string) => key.startsWith(`${tag}.`) || key.startsWith(`${tag}-`);
  const d = await directoryByCode();
  const organizations = d.organizations
    .filter((o) => mine(o.code))
    .map((o) => ({ code: o.code, name: o.name, parentCode: o.parentCode, extensions: o.extensions, parentMissing: o.parentMissing }));
  const users = d.users.filter((u) => mine(u.username));
  return { organizations, users };
}

export const byCode = <T extends { code: string }>(list: T[]) => [...list].sort((a, b) => a.code.localeCompare(b.code));
export const byUsername = <T extends Record<string, unknown>>(list: T[]) =>
  [...list].sort((a, b) => String(a.username).localeCompare(String(b.username)));
