// The audit log (`deliveries`): one row per authenticated callback that was processed, built and written
// here only. It holds what happened to a request, never its payload, a password or a secret. When the event
// changed the directory, the same row is its change record (the change log): what changed, the entity's
// version, and the entity as the read API shows it after the change, read from the row just written.
import { apiJsonSql } from "./rows";
import type { ApplyOutcome } from "./rules";

/** What a D1 binding gives the directory's code (a D1 database, or a wrapper around one in tests). */
export type DirectoryDb = Pick<D1Database, "prepare" | "batch">;

export interface AuditRecord {
  receivedAtMs: number;
  eventType: string;
  nonce: string;
  code: string;
  message: string;
  entityId: string | null;
  durationMs: number;
}

/** The audit record of a request: when it arrived, what it claimed to be, and what it was answered. */
export function auditRecord(
  request: { receivedAtMs: number; eventType: string; nonce: string },
  outcome: Pick<ApplyOutcome, "code" | "message" | "entityId">,
  nowMs: number,
): AuditRecord {
  return {
    receivedAtMs: request.receivedAtMs,
    eventType: request.eventType,
    nonce: request.nonce,
    code: outcome.code,
    message: outcome.message,
    entityId: outcome.entityId,
    durationMs: Math.max(0, nowMs - request.receivedAtMs),
  };
}

/** What an event changed, for its audit row to be its change record too. */
export interface ChangeRecord {
  table: "organizations" | "users";
  /** The entity; also what the shortcut's audit row waits for (written only when the row exists). */
  id: string;
  /** `user.created`, `organization.moved`, …: the most specific type (changes.ts). */
  type: string;
  /** API names of the attributes that changed. */
  changed: string[];
  /** OneAccess's event time (Unix ms). */
  eventAtMs: number;
  /** A delete's record carries the id only. */
  withEntity: boolean;
}

const COLUMNS = "received_at, event_type, nonce, code, message, entity_id, duration_ms";

/**
 * The statement writing an audit row. With a change, the row is also the change record: its version and
 * entity are read from the entity's row as the same batch left it (so they are exactly what the read API
 * shows), and the row is written only when that entity row exists (a create that tried its insert without
 * reading first has its audit row go in only if the insert did: its id is fresh).
 */
export function insertAudit(db: DirectoryDb, record: AuditRecord, change?: ChangeRecord): D1PreparedStatement {
  const params = [record.receivedAtMs, record.eventType, record.nonce, record.code, record.message, record.entityId, record.durationMs];
  if (!change) return db.prepare(`INSERT INTO deliveries (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`).bind(...params);
  const entity = change.withEntity ? apiJsonSql(change.table, "e") : "NULL";
  return db
    .prepare(
      `INSERT INTO deliveries (${COLUMNS}, change_type, changed, entity_version, event_at, entity)
       SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, e.version, ?, ${entity} FROM ${change.table} e WHERE e.id = ?`,
    )
    .bind(...params, change.type, JSON.stringify(change.changed), change.eventAtMs, change.id);
}
