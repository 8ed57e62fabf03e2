// Reading what an event's decision depends on, as ONE D1 batch (one round trip, one consistent snapshot),
// and the statement that asserts, inside the write batch, that everything read still holds: when another
// event changed it in between, the migration's `snapshot_checks` trigger aborts and D1 rolls the whole
// batch back (see apply.ts).
import type { DirectoryDb } from "./audit";
import type { OrgRecord, ReleasedKey, UserRecord } from "./rules";
import { ORG_COLUMNS, USER_COLUMNS, orgRecord, userRecord, type OrgRow, type UserRow } from "./rows";

type BindValue = string | number | null;

/** The text the migration's `snapshot_checks` trigger aborts with. */
export const SNAPSHOT_CHANGED = "directory snapshot changed";

export function isSnapshotChanged(error: unknown): boolean {
  return error instanceof Error && error.message.includes(SNAPSHOT_CHANGED);
}

type KeyedEntity = "organization" | "user";

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

  constructor(private readonly db: DirectoryDb) {}

  organization(key: "id" | "code", value: string): Pending<OrgRecord | null> {
    const slot: Pending<OrgRecord | null> = { value: null };
    this.queue(this.db.prepare(`SELECT ${ORG_COLUMNS} FROM organizations WHERE ${key} = ?`).bind(value), (rows) => {
      const row = (rows[0] as OrgRow | undefined) ?? null;
      this.expectRow("organizations", key, value, row);
      slot.value = row ? orgRecord(row) : null;
    });
    return slot;
  }

  user(key: "id" | "username", value: string): Pending<UserRecord | null> {
    const slot: Pending<UserRecord | null> = { value: null };
    this.queue(this.db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE ${key} = ?`).bind(value), (rows) => {
      const row = (rows[0] as UserRow | undefined) ?? null;
      this.expectRow("users", key, value, row);
      slot.value = row ? userRecord(row) : null;
    });
    return slot;
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

