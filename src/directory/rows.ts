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

export function isoTime(ms: number | null): string | null {
  if (ms === null || !Number.isFinite(ms)) return null;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

export function apiUser(r: UserRow): ApiUser {
  return {
    id: r.id,
    username: r.username,
    name: r.name,
    organization_id: r.organization_id,
    organization_missing: r.organization_missing === 1,
    disabled: r.disabled === 1,
    first_name: r.first_name,
    middle_name: r.middle_name,
    last_name: r.last_name,
    mobile: r.mobile,
    email: r.email,
    extensions: extensionsOf(r.extensions),
    last_event_at: isoTime(r.event_ts),
    created_at: isoTime(r.created_at),
    updated_at: isoTime(r.updated_at),
    deleted_at: isoTime(r.deleted_at),
  };
}

export function apiOrganization(r: OrgRow): ApiOrganization {
  return {
    id: r.id,
    code: r.code,
    name: r.name,
    parent_id: r.parent_id,
    parent_missing: r.parent_missing === 1,
    extensions: extensionsOf(r.extensions),
    last_event_at: isoTime(r.event_ts),
    created_at: isoTime(r.created_at),
    updated_at: isoTime(r.updated_at),
    deleted_at: isoTime(r.deleted_at),
  };
}
