// What each management call does to the application, and the event it becomes (a record draft for
// sync.ts). Account → user events: account_name → username, the account's organization → organizationId,
// extension keys → attributes of the event (standard attribute names as those attributes, others as
// extension attributes). Organization → organization events. Updates carry the fixed fields and what changed.
import { LIMITS } from "../../src/protocol/events";
import { errors } from "./errors";
import type { RecordDraft } from "./sync";
import { newId, type Account, type EmulatorState, type JsonValue, type Organization, type Scalar, type TenantUser } from "./state";
import {
  checkExtensionSize,
  extension,
  optionalBoolean,
  optionalPassword,
  optionalReference,
  optionalText,
  orgCode,
  requiredText,
  type Body,
} from "./validate";

const iso = (ms: number) => new Date(ms).toISOString();

// --- lookups ----------------------------------------------------------------------------------------

export function findUser(state: EmulatorState, id: string): TenantUser {
  const user = state.users.find((u) => u.id === id);
  if (!user) throw errors.notFound(`user ${id}`);
  return user;
}

export function findAccount(state: EmulatorState, id: string): Account {
  const account = state.accounts.find((a) => a.id === id);
  if (!account) throw errors.notFound(`account ${id}`);
  return account;
}

export function findOrganization(state: EmulatorState, id: string, field = "organization"): Organization {
  const org = state.organizations.find((o) => o.id === id);
  if (!org) throw errors.notFound(`${field} ${id}`);
  return org;
}

function orgByCode(state: EmulatorState, code: string): Organization {
  const org = state.organizations.find((o) => o.code === code);
  if (!org) throw errors.notFound(`organization with org_code ${code}`);
  return org;
}

// --- views (OneAccess's field names) -------------------------------------------------------------------

export const userView = (u: TenantUser) => ({ user_id: u.id, user_name: u.userName, name: u.name, mobile: u.mobile, email: u.email });

export const accountView = (a: Account) => ({
  id: a.id,
  account_name: a.accountName,
  account_type: "BASIC_ACCOUNT",
  name: a.name,
  disabled: a.disabled,
  org_id: a.orgId,
  roles: [] as unknown[],
  extension: { ...a.extension },
});

export const organizationView = (o: Organization) => ({ org_id: o.id, org_code: o.code, name: o.name, parent_id: o.parentId });

// --- tenant users ------------------------------------------------------------------------------------

export function createUser(state: EmulatorState, body: Body, nowMs: number): TenantUser {
  const userName = requiredText(body, "user_name", LIMITS.username);
  if (state.users.some((u) => u.userName === userName)) throw errors.exists(`user_name ${userName}`);
  const name = optionalText(body, "name", LIMITS.userName) ?? userName.slice(0, LIMITS.userName);
  const mobile = optionalText(body, "mobile", LIMITS.mobile) ?? null;
  const email = optionalText(body, "email", LIMITS.email) ?? null;
  const user: TenantUser = { id: newId(nowMs), userName, name, mobile, email, createdAt: iso(nowMs) };
  state.users.push(user);
  return user;
}

// --- accounts ----------------------------------------------------------------------------------------

function accountDraft(a: Account, eventType: RecordDraft["eventType"], data: Record<string, JsonValue>, orgIds: Array<string | null>, link: RecordDraft["link"]): RecordDraft {
  const refs = [...new Set(orgIds.filter((id): id is string => id !== null))];
  return { eventType, objectType: "account", objectId: a.id, objectName: a.accountName, refs, data, link };
}

function orgLink(state: EmulatorState, field: "organizationId" | "parentId", orgId: string | null): NonNullable<RecordDraft["link"]> {
  const code = orgId === null ? null : (state.organizations.find((o) => o.id === orgId)?.code ?? orgId);
  return { field, orgId, orgCode: code };
}

function checkAccountName(state: EmulatorState, accountName: string, self: Account | null) {
  if (state.accounts.some((a) => a.accountName === accountName && a !== self)) throw errors.exists(`account_name ${accountName}`);
}

/** `org_code` of an account: absent → undefined, null or "" → no organization, otherwise an existing code. */
function accountOrg(state: EmulatorState, body: Body): string | null | undefined {
  const code = optionalReference(body, "org_code");
  if (code === undefined || code === null) return code;
  return orgByCode(state, code).id;
}

function withoutNulls(ext: Record<string, Scalar | null>): Record<string, Scalar> {
  return Object.fromEntries(Object.entries(ext).filter(([, v]) => v !== null)) as Record<string, Scalar>;
}

export function createAccount(state: EmulatorState, body: Body, nowMs: number): { account: Account; draft: RecordDraft } {
  const userId = body.user_id;
  if (userId === undefined || userId === null || userId === "") throw errors.required("user_id");
  if (typeof userId !== "string") throw errors.invalid("user_id", "must be a string");
  const user = findUser(state, userId);
  if (state.accounts.some((a) => a.userId === user.id)) throw errors.exists(`an account of user ${user.id} in this application`);
  const accountName = optionalText(body, "account_name", LIMITS.username) ?? user.userName;
  checkAccountName(state, accountName, null);
  const name = optionalText(body, "name", LIMITS.userName) ?? user.name;
  const orgId = accountOrg(state, body) ?? null;
  const password = optionalPassword(body, "password");
  const disabled = optionalBoolean(body, "disabled") ?? false;
  const ext = withoutNulls(extension(body, false) ?? {});
  checkExtensionSize(ext);

  const account: Account = { id: newId(nowMs), userId: user.id, accountName, name, orgId, disabled, extension: ext, createdAt: iso(nowMs) };
  state.accounts.push(account);
  const data: Record<string, JsonValue> = { username: accountName, name };
  if (orgId !== null) data.organizationId = null;
  if (password !== undefined) data.password = password;
  data.disabled = disabled;
  Object.assign(data, ext);
  return { account, draft: accountDraft(account, "CREATE_USER", data, [orgId], orgLink(state, "organizationId", orgId)) };
}

export function modifyAccount(state: EmulatorState, account: Account, body: Body): RecordDraft | null {
  const accountName = optionalText(body, "account_name", LIMITS.username);
  if (accountName !== undefined) checkAccountName(state, accountName, account);
  const name = optionalText(body, "name", LIMITS.userName);
  const orgId = accountOrg(state, body);
  const password = optionalPassword(body, "password");
  const disabled = optionalBoolean(body, "disabled");
  const patch = extension(body, true);
  // Extension keys given are set (null removes one); keys not given stay.
  const merged: Record<string, Scalar> = { ...account.extension };
  for (const [k, v] of Object.entries(patch ?? {})) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  checkExtensionSize(merged);

  const before = { ...account, extension: { ...account.extension } };
  if (accountName !== undefined) account.accountName = accountName;
  if (name !== undefined) account.name = name;
  if (orgId !== undefined) account.orgId = orgId;
  if (disabled !== undefined) account.disabled = disabled;
  account.extension = merged;
  return accountUpdate(state, before, account, password);
}

/** UPDATE_USER with the fixed fields and what changed between `before` and `after`, or null if nothing did. */
function accountUpdate(state: EmulatorState, before: Account, after: Account, password?: string): RecordDraft | null {
  const data: Record<string, JsonValue> = { username: after.accountName };
  let changed = before.accountName !== after.accountName || before.disabled !== after.disabled || password !== undefined;
  if (before.name !== after.name) {
    data.name = after.name;
    changed = true;
  }
  let link: RecordDraft["link"] = null;
  if (before.orgId !== after.orgId) {
    data.organizationId = null;
    link = orgLink(state, "organizationId", after.orgId);
    changed = true;
  }
  if (password !== undefined) data.password = password;
  data.disabled = after.disabled;
  for (const key of new Set([...Object.keys(before.extension), ...Object.keys(after.extension)])) {
    const was = before.extension[key];
    const is = after.extension[key];
    if (was === is) continue;
    data[key] = is === undefined ? null : is;
    changed = true;
  }
  if (!changed) return null;
  return accountDraft(after, "UPDATE_USER", data, [before.orgId, after.orgId], link);
}

export function setAccountDisabled(state: EmulatorState, account: Account, disabled: boolean): RecordDraft | null {
  const before = { ...account };
  account.disabled = disabled;
  return accountUpdate(state, before, account);
}

/** Removes the account; the event is what the application's deletion setting makes of it (or none). */
export function deleteAccount(state: EmulatorState, account: Account): RecordDraft | null {
  state.accounts = state.accounts.filter((a) => a !== account);
  switch (state.general.accountDeletion) {
    case "delete":
      return accountDraft(account, "DELETE_USER", {}, [account.orgId], null);
    case "disable":
      return accountDraft(account, "UPDATE_USER", { username: account.accountName, disabled: true }, [account.orgId], null);
    case "none":
      return null;
  }
}

// --- organizations -----------------------------------------------------------------------------------

function orgDraft(org: Organization, eventType: RecordDraft["eventType"], data: Record<string, JsonValue>, link: RecordDraft["link"]): RecordDraft {
  return { eventType, objectType: "organization", objectId: org.id, objectName: org.code, refs: [], data, link };
}

/** `parent_id`: absent → undefined, null or "" → a root, otherwise an existing organization. */
function parentOf(state: EmulatorState, body: Body): string | null | undefined {
  const parentId = optionalReference(body, "parent_id");
  if (parentId === undefined || parentId === null) return parentId;
  return findOrganization(state, parentId, "parent organization").id;
}

export function createOrganization(state: EmulatorState, body: Body, nowMs: number): { org: Organization; draft: RecordDraft } {
  const code = orgCode(body, "org_code");
  if (state.organizations.some((o) => o.code === code)) throw errors.exists(`org_code ${code}`);
  const name = requiredText(body, "name", LIMITS.orgName);
  const parentId = parentOf(state, body) ?? null;
  const org: Organization = { id: newId(nowMs), code, name, parentId, createdAt: iso(nowMs) };
  state.organizations.push(org);
  const data: Record<string, JsonValue> = { code, name };
  if (parentId !== null) data.parentId = null;
  return { org, draft: orgDraft(org, "CREATE_ORGANIZATION", data, orgLink(state, "parentId", parentId)) };
}

/** Whether `candidate` is `org` or below it. */
function isWithin(state: EmulatorState, candidate: string, org: Organization): boolean {
  for (let id: string | null = candidate, hops = 0; id !== null && hops <= state.organizations.length; hops++) {
    if (id === org.id) return true;
    id = state.organizations.find((o) => o.id === id)?.parentId ?? null;
  }
  return false;
}

function orgUpdateData(state: EmulatorState, org: Organization, extra: Record<string, JsonValue> = {}): { data: Record<string, JsonValue>; link: RecordDraft["link"] } {
  // The parent is always stated (an id, or "" for a root), so a receiver never has to guess what absence means.
  return { data: { code: org.code, name: org.name, parentId: null, ...extra }, link: orgLink(state, "parentId", org.parentId) };
}

export function modifyOrganization(state: EmulatorState, org: Organization, body: Body): RecordDraft | null {
  if (body.org_code !== undefined && body.org_code !== org.code) throw errors.invalid("org_code", "cannot be changed (OneAccess's modify takes name and parent_id)");
  const name = optionalText(body, "name", LIMITS.orgName);
  const parentId = parentOf(state, body);
  if (parentId !== undefined && parentId !== null && isWithin(state, parentId, org)) {
    throw errors.conflict("parent_id would make the organization its own ancestor");
  }
  const changed = (name !== undefined && name !== org.name) || (parentId !== undefined && parentId !== org.parentId);
  if (name !== undefined) org.name = name;
  if (parentId !== undefined) org.parentId = parentId;
  if (!changed) return null;
  const { data, link } = orgUpdateData(state, org);
  return orgDraft(org, "UPDATE_ORGANIZATION", data, link);
}

export function deleteOrganization(state: EmulatorState, org: Organization): RecordDraft | null {
  const children = state.organizations.filter((o) => o.parentId === org.id).length;
  const accounts = state.accounts.filter((a) => a.orgId === org.id).length;
  if (children > 0 || accounts > 0) {
    throw errors.conflict(`organization ${org.code} still has ${children} child organization(s) and ${accounts} account(s)`);
  }
  state.organizations = state.organizations.filter((o) => o !== org);
  switch (state.general.organizationDeletion) {
    case "delete":
      return orgDraft(org, "DELETE_ORGANIZATION", {}, null);
    case "disable": {
      // The contract has no disabled attribute for organizations: the receiver keeps it as an extension attribute.
      const { data, link } = orgUpdateData(state, org, { disabled: true });
      return orgDraft(org, "UPDATE_ORGANIZATION", data, link);
    }
    case "none":
      return null;
  }
}
