// Bad management requests answer as OneAccess does: 400 with exactly {"error_code", "error_msg"} (401 for a
// missing, unknown or expired access token), the message naming the field, and nothing changed: no entity,
// no sync record.
import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { ERROR_CODES } from "../../emulator/core/errors";
import { APP_ID, Client, emulatorFor } from "./harness";

const A = `/api/v2/tenant/applications/${APP_ID}`;

let c: Client;
const ids: Record<string, string> = {};

// The Worker's one log line per callback (refusals go to console.warn).
beforeEach(() => {
  vi.spyOn(console, "log").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});

beforeAll(async () => {
  vi.spyOn(console, "log").mockImplementation(() => {});
  c = await new Client(emulatorFor("sha1+gcm", "iv12")).login();
  ids.root = await c.createOrg("err-root", "Root");
  ids.child = await c.createOrg("err-child", "Child", ids.root);
  ids.grandchild = await c.createOrg("err-grandchild", "Grandchild", ids.child);
  ids.user = await c.createUser("err.alice", "Alice");
  ids.other = await c.createUser("err.bob", "Bob");
  ids.account = await c.createAccount({ user_id: ids.user, org_code: "err-child" });
  ids.record = String((await c.records())[0].id);
  vi.restoreAllMocks();
});

interface Case {
  name: string;
  method: string;
  path: () => string;
  body?: () => unknown;
  status?: number;
  code: string;
  msg: RegExp;
}

const cases: Case[] = [
  // application accounts
  { name: "add: user_id missing", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ account_name: "x" }), code: ERROR_CODES.required, msg: /^user_id is required$/ },
  { name: "add: user_id not a string", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: 42 }), code: ERROR_CODES.invalid, msg: /^user_id must be a string$/ },
  { name: "add: unknown user", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: "nobody" }), code: ERROR_CODES.notFound, msg: /^user nobody does not exist$/ },
  { name: "add: a second account for the same user", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.user }), code: ERROR_CODES.exists, msg: /^an account of user .* already exists$/ },
  { name: "add: account_name taken", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, account_name: "err.alice" }), code: ERROR_CODES.exists, msg: /^account_name err\.alice already exists$/ },
  { name: "add: disabled not a boolean", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, disabled: "yes" }), code: ERROR_CODES.invalid, msg: /^disabled must be true or false$/ },
  { name: "add: unknown org_code", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, org_code: "nowhere" }), code: ERROR_CODES.notFound, msg: /^organization with org_code nowhere does not exist$/ },
  { name: "add: name over 40 characters", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, name: "n".repeat(41) }), code: ERROR_CODES.invalid, msg: /^name exceeds 40 characters$/ },
  { name: "add: extension not an object", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, extension: ["a"] }), code: ERROR_CODES.invalid, msg: /^extension must be an object$/ },
  { name: "add: extension key reserved", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, extension: { organizationId: "x" } }), code: ERROR_CODES.invalid, msg: /^extension\.organizationId is reserved/ },
  { name: "add: extension key malformed", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, extension: { "bad key": 1 } }), code: ERROR_CODES.invalid, msg: /^extension key "bad key" must be/ },
  { name: "add: extension value nested", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, extension: { team: { a: 1 } } }), code: ERROR_CODES.invalid, msg: /^extension\.team must be a string, a number or a boolean$/ },
  { name: "add: standard attribute not a string", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ({ user_id: ids.other, extension: { email: 5 } }), code: ERROR_CODES.invalid, msg: /^extension\.email must be a string$/ },
  { name: "add: body not JSON", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ("{user_id:"), code: ERROR_CODES.body, msg: /^the request body must be a JSON object$/ },
  { name: "add: body a JSON array", method: "POST", path: () => `${A}/accounts/basic-account`, body: () => ("[]"), code: ERROR_CODES.body, msg: /JSON object/ },
  { name: "modify: unknown account", method: "PUT", path: () => `${A}/accounts/nope`, body: () => ({ name: "X" }), code: ERROR_CODES.notFound, msg: /^account nope does not exist$/ },
  { name: "modify: empty name", method: "PUT", path: () => `${A}/accounts/${ids.account}`, body: () => ({ name: "  " }), code: ERROR_CODES.invalid, msg: /^name must not be empty$/ },
  { name: "enable: unknown account", method: "PUT", path: () => `${A}/accounts/nope/enable`, code: ERROR_CODES.notFound, msg: /^account nope does not exist$/ },
  { name: "delete: unknown account", method: "DELETE", path: () => `${A}/accounts/nope`, code: ERROR_CODES.notFound, msg: /^account nope does not exist$/ },
  { name: "get: unknown account", method: "GET", path: () => `${A}/accounts/nope`, code: ERROR_CODES.notFound, msg: /^account nope does not exist$/ },
  { name: "list: offset missing", method: "GET", path: () => `${A}/accounts?limit=10`, code: ERROR_CODES.required, msg: /^offset is required$/ },
  { name: "list: limit out of range", method: "GET", path: () => `${A}/accounts?offset=0&limit=101`, code: ERROR_CODES.invalid, msg: /^limit must be an integer from 1 to 100$/ },
  { name: "list: offset not a number", method: "GET", path: () => `${A}/organizations?offset=-1&limit=10`, code: ERROR_CODES.invalid, msg: /^offset must be an integer/ },
  // application organizations
  { name: "add org: org_code missing", method: "POST", path: () => `${A}/organizations`, body: () => ({ name: "X" }), code: ERROR_CODES.required, msg: /^org_code is required$/ },
  { name: "add org: org_code with a space", method: "POST", path: () => `${A}/organizations`, body: () => ({ org_code: "a b", name: "X" }), code: ERROR_CODES.invalid, msg: /^org_code may contain only letters, digits, _ and -$/ },
  { name: "add org: org_code with a slash", method: "POST", path: () => `${A}/organizations`, body: () => ({ org_code: "a/b", name: "X" }), code: ERROR_CODES.invalid, msg: /^org_code may contain only/ },
  { name: "add org: name missing", method: "POST", path: () => `${A}/organizations`, body: () => ({ org_code: "err-x" }), code: ERROR_CODES.required, msg: /^name is required$/ },
  { name: "add org: org_code taken", method: "POST", path: () => `${A}/organizations`, body: () => ({ org_code: "err-root", name: "Again" }), code: ERROR_CODES.exists, msg: /^org_code err-root already exists$/ },
  { name: "add org: unknown parent_id", method: "POST", path: () => `${A}/organizations`, body: () => ({ org_code: "err-x", name: "X", parent_id: "nope" }), code: ERROR_CODES.notFound, msg: /^parent organization nope does not exist$/ },
  { name: "modify org: into its own subtree", method: "PUT", path: () => `${A}/organizations/${ids.root}`, body: () => ({ parent_id: ids.grandchild }), code: ERROR_CODES.conflict, msg: /own ancestor/ },
  { name: "modify org: its own parent", method: "PUT", path: () => `${A}/organizations/${ids.child}`, body: () => ({ parent_id: ids.child }), code: ERROR_CODES.conflict, msg: /own ancestor/ },
  { name: "modify org: org_code changed", method: "PUT", path: () => `${A}/organizations/${ids.child}`, body: () => ({ org_code: "renamed" }), code: ERROR_CODES.invalid, msg: /^org_code cannot be changed/ },
  { name: "delete org: has children", method: "DELETE", path: () => `${A}/organizations/${ids.root}`, code: ERROR_CODES.conflict, msg: /still has 1 child organization\(s\) and 0 account\(s\)/ },
  { name: "get org: unknown", method: "GET", path: () => `${A}/organizations/nope`, code: ERROR_CODES.notFound, msg: /^organization nope does not exist$/ },
  // application, users, settings, records
  { name: "unknown application", method: "GET", path: () => `/api/v2/tenant/applications/other-app/accounts?offset=0&limit=10`, code: ERROR_CODES.notFound, msg: /^application other-app does not exist$/ },
  { name: "user: user_name missing", method: "POST", path: () => `/api/v2/tenant/users`, body: () => ({ name: "No Name" }), code: ERROR_CODES.required, msg: /^user_name is required$/ },
  { name: "user: user_name taken", method: "POST", path: () => `/api/v2/tenant/users`, body: () => ({ user_name: "err.alice" }), code: ERROR_CODES.exists, msg: /^user_name err\.alice already exists$/ },
  { name: "general: unknown deletion mode", method: "PUT", path: () => `${A}/sync-settings/general`, body: () => ({ account_deletion: "archive" }), code: ERROR_CODES.invalid, msg: /^account_deletion must be one of delete, disable, none$/ },
  { name: "sync settings: unknown signature", method: "PUT", path: () => `${A}/sync-settings`, body: () => ({ signature_algorithm: "md5" }), code: ERROR_CODES.invalid, msg: /^signature_algorithm must be one of sha1, hmac-sha256, none$/ },
  { name: "sync settings: gcm key of 10 characters", method: "PUT", path: () => `${A}/sync-settings`, body: () => ({ encryption_key: "0123456789" }), code: ERROR_CODES.invalid, msg: /^encryption_key must be 16, 24 or 32 bytes for aes-gcm$/ },
  { name: "sync settings: signing key removed", method: "PUT", path: () => `${A}/sync-settings`, body: () => ({ signing_key: "" }), code: ERROR_CODES.invalid, msg: /^signing_key is required when signature_algorithm is sha1$/ },
  { name: "sync settings: callback URL not http", method: "PUT", path: () => `${A}/sync-settings`, body: () => ({ callback_url: "ftp://receiver.test/callback" }), code: ERROR_CODES.invalid, msg: /^callback_url must be an absolute http or https URL$/ },
  { name: "records: retry a successful record", method: "POST", path: () => `${A}/sync-records/${ids.record}/retry`, code: ERROR_CODES.retry, msg: /is success: only a failed record can be retried$/ },
  { name: "records: unknown record", method: "GET", path: () => `${A}/sync-records/999999`, code: ERROR_CODES.notFound, msg: /^sync record 999999 does not exist$/ },
  { name: "records: unknown status filter", method: "GET", path: () => `${A}/sync-records?status=lost`, code: ERROR_CODES.invalid, msg: /^status must be one of success, failed, waiting$/ },
  { name: "no such API", method: "GET", path: () => `/api/v2/tenant/nothing-here`, status: 404, code: ERROR_CODES.noSuchApi, msg: /^no such API: GET \/api\/v2\/tenant\/nothing-here$/ },
];

describe("bad management requests", () => {
  it.each(cases)("$name: $code", async (k) => {
    const before = await c.records();
    const answer = await c.raw(k.method, k.path(), {
      headers: { authorization: `Bearer ${c.token}`, "content-type": "application/json;charset=utf8" },
      body: k.body === undefined ? undefined : typeof k.body() === "string" ? (k.body() as string) : JSON.stringify(k.body()),
    });
    expect(answer.status).toBe(k.status ?? 400);
    expect(Object.keys(answer.body)).toEqual(["error_code", "error_msg"]);
    expect(answer.body.error_code).toBe(k.code);
    expect(answer.body.error_msg).toMatch(k.msg);
    expect(await c.records()).toEqual(before);
  });

  it("a refused request changes nothing: the directory is as the setup left it", async () => {
    expect((await c.list("/organizations", "organizations")).map((o) => o.org_code)).toEqual(["err-root", "err-child", "err-grandchild"]);
    expect(await c.list("/accounts", "accounts")).toEqual([
      { id: ids.account, account_name: "err.alice", account_type: "BASIC_ACCOUNT", name: "Alice", disabled: false, org_id: ids.child, roles: [], extension: {} },
    ]);
    expect((await c.ok("GET", `${A}/sync-settings`)).signature_algorithm).toBe("sha1");
  });

  it("deleting an organization that still holds an account is refused", async () => {
    const answer = await c.call("DELETE", `${A}/organizations/${ids.child}`);
    expect(answer).toEqual({
      status: 400,
      body: { error_code: ERROR_CODES.conflict, error_msg: "organization err-child still has 1 child organization(s) and 1 account(s)" },
    });
  });
});

describe("access tokens", () => {
  const form = (fields: Record<string, string>) => ({
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });

  it("client credentials give a Bearer token with an expiry (form or JSON body)", async () => {
    const fresh = new Client(emulatorFor("none"));
    const byForm = await fresh.raw("POST", "/api/v2/tenant/token", form({ grant_type: "client_credentials", client_id: "emulator-client-id", client_secret: "emulator-client-secret" }));
    expect(byForm.status).toBe(200);
    expect(byForm.body).toEqual({ access_token: expect.stringMatching(/^[0-9a-f-]{36}$/), token_type: "Bearer", expires_in: 1800 });
    const byJson = await fresh.raw("POST", "/api/v2/tenant/token", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", client_id: "emulator-client-id", client_secret: "emulator-client-secret" }),
    });
    expect(byJson.status).toBe(200);
    expect(byJson.body.access_token).not.toBe(byForm.body.access_token);
  });

  it.each([
    [{ client_id: "emulator-client-id", client_secret: "emulator-client-secret" }, ERROR_CODES.required, "grant_type is required"],
    [{ grant_type: "password", client_id: "emulator-client-id", client_secret: "emulator-client-secret" }, ERROR_CODES.invalid, "grant_type must be client_credentials"],
    [{ grant_type: "client_credentials", client_id: "emulator-client-id", client_secret: "wrong" }, ERROR_CODES.credentials, "client_id or client_secret is invalid"],
    [{ grant_type: "client_credentials", client_secret: "emulator-client-secret" }, ERROR_CODES.required, "client_id is required"],
  ])("token request %j: 400 %s", async (fields, code, msg) => {
    const answer = await new Client(emulatorFor("none")).raw("POST", "/api/v2/tenant/token", form(fields as Record<string, string>));
    expect(answer).toEqual({ status: 400, body: { error_code: code, error_msg: msg } });
  });

  it("every other call needs a valid, unexpired Bearer token: 401 otherwise", async () => {
    let now = Date.UTC(2026, 0, 1);
    const emulator = emulatorFor("none", undefined, { now: () => now, tokenTtlSeconds: 60 });
    const client = await new Client(emulator).login();
    const list = `${A}/accounts?offset=0&limit=10`;
    const asIs = (authorization?: string) => client.raw("GET", list, authorization ? { headers: { authorization } } : {});
    expect((await asIs(`Bearer ${client.token}`)).status).toBe(200);
    expect(await asIs()).toEqual({ status: 401, body: { error_code: ERROR_CODES.unauthorized, error_msg: "Authorization: Bearer {access_token} is required" } });
    expect(await asIs(`Basic ${client.token}`)).toMatchObject({ status: 401 });
    expect(await asIs("Bearer 00000000-0000-0000-0000-000000000000")).toEqual({
      status: 401,
      body: { error_code: ERROR_CODES.unauthorized, error_msg: "the access token is invalid" },
    });
    now += 59_000;
    expect((await asIs(`Bearer ${client.token}`)).status).toBe(200);
    now += 1_000;
    expect(await asIs(`Bearer ${client.token}`)).toEqual({ status: 401, body: { error_code: ERROR_CODES.unauthorized, error_msg: "the access token has expired" } });
    // A write is refused the same way, and changes nothing.
    const write = await client.raw("POST", `${A}/organizations`, { headers: { authorization: `Bearer ${client.token}` }, body: '{"org_code":"x","name":"X"}' });
    expect(write.status).toBe(401);
    await client.login();
    expect((await client.ok("GET", `${A}/organizations?offset=0&limit=10`)).total).toBe(0);
  });
});
