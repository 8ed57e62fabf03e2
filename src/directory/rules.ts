// The directory's rules (contract section 6) as pure functions: given an event and what the directory held
// when it was read, decide the reply and the one write the event makes. No SQL here: writer.ts turns a
// decision into statements, apply.ts reads, decides and writes.
import { LIMITS, type Extensions, type JsonValue, type OrganizationChanges, type OrganizationFields, type UserAttributes } from "../protocol/events";

export interface OrgRecord {
  id: string;
  code: string;
  name: string;
  parentId: string | null;
  extensions: Extensions;
  /** Timestamp (ms) of the last event applied: last event wins. */
  eventTs: number;
  deletedAt: number | null;
}

export interface UserRecord {
  id: string;
  username: string;
  name: string;
  organizationId: string | null;
  disabled: boolean;
  firstName: string | null;
  middleName: string | null;
  lastName: string | null;
  mobile: string | null;
  email: string | null;
  extensions: Extensions;
  eventTs: number;
  deletedAt: number | null;
}

/** A code or username given up by a rename (see released_keys in the migration). */
export interface ReleasedKey {
  entityId: string;
  /** Timestamp (ms) of the rename. */
  releasedTs: number;
}

export interface ApplyOutcome {
  code: "200" | "400" | "404";
  message: string;
  /** Reply `data` before sealing: `{"id":"..."}` or "". */
  replyData: string;
  entityId: string | null;
}

/** The one change an event makes to its entity (its audit row aside). */
export type Write<R> =
  | { kind: "insert"; record: R }
  /**
   * `previous`: the row as it was read (the write sets only what differs). `revives`: the row was a
   * tombstone and becomes live again under the same id. `releasedKey`: the code or username a rename gave up.
   */
  | { kind: "update"; record: R; previous: R; revives: boolean; releasedKey: string | null }
  | { kind: "tombstone"; id: string; eventTs: number }
  /** A newer delete of a tombstone: only its event time moves, so an older create cannot revive it. */
  | { kind: "retime"; id: string; eventTs: number };

export interface Decision<R> {
  outcome: ApplyOutcome;
  write: Write<R> | null;
}

export const MESSAGES = {
  applied: "success",
  /** 200 without a change: an event older than (or as old as) the one already applied. */
  stale: "already applied",
  alreadyDeleted: "already deleted",
  nothingToDelete: "nothing to delete",
  orgNotFound: "organization not found",
  userNotFound: "user not found",
  cycle: "parentId would create a cycle",
  codeTaken: "code is already used by another organization",
  usernameTaken: "username is already used by another user",
} as const;

// --- outcomes --------------------------------------------------------------------------------------

function withId(id: string, message: string = MESSAGES.applied): ApplyOutcome {
  return { code: "200", message, replyData: JSON.stringify({ id }), entityId: id };
}

function withoutData(id: string, message: string = MESSAGES.applied): ApplyOutcome {
  return { code: "200", message, replyData: "", entityId: id };
}

function refused(code: "400" | "404", message: string, id: string): Decision<never> {
  return { outcome: { code, message, replyData: "", entityId: id }, write: null };
}

function unchanged(outcome: ApplyOutcome): Decision<never> {
  return { outcome, write: null };
}

// --- small rules -----------------------------------------------------------------------------------

/**
 * Last event wins: an event older than the last one applied to the entity changes nothing. An equal
 * timestamp is applied: with 10-digit (second) timestamps a create and its update often share one, and
 * dropping the update would lose it. Exact duplicates never get here (the event ledger answers them).
 */
export function isStale(current: { eventTs: number }, eventTs: number): boolean {
  return eventTs < current.eventTs;
}

/**
 * An event with the same timestamp as the last one applied, which would leave the entity exactly as it is
 * (a full sync resent, a retry under a new nonce): acknowledged without a write, so nothing changes.
 */
function resentUnchanged<R extends { eventTs: number; deletedAt: number | null }>(existing: R | null, record: R): boolean {
  if (existing === null || existing.eventTs !== record.eventTs || existing.deletedAt !== null) return false;
  // Only the fields the event decides: a read row also carries bookkeeping (created/updated times, flags).
  const stored = existing as Record<string, unknown>;
  return Object.entries(record).every(([key, value]) => canonical(stored[key]) === canonical(value));
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** A create of a key sent before the entity holding it was renamed: about that entity, and too old. */
function predatesRename(released: ReleasedKey | null, eventTs: number): released is ReleasedKey {
  return released !== null && eventTs < released.releasedTs;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

export function deleteRefusalMessage(children: number, members: number): string {
  return `organization has ${plural(children, "child organization")} and ${plural(members, "member")}`;
}

/** Keys sorted, so the stored JSON of equal objects is equal text. */
function sortedObject(entries: Array<[string, JsonValue]>): Extensions {
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A create states the whole record: a null extension value only means "no value". */
export function extensionsForCreate(incoming: Extensions): Extensions {
  return sortedObject(Object.entries(incoming).filter(([, v]) => v !== null));
}

/** An update names only what changed: keys are merged, a null value removes the key. */
export function mergeExtensions(stored: Extensions, patch: Extensions): Extensions {
  const merged = new Map(Object.entries(stored));
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) merged.delete(name);
    else merged.set(name, value);
  }
  return sortedObject([...merged]);
}

/** events.ts bounds one event's extensions; merging can grow them past the same bounds. */
export function extensionLimitProblem(extensions: Extensions): string | null {
  if (Object.keys(extensions).length > LIMITS.extensionCount) return `more than ${LIMITS.extensionCount} extension attributes`;
  if (new TextEncoder().encode(JSON.stringify(extensions)).length > LIMITS.extensionBytes) {
    return `extension attributes exceed ${LIMITS.extensionBytes} bytes`;
  }
  return null;
}

/** Absent (undefined) keeps the stored value, null clears it, anything else replaces it. */
function changed<T>(incoming: T | undefined, stored: T): T {
  return incoming === undefined ? stored : incoming;
}

/**
 * Whether giving an existing organization this parent adds an edge that could close a cycle, so the new
 * parent's ancestors must be read. (A new organization has a fresh id nothing points to; an unchanged
 * parent adds no edge; being its own parent is refused without a read.)
 */
export function needsCycleCheck(existing: OrgRecord, parentId: string): boolean {
  return parentId !== existing.id && parentId !== existing.parentId;
}

/**
 * A delete of a tombstone changes nothing visible, but a newer one moves the tombstone's event time: the
 * newest event about the entity is this delete, and a create older than it must not revive the entity.
 */
function deletedAgain<R>(id: string, existing: { eventTs: number }, eventTs: number): Decision<R> {
  const outcome = withoutData(id, MESSAGES.alreadyDeleted);
  return eventTs > existing.eventTs ? { outcome, write: { kind: "retime", id, eventTs } } : unchanged(outcome);
}

// --- organizations ---------------------------------------------------------------------------------

export function decideCreateOrganization(
  org: OrganizationFields,
  facts: { existing: OrgRecord | null; released: ReleasedKey | null; parentIsDescendant: boolean },
  eventTs: number,
  freshId: string,
): Decision<OrgRecord> {
  const { existing, released, parentIsDescendant } = facts;
  if (predatesRename(released, eventTs)) return unchanged(withId(released.entityId, MESSAGES.stale));
  if (existing && isStale(existing, eventTs)) return unchanged(withId(existing.id, MESSAGES.stale));
  const id = existing?.id ?? freshId;
  if (org.parentId === id || parentIsDescendant) return refused("400", MESSAGES.cycle, id);
  const record: OrgRecord = {
    id,
    code: org.code,
    name: org.name,
    parentId: org.parentId,
    extensions: extensionsForCreate(org.extensions),
    eventTs,
    deletedAt: null,
  };
  if (resentUnchanged(existing, record)) return unchanged(withId(id, MESSAGES.stale));
  const write: Write<OrgRecord> = existing
    ? { kind: "update", record, previous: existing, revives: existing.deletedAt !== null, releasedKey: null }
    : { kind: "insert", record };
  return { outcome: withId(id), write };
}

export function decideUpdateOrganization(
  id: string,
  org: OrganizationChanges,
  facts: { existing: OrgRecord | null; codeHolder: string | null; parentIsDescendant: boolean },
  eventTs: number,
): Decision<OrgRecord> {
  const { existing } = facts;
  if (!existing) return refused("404", MESSAGES.orgNotFound, id);
  if (isStale(existing, eventTs)) return unchanged(withId(id, MESSAGES.stale));
  if (existing.deletedAt !== null) return refused("404", MESSAGES.orgNotFound, id);
  // An absent parentId (undefined) leaves the parent unchanged; null or "" moves the organization to the root.
  const parentId = changed(org.parentId, existing.parentId);
  if (parentId === id || facts.parentIsDescendant) return refused("400", MESSAGES.cycle, id);
  if (facts.codeHolder !== null && facts.codeHolder !== id) return refused("400", MESSAGES.codeTaken, id);
  const extensions = mergeExtensions(existing.extensions, org.extensions);
  const tooBig = extensionLimitProblem(extensions);
  if (tooBig) return refused("400", tooBig, id);
  const record: OrgRecord = { ...existing, code: org.code, name: org.name, parentId, extensions, eventTs };
  if (resentUnchanged(existing, record)) return unchanged(withId(id, MESSAGES.stale));
  const releasedKey = existing.code !== org.code ? existing.code : null;
  return { outcome: withId(id), write: { kind: "update", record, previous: existing, revives: false, releasedKey } };
}

export function decideDeleteOrganization(
  id: string,
  facts: { existing: OrgRecord | null; liveChildren: number; liveMembers: number },
  eventTs: number,
): Decision<OrgRecord> {
  const { existing } = facts;
  if (!existing) return unchanged(withoutData(id, MESSAGES.nothingToDelete));
  if (existing.deletedAt !== null) return deletedAgain(id, existing, eventTs);
  if (isStale(existing, eventTs)) return unchanged(withoutData(id, MESSAGES.stale));
  if (facts.liveChildren > 0 || facts.liveMembers > 0) {
    return refused("400", deleteRefusalMessage(facts.liveChildren, facts.liveMembers), id);
  }
  return { outcome: withoutData(id), write: { kind: "tombstone", id, eventTs } };
}

// --- users -----------------------------------------------------------------------------------------

export function decideCreateUser(
  username: string,
  user: UserAttributes & { name: string },
  facts: { existing: UserRecord | null; released: ReleasedKey | null; hashesPassword: boolean },
  eventTs: number,
  freshId: string,
): Decision<UserRecord> {
  const { existing, released } = facts;
  if (predatesRename(released, eventTs)) return unchanged(withId(released.entityId, MESSAGES.stale));
  if (existing && isStale(existing, eventTs)) return unchanged(withId(existing.id, MESSAGES.stale));
  const id = existing?.id ?? freshId;
  // The create carries the whole user: what it leaves out has no value (a revived user starts afresh),
  // except `disabled`, which fails closed: a resent create that does not say must never re-enable anyone.
  const record: UserRecord = {
    id,
    username,
    name: user.name,
    organizationId: user.organizationId ?? null,
    disabled: user.disabled ?? existing?.disabled ?? false,
    firstName: user.firstName ?? null,
    middleName: user.middleName ?? null,
    lastName: user.lastName ?? null,
    mobile: user.mobile ?? null,
    email: user.email ?? null,
    extensions: extensionsForCreate(user.extensions),
    eventTs,
    deletedAt: null,
  };
  // A password to hash (pbkdf2) always writes; under the drop policy a password changes nothing stored.
  if (!facts.hashesPassword && resentUnchanged(existing, record)) return unchanged(withId(id, MESSAGES.stale));
  const write: Write<UserRecord> = existing
    ? { kind: "update", record, previous: existing, revives: existing.deletedAt !== null, releasedKey: null }
    : { kind: "insert", record };
  return { outcome: withId(id), write };
}

export function decideUpdateUser(
  id: string,
  username: string,
  user: UserAttributes,
  facts: { existing: UserRecord | null; usernameHolder: string | null; hashesPassword: boolean },
  eventTs: number,
): Decision<UserRecord> {
  const { existing } = facts;
  if (!existing) return refused("404", MESSAGES.userNotFound, id);
  if (isStale(existing, eventTs)) return unchanged(withId(id, MESSAGES.stale));
  if (existing.deletedAt !== null) return refused("404", MESSAGES.userNotFound, id);
  if (facts.usernameHolder !== null && facts.usernameHolder !== id) return refused("400", MESSAGES.usernameTaken, id);
  const extensions = mergeExtensions(existing.extensions, user.extensions);
  const tooBig = extensionLimitProblem(extensions);
  if (tooBig) return refused("400", tooBig, id);
  const record: UserRecord = {
    ...existing,
    username,
    name: changed(user.name, existing.name),
    organizationId: changed(user.organizationId, existing.organizationId),
    disabled: changed(user.disabled, existing.disabled),
    firstName: changed(user.firstName, existing.firstName),
    middleName: changed(user.middleName, existing.middleName),
    lastName: changed(user.lastName, existing.lastName),
    mobile: changed(user.mobile, existing.mobile),
    email: changed(user.email, existing.email),
    extensions,
    eventTs,
  };
  if (!facts.hashesPassword && resentUnchanged(existing, record)) return unchanged(withId(id, MESSAGES.stale));
  const releasedKey = existing.username !== username ? existing.username : null;
  return { outcome: withId(id), write: { kind: "update", record, previous: existing, revives: false, releasedKey } };
}

export function decideDeleteUser(id: string, existing: UserRecord | null, eventTs: number): Decision<UserRecord> {
  if (!existing) return unchanged(withoutData(id, MESSAGES.nothingToDelete));
  if (existing.deletedAt !== null) return deletedAgain(id, existing, eventTs);
  if (isStale(existing, eventTs)) return unchanged(withoutData(id, MESSAGES.stale));
  return { outcome: withoutData(id), write: { kind: "tombstone", id, eventTs } };
}
