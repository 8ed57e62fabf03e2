// The directory's SQL: reading what an event's decision depends on, and turning a decision into the
// statements of its batch. Column and table names are fixed here; everything from a payload is a bound
// value (extension names included: they live inside a JSON text, never in SQL).
import type { Extensions } from "../protocol/events";
import type { DeliveryRecord } from "./apply-event";
import type { OrgRecord, ReleasedKey, UserRecord, Write } from "./rules";

type BindValue = string | number | null;

/** What the directory's event code uses of a D1 binding (group-commit.ts shares `batch` between events). */
export type DirectoryDb = Pick<D1Database, "prepare" | "batch">;

/** The text the migration's `snapshot_checks` trigger aborts with. */
export const SNAPSHOT_CHANGED = "directory snapshot changed";

export function isSnapshotChanged(error: unknown): boolean {
  return error instanceof Error && error.message.includes(SNAPSHOT_CHANGED);
}

// --- rows ------------------------------------------------------------------------------------------

export interface OrganizationView extends OrgRecord {
  /** The parent id names no live organization (unknown yet, or deleted). */
  parentMissing: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface UserView extends UserRecord {
  /** The organization id names no live organization (unknown yet, or deleted). */
  organizationMissing: boolean;
  createdAt: number;
  updatedAt: number;
}

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

/** A `users` row as selected: the column lists never name `password_hash`, so it is not here. */
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

export const ORG_COLUMNS =
  "id, code, name, parent_id, parent_missing, extensions, event_ts, version, created_at, updated_at, deleted_at";
/** Every user column but password_hash, which no read returns. */
export const USER_COLUMNS =
  "id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name, " +
  "mobile, email, extensions, event_ts, version, created_at, updated_at, deleted_at";

function parseExtensions(text: string): Extensions {
  const value: unknown = JSON.parse(text);
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Extensions) : {};
}

export function organizationFromRow(row: OrgRow): OrganizationView {
  return {
    id: row.id,
    code: row.code,
    name: row.name,
    parentId: row.parent_id,
    parentMissing: row.parent_missing === 1,
    extensions: parseExtensions(row.extensions),
    eventTs: row.event_ts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
  };
}

export function userFromRow(row: UserRow): UserView {
  return {
    id: row.id,
    username: row.username,
    name: row.name,
    organizationId: row.organization_id,
    organizationMissing: row.organization_missing === 1,
    disabled: row.disabled === 1,
    firstName: row.first_name,
    middleName: row.middle_name,
    lastName: row.last_name,
    mobile: row.mobile,
    email: row.email,
    extensions: parseExtensions(row.extensions),
    eventTs: row.event_ts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
  };
}

/** Organizations and users read in one batch, so both lists are of the same moment. */
export async function selectDirectory(
  db: D1Database,
  includeDeleted: boolean,
): Promise<{ organizations: OrganizationView[]; users: UserView[] }> {
  const where = includeDeleted ? "" : "WHERE deleted_at IS NULL";
  const [orgs, users] = await db.batch([
    db.prepare(`SELECT ${ORG_COLUMNS} FROM organizations ${where} ORDER BY code`),
    db.prepare(`SELECT ${USER_COLUMNS} FROM users ${where} ORDER BY username`),
  ]);
  return {
    organizations: (orgs!.results as OrgRow[]).map(organizationFromRow),
    users: (users!.results as UserRow[]).map(userFromRow),
  };
}

type KeyedEntity = "organization" | "user";

// --- reads for a decision --------------------------------------------------------------------------

/** A scalar query and the value it gave when the event was decided. */
interface Expectation {
  sql: string;
  params: BindValue[];
  value: BindValue;
}

/** A value a queued read fills in once the reader's batch has run. */
export interface Pending<T> {
  value: T;
}

type Rows = Array<Record<string, unknown>>;

const CHAIN_SQL = (target: string) => `WITH RECURSIVE chain(id) AS (
    SELECT ?
    UNION
    SELECT o.parent_id FROM organizations o JOIN chain ON o.id = chain.id WHERE o.parent_id IS NOT NULL
  ) SELECT count(*) FROM chain WHERE id = ${target}`;

/**
 * Reads what a decision depends on and remembers, for each read, a scalar query that gives the same value
 * as long as what was read still holds. `snapshotCheck` re-runs them all inside the write batch.
 * (A row's `version` says which write it is: every event that writes a row raises it.)
 *
 * Reads are queued, then `run` sends them all as ONE D1 batch (one round trip, one consistent snapshot).
 */
export class DirectoryReader {
  private readonly expectations: Expectation[] = [];
  private readonly queued: Array<{ statement: D1PreparedStatement; settle: (rows: Rows) => void }> = [];
  private readonly userVersions = new Map<string, number>();

  constructor(private readonly db: DirectoryDb) {}

  organization(key: "id" | "code", value: string): Pending<OrgRecord | null> {
    const slot: Pending<OrgRecord | null> = { value: null };
    this.queue(this.db.prepare(`SELECT ${ORG_COLUMNS} FROM organizations WHERE ${key} = ?`).bind(value), (rows) => {
      const row = (rows[0] as OrgRow | undefined) ?? null;
      this.expectRow("organizations", key, value, row);
      slot.value = row ? organizationFromRow(row) : null;
    });
    return slot;
  }

  user(key: "id" | "username", value: string): Pending<UserRecord | null> {
    const slot: Pending<UserRecord | null> = { value: null };
    this.queue(this.db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE ${key} = ?`).bind(value), (rows) => {
      const row = (rows[0] as UserRow | undefined) ?? null;
      this.expectRow("users", key, value, row);
      if (row) this.userVersions.set(row.id, row.version);
      slot.value = row ? userFromRow(row) : null;
    });
    return slot;
  }

  /**
   * A user row this isolate already knows (row-cache.ts), taken as read without a round trip: the batch's
   * snapshot check then asserts the row still has this version, like any row read.
   */
  knownUser(record: UserRecord, version: number): Pending<UserRecord | null> {
    this.expectRow("users", "id", record.id, { id: record.id, version });
    this.userVersions.set(record.id, version);
    return { value: record };
  }

  /** The version of a user row this reader read (or took as known), by id. */
  userVersion(id: string): number | undefined {
    return this.userVersions.get(id);
  }

  /** The id of the organization holding `code`, live or tombstone (codes are unique across both). */
  organizationIdWithCode(code: string): Pending<string | null> {
    return this.scalar("SELECT id FROM organizations WHERE code = ?", [code]) as Pending<string | null>;
  }

  userIdWithUsername(username: string): Pending<string | null> {
    return this.scalar("SELECT id FROM users WHERE username = ?", [username]) as Pending<string | null>;
  }

  /**
   * Whether `orgId` is `startId` or one of its ancestors (a count: 0 when it is not). Parent links of
   * tombstones are followed too, so reviving one can never close a cycle; UNION (not UNION ALL) stops at an
   * id already seen.
   */
  chainContains(startId: string, orgId: string): Pending<number> {
    return this.scalar(CHAIN_SQL("?"), [startId, orgId]) as Pending<number>;
  }

  /**
   * The same for the organization holding `code` (none: 0): read in the same batch as that organization,
   * before its id is known.
   */
  chainContainsHolderOf(startId: string, code: string): Pending<number> {
    return this.scalar(CHAIN_SQL("(SELECT id FROM organizations WHERE code = ?)"), [startId, code]) as Pending<number>;
  }

  /** Who gave up this code / username in a rename, and when (null: nobody). */
  releasedKey(entity: KeyedEntity, key: string): Pending<ReleasedKey | null> {
    const slot: Pending<ReleasedKey | null> = { value: null };
    const where = "FROM released_keys WHERE entity = ? AND key = ?";
    this.queue(this.db.prepare(`SELECT entity_id, released_ts ${where}`).bind(entity, key), (rows) => {
      const row = rows[0] as { entity_id: string; released_ts: number } | undefined;
      this.expectations.push({ sql: `SELECT entity_id ${where}`, params: [entity, key], value: row?.entity_id ?? null });
      this.expectations.push({ sql: `SELECT released_ts ${where}`, params: [entity, key], value: row?.released_ts ?? null });
      slot.value = row ? { entityId: row.entity_id, releasedTs: row.released_ts } : null;
    });
    return slot;
  }

  liveChildCount(orgId: string): Pending<number> {
    return this.scalar("SELECT count(*) FROM organizations WHERE parent_id = ? AND deleted_at IS NULL", [orgId]) as Pending<number>;
  }

  liveMemberCount(orgId: string): Pending<number> {
    return this.scalar("SELECT count(*) FROM users WHERE organization_id = ? AND deleted_at IS NULL", [orgId]) as Pending<number>;
  }

  /** Runs every queued read as one batch (one round trip, one transaction) and fills in the pending values. */
  async run(): Promise<void> {
    const queued = this.queued.splice(0);
    if (queued.length === 0) return;
    // Even a single read goes as a batch: concurrent events' batches share a round trip (group-commit.ts).
    const results = await this.db.batch(queued.map((q) => q.statement));
    queued.forEach((q, i) => q.settle((results[i]?.results ?? []) as Rows));
  }

  /** One statement asserting every read still holds; the trigger aborts the whole batch otherwise. */
  snapshotCheck(): D1PreparedStatement | null {
    if (this.expectations.length === 0) return null;
    const condition = this.expectations.map((e) => `(${e.sql}) IS ?`).join(" AND ");
    const params = this.expectations.flatMap((e) => [...e.params, e.value]);
    return this.db.prepare(`INSERT INTO snapshot_checks (holds) SELECT ${condition}`).bind(...params);
  }

  private queue(statement: D1PreparedStatement, settle: (rows: Rows) => void) {
    this.queued.push({ statement, settle });
  }

  private scalar(sql: string, params: BindValue[]): Pending<BindValue> {
    const slot: Pending<BindValue> = { value: null };
    this.queue(this.db.prepare(`SELECT (${sql}) AS value`).bind(...params), (rows) => {
      slot.value = (rows[0]?.value ?? null) as BindValue;
      this.expectations.push({ sql, params, value: slot.value });
    });
    return slot;
  }

  private expectRow(table: "organizations" | "users", key: string, value: string, row: { id: string; version: number } | null) {
    this.expectations.push({ sql: `SELECT version FROM ${table} WHERE ${key} = ?`, params: [value], value: row?.version ?? null });
    if (key !== "id") {
      // Read by code or username: the row holding it must also still be the same one.
      this.expectations.push({ sql: `SELECT id FROM ${table} WHERE ${key} = ?`, params: [value], value: row?.id ?? null });
    }
  }
}

// --- writes ----------------------------------------------------------------------------------------

/** Numbered placeholders (?1, ?2 …) by name, so a statement can use one value twice. */
function named<K extends string>(values: Record<K, BindValue>): { at: Record<K, string>; params: BindValue[] } {
  const names = Object.keys(values) as K[];
  const at = Object.fromEntries(names.map((name, i) => [name, `?${i + 1}`])) as Record<K, string>;
  return { at, params: names.map((name) => values[name]) };
}

/** 1 when `idSql` names an organization that is not live (unknown yet, or deleted); 0 otherwise. */
function organizationMissing(idSql: string): string {
  return `(${idSql} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM organizations WHERE id = ${idSql} AND deleted_at IS NULL))`;
}

/** An organization became live: rows that point to it no longer miss it. */
function clearMissingFlags(db: DirectoryDb, orgId: string): D1PreparedStatement[] {
  return [
    db.prepare("UPDATE organizations SET parent_missing = 0 WHERE parent_id = ? AND parent_missing = 1").bind(orgId),
    db.prepare("UPDATE users SET organization_missing = 0 WHERE organization_id = ? AND organization_missing = 1").bind(orgId),
  ];
}

/** Remembers the key a rename gave up; a later rename that gives up the same key replaces it. */
function releaseKey(db: DirectoryDb, entity: KeyedEntity, key: string, entityId: string, eventTs: number) {
  return db
    .prepare(
      `INSERT INTO released_keys (entity, key, entity_id, released_ts) VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT (entity, key) DO UPDATE SET entity_id = ?3, released_ts = ?4 WHERE released_ts < ?4`,
    )
    .bind(entity, key, entityId, eventTs);
}

function tombstone(db: DirectoryDb, table: "organizations" | "users", id: string, eventTs: number, nowMs: number) {
  return db
    .prepare(`UPDATE ${table} SET deleted_at = ?3, updated_at = ?3, event_ts = ?2, version = version + 1 WHERE id = ?1`)
    .bind(id, eventTs, nowMs);
}

/**
 * `INSERT … VALUES (values)`, or with `ifKeyFree` an insert that only happens while no row holds the key
 * (code / username) and no rename gave it up: the facts under which the rules decide to insert. A
 * speculative create (apply-event.ts) sends it before anything is read; when the facts do not hold it
 * changes nothing and the event is decided from a read instead.
 */
function insertInto(table: "organizations" | "users", columns: string, values: string, key: { column: string; entity: KeyedEntity; at: string } | null) {
  if (key === null) return `INSERT INTO ${table} (${columns}) VALUES (${values})`;
  return `INSERT INTO ${table} (${columns}) SELECT ${values}
    WHERE NOT EXISTS (SELECT 1 FROM ${table} WHERE ${key.column} = ${key.at})
      AND NOT EXISTS (SELECT 1 FROM released_keys WHERE entity = '${key.entity}' AND key = ${key.at})`;
}

export function organizationWrites(db: DirectoryDb, write: Write<OrgRecord>, nowMs: number, ifKeyFree = false): D1PreparedStatement[] {
  if (write.kind === "tombstone") return [tombstone(db, "organizations", write.id, write.eventTs, nowMs)];
  const r = write.record;
  const { at, params } = named({
    id: r.id,
    code: r.code,
    name: r.name,
    parentId: r.parentId,
    extensions: JSON.stringify(r.extensions),
    eventTs: r.eventTs,
    now: nowMs,
  });
  if (write.kind === "insert") {
    const insert = db
      .prepare(
        insertInto(
          "organizations",
          "id, code, name, parent_id, parent_missing, extensions, event_ts, created_at, updated_at",
          `${at.id}, ${at.code}, ${at.name}, ${at.parentId}, ${organizationMissing(at.parentId)},
           ${at.extensions}, ${at.eventTs}, ${at.now}, ${at.now}`,
          ifKeyFree ? { column: "code", entity: "organization", at: at.code } : null,
        ),
      )
      .bind(...params);
    return [insert, ...clearMissingFlags(db, r.id)];
  }
  const update = db
    .prepare(
      `UPDATE organizations SET code = ${at.code}, name = ${at.name}, parent_id = ${at.parentId},
         parent_missing = ${organizationMissing(at.parentId)}, extensions = ${at.extensions},
         event_ts = ${at.eventTs}, updated_at = ${at.now}, deleted_at = NULL, version = version + 1
       WHERE id = ${at.id}`,
    )
    .bind(...params);
  return [
    update,
    ...(write.revives ? clearMissingFlags(db, r.id) : []),
    ...(write.releasedKey !== null ? [releaseKey(db, "organization", write.releasedKey, r.id, r.eventTs)] : []),
  ];
}

/** What a user write does to the stored hash: `keep` it, or `set` it (null clears). */
export type PasswordWrite = { kind: "keep" } | { kind: "set"; hash: string | null };

export function userWrites(
  db: DirectoryDb,
  write: Write<UserRecord>,
  password: PasswordWrite,
  nowMs: number,
  ifKeyFree = false,
): D1PreparedStatement[] {
  if (write.kind === "tombstone") return [tombstone(db, "users", write.id, write.eventTs, nowMs)];
  const r = write.record;
  const { at, params } = named({
    id: r.id,
    username: r.username,
    name: r.name,
    organizationId: r.organizationId,
    disabled: r.disabled ? 1 : 0,
    firstName: r.firstName,
    middleName: r.middleName,
    lastName: r.lastName,
    mobile: r.mobile,
    email: r.email,
    extensions: JSON.stringify(r.extensions),
    keepPassword: password.kind === "keep" ? 1 : 0,
    passwordHash: password.kind === "set" ? password.hash : null,
    eventTs: r.eventTs,
    now: nowMs,
  });
  if (write.kind === "insert") {
    return [
      db
        .prepare(
          insertInto(
            "users",
            `id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name,
             mobile, email, extensions, password_hash, event_ts, created_at, updated_at`,
            `${at.id}, ${at.username}, ${at.name}, ${at.organizationId}, ${organizationMissing(at.organizationId)},
             ${at.disabled}, ${at.firstName}, ${at.middleName}, ${at.lastName}, ${at.mobile}, ${at.email},
             ${at.extensions}, IIF(${at.keepPassword}, NULL, ${at.passwordHash}), ${at.eventTs}, ${at.now}, ${at.now}`,
            ifKeyFree ? { column: "username", entity: "user", at: at.username } : null,
          ),
        )
        .bind(...params),
    ];
  }
  const update = db
    .prepare(
      `UPDATE users SET username = ${at.username}, name = ${at.name}, organization_id = ${at.organizationId},
         organization_missing = ${organizationMissing(at.organizationId)}, disabled = ${at.disabled},
         first_name = ${at.firstName}, middle_name = ${at.middleName}, last_name = ${at.lastName},
         mobile = ${at.mobile}, email = ${at.email}, extensions = ${at.extensions},
         password_hash = IIF(${at.keepPassword}, password_hash, ${at.passwordHash}),
         event_ts = ${at.eventTs}, updated_at = ${at.now}, deleted_at = NULL, version = version + 1
       WHERE id = ${at.id}`,
    )
    .bind(...params);
  return [update, ...(write.releasedKey !== null ? [releaseKey(db, "user", write.releasedKey, r.id, r.eventTs)] : [])];
}

/**
 * The audit row. With `ifRow`, only written when that row exists: a speculative create's audit row goes in
 * only if its insert did (the id is fresh, so the row exists exactly when the insert happened).
 */
export function insertDelivery(
  db: DirectoryDb,
  record: DeliveryRecord,
  ifRow?: { table: "organizations" | "users"; id: string },
): D1PreparedStatement {
  const columns = "received_at, event_type, nonce, code, message, entity_id, duration_ms";
  const params = [record.receivedAtMs, record.eventType, record.nonce, record.code, record.message, record.entityId, record.durationMs];
  if (!ifRow) return db.prepare(`INSERT INTO deliveries (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?)`).bind(...params);
  return db
    .prepare(`INSERT INTO deliveries (${columns}) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM ${ifRow.table} WHERE id = ?)`)
    .bind(...params, ifRow.id);
}
