// The emulator's whole state: one OneAccess application (its accounts and organizations), the tenant users
// accounts belong to, the ids the receiver returned, the sync records, access tokens and settings. Plain
// JSON, so a store can keep it anywhere (a file for the Node runner, memory for the tests).
import type { SimProfile } from "../../sim/core/profile";

export const STATE_VERSION = 1;

/** What a deletion in OneAccess becomes downstream ("general configuration" of the application's sync). */
export type DeletionMode = "delete" | "disable" | "none";
export const DELETION_MODES: readonly DeletionMode[] = ["delete", "disable", "none"];

export interface SyncSettings {
  /** The application's callback URL (the receiver's `/callback`). */
  callbackUrl: string;
  /** Security token, signature and encryption, as the simulator describes them. */
  profile: SimProfile;
}

export interface GeneralSettings {
  accountDeletion: DeletionMode;
  organizationDeletion: DeletionMode;
}

export type Scalar = string | number | boolean;

/** A tenant user: the person an application account belongs to. */
export interface TenantUser {
  id: string;
  userName: string;
  name: string;
  mobile: string | null;
  email: string | null;
  createdAt: string;
}

/** An application organization. */
export interface Organization {
  id: string;
  code: string;
  name: string;
  parentId: string | null;
  createdAt: string;
}

/** An application account (BASIC_ACCOUNT). Its password is never kept here, only in a pending event. */
export interface Account {
  id: string;
  userId: string;
  accountName: string;
  name: string;
  orgId: string | null;
  disabled: boolean;
  extension: Record<string, Scalar>;
  createdAt: string;
}

export type SyncStatus = "success" | "failed" | "waiting";

export type DirectoryEventType =
  | "CREATE_ORGANIZATION"
  | "UPDATE_ORGANIZATION"
  | "DELETE_ORGANIZATION"
  | "CREATE_USER"
  | "UPDATE_USER"
  | "DELETE_USER";

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * The organization an event names (`organizationId` of a user event, `parentId` of an organization event).
 * Resolved to the receiver's id when the event is sent, since that id may not be known yet when the change
 * is made (its create is still waiting or failed). `orgId` null: none (a root, or an account without one).
 */
export interface OrgLink {
  field: "organizationId" | "parentId";
  orgId: string | null;
  orgCode: string | null;
}

/** One event OneAccess sends, and what became of it. */
export interface SyncRecord {
  id: number;
  eventType: DirectoryEventType;
  objectType: "account" | "organization";
  /** The emulator's id of the account or organization. */
  objectId: string;
  /** account_name or org_code when the change was made. */
  objectName: string;
  /** Organizations (emulator ids) an account event names: its organization before and after the change. */
  refs: string[];
  /** The event's data without `id` and without the link's value (both filled in when sent). */
  data: Record<string, JsonValue>;
  link: OrgLink | null;
  status: SyncStatus;
  /** A failure that holds back later events it could affect (no answer, 401, 5xx); 400 and 404 do not. */
  holds: boolean;
  /** The reply's code of the last attempt (`network` when nothing answered), null before any attempt. */
  code: string | null;
  message: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
}

export interface AccessToken {
  token: string;
  expiresAt: number;
}

export interface EmulatorState {
  version: typeof STATE_VERSION;
  users: TenantUser[];
  organizations: Organization[];
  accounts: Account[];
  /** Emulator id → the id the receiver returned for it (kept after a deletion, for the events still to send). */
  downstreamIds: Record<string, string>;
  records: SyncRecord[];
  nextRecordId: number;
  tokens: AccessToken[];
  general: GeneralSettings;
  /** null until configured (the Node runner configures it from .dev.vars at start). */
  settings: SyncSettings | null;
}

export function emptyState(): EmulatorState {
  return {
    version: STATE_VERSION,
    users: [],
    organizations: [],
    accounts: [],
    downstreamIds: {},
    records: [],
    nextRecordId: 1,
    tokens: [],
    general: { accountDeletion: "delete", organizationDeletion: "delete" },
    settings: null,
  };
}

/** Checks a loaded state is one this version understands (a file from a later version is refused, not guessed at). */
export function checkState(value: unknown): EmulatorState {
  const s = value as Partial<EmulatorState> | null;
  if (!s || typeof s !== "object" || s.version !== STATE_VERSION || !Array.isArray(s.records) || !Array.isArray(s.accounts)) {
    throw new Error(`emulator state is not version ${STATE_VERSION} state; move the file away to start afresh`);
  }
  return s as EmulatorState;
}

function two(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function randomHex(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(length / 2)));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, length).toUpperCase();
}

/** An id shaped like OneAccess's (`20210515151018087-2F92-6DBCA6...`): UTC time to the millisecond, then random hex. */
export function newId(nowMs: number): string {
  const d = new Date(nowMs);
  const time =
    `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}` +
    `${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}${two(d.getUTCMilliseconds(), 3)}`;
  return `${time}-${randomHex(4)}-${randomHex(9)}`;
}
