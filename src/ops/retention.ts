// The audit table (`deliveries`, one row per authenticated callback) is kept for AUDIT_RETENTION_DAYS. A
// daily Cron Trigger (wrangler.toml [triggers]) calls `scheduledRetention`, which deletes older rows in
// bounded chunks: each statement stays short, and one run does a bounded amount of work (a D1 query budget
// per invocation); whatever is left is taken by the next run.
import { readAuditRetentionDays } from "../config";

export const DAY_MS = 24 * 3600 * 1000;

export interface TrimOptions {
  /** Rows deleted per statement. */
  chunkSize?: number;
  /** Statements per run at most (Workers allow 50 D1 queries per invocation on the free plan). */
  maxChunks?: number;
}

export interface TrimResult {
  /** Rows whose `received_at` is older than this (Unix ms) were deleted. */
  cutoffMs: number;
  deleted: number;
  chunks: number;
  /** False when the run stopped at `maxChunks` with old rows possibly left for the next run. */
  complete: boolean;
}

/**
 * At most 20 000 rows a run: D1 bills each deleted row as a row written, and on the Free plan (100 000 a
 * day) a backlog (after lowering AUDIT_RETENTION_DAYS, say) must not crowd out the day's events; it drains
 * over the following days instead. 20 statements stay under the 50 queries an invocation may run.
 */
export const DEFAULT_CHUNK_SIZE = 1_000;
export const DEFAULT_MAX_CHUNKS = 20;

/**
 * Deletes audit rows received more than `retentionDays` before `nowMs`, oldest first, `chunkSize` rows per
 * statement and at most `maxChunks` statements.
 */
export async function trimDeliveries(
  db: D1Database,
  retentionDays: number,
  nowMs: number,
  { chunkSize = DEFAULT_CHUNK_SIZE, maxChunks = DEFAULT_MAX_CHUNKS }: TrimOptions = {},
): Promise<TrimResult> {
  if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new RangeError("retentionDays must be a positive integer");
  const cutoffMs = nowMs - retentionDays * DAY_MS;
  // Never the newest row: a new audit row's id is the largest plus one, so keeping it keeps ids (the change
  // feed's cursors) from ever being reused, even after a quiet month.
  const statement = db.prepare(
    `DELETE FROM deliveries WHERE id IN (
       SELECT id FROM deliveries WHERE received_at < ? AND id < (SELECT max(id) FROM deliveries) ORDER BY id LIMIT ?)`,
  );
  let deleted = 0;
  let chunks = 0;
  while (chunks < maxChunks) {
    const result = await statement.bind(cutoffMs, chunkSize).run();
    chunks++;
    const changes = result.meta.changes ?? 0;
    deleted += changes;
    if (changes < chunkSize) return { cutoffMs, deleted, chunks, complete: true };
  }
  return { cutoffMs, deleted, chunks, complete: false };
}

/**
 * The Cron Trigger's work: trim to AUDIT_RETENTION_DAYS, one structured log line either way. An invalid
 * AUDIT_RETENTION_DAYS deletes nothing (a typo must not wipe the audit); other settings do not matter here.
 */
export async function scheduledRetention(env: Pick<Env, "DB" | "AUDIT_RETENTION_DAYS">, scheduledTimeMs: number, options?: TrimOptions): Promise<TrimResult | null> {
  const problems: { setting: string; problem: string }[] = [];
  const days = readAuditRetentionDays(env, problems);
  if (problems.length > 0) {
    console.error(JSON.stringify({ msg: "retention", outcome: "misconfigured", problems }));
    return null;
  }
  const started = Date.now();
  try {
    const result = await trimDeliveries(env.DB, days, scheduledTimeMs, options);
    console.log(JSON.stringify({ msg: "retention", outcome: "trimmed", retentionDays: days, ...result, durationMs: Date.now() - started }));
    return result;
  } catch (e) {
    // The error's class name only: a D1 message could quote values.
    console.error(JSON.stringify({ msg: "retention", outcome: "failed", error: e instanceof Error ? e.name : typeof e }));
    throw e;
  }
}
