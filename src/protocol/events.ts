// Section 4: the decrypted payload of each event, checked against the shape of the event it claims to be.
// With sha1 the eventType is not signed, so this check is what stops an UPDATE being replayed as a DELETE.
import type { EventType } from "./envelope";
import { badRequest, ok, type Result } from "./failures";

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Extensions = Record<string, JsonValue>;

export interface OrganizationFields {
  code: string;
  name: string;
  /** `null`: a root organization (absent or empty in the payload). */
  parentId: string | null;
  extensions: Extensions;
}

/** An update's fields: an absent `parentId` is `undefined` ("unchanged"), since updates carry only changes. */
export type OrganizationChanges = Omit<OrganizationFields, "parentId"> & { parentId: string | null | undefined };

/** Optional user attributes: absent keys are "unchanged", `null` clears. */
export interface UserAttributes {
  name?: string;
  organizationId?: string | null;
  disabled?: boolean;
  firstName?: string | null;
  middleName?: string | null;
  lastName?: string | null;
  mobile?: string | null;
  email?: string | null;
  /** Present only so the directory can drop or hash it; never stored or logged as is. */
  password?: string;
  extensions: Extensions;
}

export type DirectoryEvent =
  | { type: "CREATE_ORGANIZATION"; org: OrganizationFields }
  | { type: "UPDATE_ORGANIZATION"; id: string; org: OrganizationChanges }
  | { type: "DELETE_ORGANIZATION"; id: string }
  | { type: "CREATE_USER"; username: string; user: UserAttributes & { name: string } }
  | { type: "UPDATE_USER"; id: string; username: string; user: UserAttributes }
  | { type: "DELETE_USER"; id: string };

export type CallbackEvent = { type: "CHECK_URL"; echo: string } | DirectoryEvent;

export const LIMITS = {
  id: 64,
  code: 100,
  orgName: 40,
  username: 100,
  userName: 40,
  namePart: 20,
  mobile: 32,
  email: 254,
  extensionName: 64,
  extensionCount: 64,
  extensionBytes: 8192,
  /** Arrays and objects inside one extension value; deeper would overflow the stack of JSON.stringify. */
  extensionDepth: 32,
} as const;

const USER_FIELDS = new Set([
  "id",
  "username",
  "name",
  "organizationId",
  "password",
  "disabled",
  "firstName",
  "middleName",
  "lastName",
  "mobile",
  "email",
]);
const ORG_FIELDS = new Set(["id", "code", "name", "parentId"]);
const EXTENSION_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const FORBIDDEN_NAMES = new Set(["__proto__", "constructor", "prototype"]);

type Obj = Record<string, unknown>;

function requiredString(o: Obj, field: string, max: number): Result<string> {
  const v = o[field];
  if (v === undefined || v === null || v === "") return badRequest(`${field} is required`);
  if (typeof v !== "string") return badRequest(`${field} must be a string`);
  return [...v].length > max ? badRequest(`${field} exceeds ${max} characters`) : ok(v);
}

/** Absent → undefined (unchanged); null or "" → null (cleared); otherwise a bounded string. */
function optionalString(o: Obj, field: string, max: number): Result<string | null | undefined> {
  if (!Object.hasOwn(o, field)) return ok(undefined);
  const v = o[field];
  if (v === null || v === "") return ok(null);
  if (typeof v !== "string") return badRequest(`${field} must be a string`);
  return [...v].length > max ? badRequest(`${field} exceeds ${max} characters`) : ok(v);
}

function optionalBoolean(o: Obj, field: string): Result<boolean | undefined> {
  if (!Object.hasOwn(o, field)) return ok(undefined);
  const v = o[field];
  // Some tenants send booleans as strings.
  if (v === true || v === "true") return ok(true);
  if (v === false || v === "false") return ok(false);
  return badRequest(`${field} must be a boolean`);
}

function extensionsOf(o: Obj, known: Set<string>): Result<Extensions> {
  const ext: Extensions = Object.create(null) as Extensions;
  let count = 0;
  for (const [name, value] of Object.entries(o)) {
    if (known.has(name)) continue;
    if (FORBIDDEN_NAMES.has(name) || !EXTENSION_NAME.test(name) || name.length > LIMITS.extensionName) {
      return badRequest("extension attribute name is invalid");
    }
    if (++count > LIMITS.extensionCount) return badRequest(`more than ${LIMITS.extensionCount} extension attributes`);
    if (!withinDepth(value, LIMITS.extensionDepth)) return badRequest(`extension attribute nested deeper than ${LIMITS.extensionDepth} levels`);
    ext[name] = value as JsonValue;
  }
  if (count > 0 && new TextEncoder().encode(JSON.stringify(ext)).length > LIMITS.extensionBytes) {
    return badRequest(`extension attributes exceed ${LIMITS.extensionBytes} bytes`);
  }
  return ok(ext);
}

/** Whether `value` nests arrays and objects at most `max` deep; iterative, so any depth is measured safely. */
function withinDepth(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= max) return false;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return true;
}

function parseObject(text: string): Result<Obj> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return badRequest("data is not a JSON object");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return badRequest("data is not a JSON object");
  return ok(v as Obj);
}

function organizationFields(o: Obj): Result<OrganizationChanges> {
  if (Object.hasOwn(o, "username")) return badRequest("data does not match eventType");
  const code = requiredString(o, "code", LIMITS.code);
  if (!code.ok) return code;
  const name = requiredString(o, "name", LIMITS.orgName);
  if (!name.ok) return name;
  const parentId = optionalString(o, "parentId", LIMITS.id);
  if (!parentId.ok) return parentId;
  const extensions = extensionsOf(o, ORG_FIELDS);
  if (!extensions.ok) return extensions;
  return ok({ code: code.value, name: name.value, parentId: parentId.value, extensions: extensions.value });
}

function userAttributes(o: Obj): Result<UserAttributes> {
  if (Object.hasOwn(o, "code") || Object.hasOwn(o, "parentId")) return badRequest("data does not match eventType");
  const attrs: UserAttributes = { extensions: {} };
  const name = optionalString(o, "name", LIMITS.userName);
  if (!name.ok) return name;
  if (name.value === null) return badRequest("name is required");
  if (name.value !== undefined) attrs.name = name.value;
  const strings = [
    ["organizationId", LIMITS.id],
    ["firstName", LIMITS.namePart],
    ["middleName", LIMITS.namePart],
    ["lastName", LIMITS.namePart],
    ["mobile", LIMITS.mobile],
    ["email", LIMITS.email],
  ] as const;
  for (const [field, max] of strings) {
    const v = optionalString(o, field, max);
    if (!v.ok) return v;
    if (v.value !== undefined) attrs[field] = v.value;
  }
  const disabled = optionalBoolean(o, "disabled");
  if (!disabled.ok) return disabled;
  if (disabled.value !== undefined) attrs.disabled = disabled.value;
  if (Object.hasOwn(o, "password")) {
    const p = o.password;
    if (p !== null && typeof p !== "string") return badRequest("password must be a string");
    if (typeof p === "string" && p !== "") attrs.password = p;
  }
  const extensions = extensionsOf(o, USER_FIELDS);
  if (!extensions.ok) return extensions;
  attrs.extensions = extensions.value;
  return ok(attrs);
}

/**
 * The `id` of an update or delete: ours, so it carries its entity's prefix. With sha1 the eventType is not
 * signed; the prefix is what keeps a user's delete from also being a valid organization delete.
 */
function entityId(o: Obj, prefix: "usr_" | "org_"): Result<string> {
  const id = requiredString(o, "id", LIMITS.id);
  if (!id.ok) return id;
  return id.value.startsWith(prefix) ? id : badRequest(`id must start with ${prefix}`);
}

function onlyId(o: Obj, prefix: "usr_" | "org_"): Result<string> {
  const keys = Object.keys(o);
  if (keys.length !== 1 || keys[0] !== "id") return badRequest("data does not match eventType");
  return entityId(o, prefix);
}

/** Whether `text` is a JSON object: never a CHECK_URL's random string, always every other event's data. */
function isJsonObjectText(text: string): boolean {
  if (!text.trimStart().startsWith("{")) return false;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/**
 * Turns the opened message into a typed event, or a 400 naming the offending field. Every message is valid
 * for at most one event type (a CHECK_URL is never a JSON object, creates carry no id, updates and deletes
 * carry an id with their entity's prefix), so a relabelled copy of a signed request is refused here.
 */
export function parseEvent(type: EventType, message: string): Result<CallbackEvent> {
  if (type === "CHECK_URL") {
    if (message.length === 0) return badRequest("data is required");
    return isJsonObjectText(message) ? badRequest("data does not match eventType") : ok({ type, echo: message });
  }
  const parsed = parseObject(message);
  if (!parsed.ok) return parsed;
  const o = parsed.value;
  const hasId = Object.hasOwn(o, "id");
  switch (type) {
    case "DELETE_ORGANIZATION":
    case "DELETE_USER": {
      const id = onlyId(o, type === "DELETE_USER" ? "usr_" : "org_");
      return id.ok ? ok({ type, id: id.value }) : id;
    }
    case "CREATE_ORGANIZATION": {
      if (hasId) return badRequest("data does not match eventType");
      const org = organizationFields(o);
      return org.ok ? ok({ type, org: { ...org.value, parentId: org.value.parentId ?? null } }) : org;
    }
    case "UPDATE_ORGANIZATION": {
      const id = entityId(o, "org_");
      if (!id.ok) return id;
      const org = organizationFields(o);
      return org.ok ? ok({ type, id: id.value, org: org.value }) : org;
    }
    case "CREATE_USER": {
      if (hasId) return badRequest("data does not match eventType");
      const username = requiredString(o, "username", LIMITS.username);
      if (!username.ok) return username;
      const user = userAttributes(o);
      if (!user.ok) return user;
      if (user.value.name === undefined) return badRequest("name is required");
      return ok({ type, username: username.value, user: { ...user.value, name: user.value.name } });
    }
    case "UPDATE_USER": {
      const id = entityId(o, "usr_");
      if (!id.ok) return id;
      const username = requiredString(o, "username", LIMITS.username);
      if (!username.ok) return username;
      const user = userAttributes(o);
      return user.ok ? ok({ type, id: id.value, username: username.value, user: user.value }) : user;
    }
    default: {
      const unreachable: never = type;
      return badRequest(`unknown eventType ${String(unreachable)}`);
    }
  }
}
