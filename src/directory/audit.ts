// The audit log (`deliveries`): one row per authenticated callback that was processed, built and written
// here only. It holds what happened to a request, never its payload, a password or a secret.
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

/**
 * The statement writing an audit row. With `ifRow`, only written when that row exists: a create that tries
 * its insert without reading first has its audit row go in only if the insert did (its id is fresh, so the
 * row exists exactly when the insert happened).
 */
export function insertAudit(db: DirectoryDb, record: AuditRecord, ifRow?: { table: "organizations" | "users"; id: string }): D1PreparedStatement {
  const columns = "received_at, event_type, nonce, code, message, entity_id, duration_ms";
  const params = [record.receivedAtMs, record.eventType, record.nonce, record.code, record.message, record.entityId, record.durationMs];
  if (!ifRow) return db.prepare(`INSERT INTO deliveries (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?)`).bind(...params);
  return db
    .prepare(`INSERT INTO deliveries (${columns}) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM ${ifRow.table} WHERE id = ?)`)
    .bind(...params, ifRow.id);
}
