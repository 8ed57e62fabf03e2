// The directory's row shapes, defined once: the columns every read selects, and the two ways a row is seen,
// as a record the rules decide on (camelCase) and as the read API shows it (snake_case, ISO times). The
// writer, the reader, the read API, the operator page and the change log all use these.
import type { Extensions } from "../protocol/events";
import type { OrgRecord, UserRecord } from "./rules";

/** An `organizations` row as selected. */
export interface OrgRow {
  id: string;
  code: string;
  name: string;
  parent_id: string | null;
  parent_missing: number;
  extensions: string;
  event_ts: number;
  version: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

/** A `users` row as selected: the column list never names `password_hash`, so no read can return it. */
export interface UserRow {
  id: string;
  username: string;
  name: string;
  organization_id: string | null;
  organization_missing: number;
  disabled: number;
  first_name: string | null;
  middle_name: string | null;
  last_name: string | null;
  mobile: string | null;
  email: string | null;
  extensions: string;
  event_ts: number;
  version: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

export const ORG_COLUMNS = "id, code, name, parent_id, parent_missing, extensions, event_ts, version, created_at, updated_at, deleted_at";
export const USER_COLUMNS =
  "id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name, " +
  "mobile, email, extensions, event_ts, version, created_at, updated_at, deleted_at";

/** The `extensions` column: a JSON object we wrote; anything else reads as no extensions. */
export function extensionsOf(text: string): Extensions {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Extensions) : {};
  } catch {
    return {};
  }
}

// --- as the rules see a row --------------------------------------------------------------------------

export function orgRecord(row: OrgRow): OrgRecord {
  return {
    id: row.id,
    code: row.code,
    name: row.name,
    parentId: row.parent_id,
    extensions: extensionsOf(row.extensions),
    eventTs: row.event_ts,
    deletedAt: row.deleted_at,
  };
}

export function userRecord(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    name: row.name,
    organizationId: row.organization_id,
    disabled: row.disabled === 1,
    firstName: row.first_name,
    middleName: row.middle_name,
    lastName: row.last_name,
    mobile: row.mobile,
    email: row.email,
    extensions: extensionsOf(row.extensions),
    eventTs: row.event_ts,
    deletedAt: row.deleted_at,
  };
}

// --- as the read API shows a row ---------------------------------------------------------------------
//
// One list of fields per entity says how each column is shown (its API name and kind); the TypeScript
// mapping (`apiUser`, `apiOrganization`) and the SQL that writes the same JSON into the change log
// (`apiJsonSql`) are both made from it, so the two cannot drift.

export interface ApiUser {
  id: string;
  username: string;
  name: string;
  organization_id: string | null;
  /** The organization id names no live organization (not known yet, or deleted). */
  organization_missing: boolean;
  disabled: boolean;
  first_name: string | null;
  middle_name: string | null;
  last_name: string | null;
  mobile: string | null;
  email: string | null;
  extensions: Extensions;
  /** The OneAccess timestamp of the last event applied to this user. */
  last_event_at: string | null;
  created_at: string | null;
  updated_at: string | null;
  deleted_at: string | null;
}

export interface ApiOrganization {
  id: string;
  code: string;
  name: string;
  parent_id: string | null;
  parent_missing: boolean;
  extensions: Extensions;
  last_event_at: string | null;
  created_at: string | null;
  updated_at: string | null;
  deleted_at: string | null;
}

/** How a column is shown: as it is, as a boolean (0/1), as an ISO 8601 UTC time (Unix ms), or as JSON. */
type Kind = "text" | "bool" | "time" | "json";
type Field = readonly [api: string, column: string, kind: Kind];

const USER_FIELDS: readonly Field[] = [
  ["id", "id", "text"],
  ["username", "username", "text"],
  ["name", "name", "text"],
  ["organization_id", "organization_id", "text"],
  ["organization_missing", "organization_missing", "bool"],
  ["disabled", "disabled", "bool"],
  ["first_name", "first_name", "text"],
  ["middle_name", "middle_name", "text"],
  ["last_name", "last_name", "text"],
  ["mobile", "mobile", "text"],
  ["email", "email", "text"],
  ["extensions", "extensions", "json"],
  ["last_event_at", "event_ts", "time"],
  ["created_at", "created_at", "time"],
  ["updated_at", "updated_at", "time"],
  ["deleted_at", "deleted_at", "time"],
];

const ORG_FIELDS: readonly Field[] = [
  ["id", "id", "text"],
  ["code", "code", "text"],
  ["name", "name", "text"],
  ["parent_id", "parent_id", "text"],
  ["parent_missing", "parent_missing", "bool"],
  ["extensions", "extensions", "json"],
  ["last_event_at", "event_ts", "time"],
  ["created_at", "created_at", "time"],
  ["updated_at", "updated_at", "time"],
  ["deleted_at", "deleted_at", "time"],
];

export function isoTime(ms: number | null): string | null {
  if (ms === null || !Number.isFinite(ms)) return null;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function shown(fields: readonly Field[], row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [api, column, kind] of fields) {
    const v = row[column];
    out[api] = kind === "bool" ? v === 1 : kind === "time" ? isoTime(v as number | null) : kind === "json" ? extensionsOf(v as string) : v;
  }
  return out;
}

export function apiUser(row: UserRow): ApiUser {
  return shown(USER_FIELDS, row as unknown as Record<string, unknown>) as unknown as ApiUser;
}

export function apiOrganization(row: OrgRow): ApiOrganization {
  return shown(ORG_FIELDS, row as unknown as Record<string, unknown>) as unknown as ApiOrganization;
}

/** A SQL expression for the row `alias` of `table` as the read API shows it: the same JSON as apiUser / apiOrganization. */
export function apiJsonSql(table: "users" | "organizations", alias: string): string {
  const fields = table === "users" ? USER_FIELDS : ORG_FIELDS;
  const value = ([, column, kind]: Field) => {
    const c = `${alias}.${column}`;
    switch (kind) {
      case "text":
        return c;
      case "bool":
        return `json(CASE WHEN ${c} = 1 THEN 'true' ELSE 'false' END)`;
      case "time":
        return `strftime('%Y-%m-%dT%H:%M:%fZ', ${c} / 1000.0, 'unixepoch')`;
      case "json":
        return `json(${c})`;
    }
  };
  return `json_object(${fields.map((f) => `'${f[0]}', ${value(f)}`).join(", ")})`;
}

/** The API name of each record field a change can touch, for a change record's `changed` list. */
export const USER_API_NAMES: Readonly<Record<string, string>> = {
  username: "username",
  name: "name",
  organizationId: "organization_id",
  disabled: "disabled",
  firstName: "first_name",
  middleName: "middle_name",
  lastName: "last_name",
  mobile: "mobile",
  email: "email",
  extensions: "extensions",
};

export const ORG_API_NAMES: Readonly<Record<string, string>> = {
  code: "code",
  name: "name",
  parentId: "parent_id",
  extensions: "extensions",
};
