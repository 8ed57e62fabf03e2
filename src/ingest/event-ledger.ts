// The event ledger: one Durable Object per shard of replay keys (what was signed), with one SQLite row per
// request answered. It does each request's work once (apply the event to D1, or write the audit row of a
// CHECK_URL or of a refused payload), records the reply, and answers every later copy of the same signed
// request from that record: the store that refuses replays and the writer of the directory in one place,
// so an event costs the Worker one call. A request being worked on is guarded in the object's memory: a
// copy that arrives meanwhile waits for it and gets its reply. (Renamed from ReplayGuard: wrangler.toml's
// `renamed_classes` migration keeps its storage.)
import { DurableObject } from "cloudflare:workers";
import { applyEvent } from "../directory/apply";
import { auditRecord, insertAudit } from "../directory/audit";
import { resolvePassword } from "../directory/passwords";
import { MESSAGES, type ApplyOutcome } from "../directory/rules";
import { errorName } from "../errors";
import { DispatcherPoke } from "../webhooks/poke";
import { metered, NO_COST, type Cost } from "./cost";
import type { LedgerOutcome, LedgerRequest, StoredReply, Work } from "./types";

/** Most rows one alarm run deletes; if more are expired, the alarm re-arms at once to continue. */
export const ALARM_PURGE_MAX = 5_000;
/**
 * After a purge, the next alarm is not set sooner than this: under steady load every row has its own
 * expiry, and re-arming for the very next one would run an alarm per request. Rows only need to live *at
 * least* their time to live, so purging up to this much later costs a bounded amount of extra storage.
 */
export const PURGE_INTERVAL_MS = 60_000;
/** Longest time to live accepted (30 days): a bad caller cannot pin rows for ever. */
export const MAX_TTL_MS = 30 * 24 * 3600 * 1000;

/** A refused payload's record lives under its own key: it must not take the genuine request's place. */
const REFUSED_PREFIX = "refused:";

interface ReplyRow extends Record<string, SqlStorageValue> {
  code: string;
  message: string;
  plaintext: string;
}

export class EventLedger extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** When the next purge alarm is due, as far as this instance knows (null: none scheduled). */
  private alarmAt: number | null = null;
  /** Requests being worked on right now, by record key: a copy waits for the first one's outcome. */
  private readonly inFlight = new Map<string, Promise<LedgerOutcome>>();
  /** The object's clock; tests replace it instead of sleeping. */
  clock: () => number = () => Date.now();
  /** Tells the webhook dispatcher about a change, at most once per POKE_INTERVAL_MS (in this object's memory). */
  readonly dispatcherPoke = new DispatcherPoke(() => this.clock());

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // The record is written once, when the reply is known: one row and one index entry, the same to delete.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS replies (
      key TEXT PRIMARY KEY,
      code TEXT NOT NULL,
      message TEXT NOT NULL,
      plaintext TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS replies_by_expiry ON replies (expires_at)");
    // Records keyed by nonce and body hash (before replay keys): none can match a replay key.
    this.sql.exec("DROP TABLE IF EXISTS nonces");
    // The runtime delivers no call before this finishes, so the first record sees the real alarm state.
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
    });
  }

  /**
   * The route's one call per authenticated request: do its work once per replay key and record the reply
   * (`done`), or answer a copy of a request already answered (`duplicate`). The reply is recorded only after
   * the work succeeded, and the runtime releases this answer only once the record is durable; when the work
   * fails nothing is recorded (`failed`), so OneAccess's retry does it again.
   */
  async processOnce(request: LedgerRequest): Promise<LedgerOutcome> {
    checkRequest(request);
    const recordKey = request.work.kind === "refuse" ? REFUSED_PREFIX + request.key : request.key;
    // --- atomic section: no await between the look-ups and claiming the key ------------------------------
    const running = this.inFlight.get(recordKey);
    if (running) return asDuplicate(await running);
    const stored = this.storedReply(recordKey);
    if (stored) return { state: "duplicate", reply: stored, cost: { ...NO_COST } };
    const run = this.run(recordKey, request);
    this.inFlight.set(recordKey, run);
    // --- end of atomic section -----------------------------------------------------------------------------
    try {
      return await run;
    } finally {
      this.inFlight.delete(recordKey);
    }
  }

  private async run(recordKey: string, request: LedgerRequest): Promise<LedgerOutcome> {
    const cost: Cost = { ...NO_COST };
    let outcome: ApplyOutcome;
    try {
      outcome = await this.perform(request, cost);
    } catch (e) {
      return { state: "failed", error: errorName(e), cost };
    }
    // The change log may have a new row: the dispatcher sends it now rather than at its next heartbeat.
    if (request.work.kind === "apply" && outcome.code === "200") this.dispatcherPoke.changed(this.env);
    const reply: StoredReply = { code: outcome.code, message: outcome.message, plaintext: outcome.replyData };
    try {
      cost.storeRowsWritten += await this.record(recordKey, reply, request.ttlMs);
    } catch (e) {
      return { state: "failed", error: errorName(e), cost };
    }
    return { state: "done", reply, entityId: outcome.entityId, cost };
  }

  /** The directory binding is read on each call (tests swap it to inject D1 faults). */
  private async perform(request: LedgerRequest, cost: Cost): Promise<ApplyOutcome> {
    const { work, nonce, receivedAtMs } = request;
    const db = metered(this.env.DB, cost);
    const now = this.clock;
    if (work.kind === "apply") {
      // Hashed here, after the key was found new: an exact duplicate never pays for a hash.
      const password = await resolvePassword(work.password);
      return applyEvent(db, work.event, { nonce, eventTimestampMs: work.eventTimestampMs, receivedAtMs, password, now });
    }
    const outcome = auditOnlyOutcome(work);
    const eventType = work.kind === "echo" ? "CHECK_URL" : work.eventType;
    await db.batch([insertAudit(db, auditRecord({ receivedAtMs, eventType, nonce }, outcome, now()))]);
    return outcome;
  }

  /** Records the reply of a key (an expired record of the same key not purged yet is replaced); returns the rows written. */
  private async record(recordKey: string, reply: StoredReply, ttlMs: number): Promise<number> {
    const now = this.clock();
    const expiresAt = now + Math.ceil(ttlMs);
    const cursor = this.sql.exec(
      `INSERT INTO replies (key, code, message, plaintext, expires_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET code = excluded.code, message = excluded.message,
         plaintext = excluded.plaintext, expires_at = excluded.expires_at`,
      recordKey,
      reply.code,
      reply.message,
      reply.plaintext,
      expiresAt,
    );
    cursor.toArray();
    // An alarm that should have run long ago is presumed lost (every retry of it failed): arm a new one.
    const lost = this.alarmAt !== null && this.alarmAt < now - PURGE_INTERVAL_MS;
    if (this.alarmAt === null || lost) {
      const at = Math.max(expiresAt, now + PURGE_INTERVAL_MS);
      this.alarmAt = at;
      await this.ctx.storage.setAlarm(at);
    }
    return cursor.rowsWritten;
  }

  private storedReply(recordKey: string): StoredReply | null {
    const row = this.sql
      .exec<ReplyRow>("SELECT code, message, plaintext FROM replies WHERE key = ? AND expires_at > ?", recordKey, this.clock())
      .toArray()[0];
    return row ? { code: row.code, message: row.message, plaintext: row.plaintext } : null;
  }

  /**
   * Purges expired rows (at most ALARM_PURGE_MAX per run) and re-arms itself: at once if it stopped at the
   * cap, otherwise for the earliest remaining expiry but not sooner than PURGE_INTERVAL_MS. Running twice,
   * or with nothing to do, is harmless.
   */
  override async alarm(): Promise<void> {
    const now = this.clock();
    const { purged, rowsWritten } = this.purge(now, ALARM_PURGE_MAX);
    if (purged > 0) console.log(JSON.stringify({ msg: "ledger purge", purged, storeRowsWritten: rowsWritten }));
    let next: number | null;
    if (purged >= ALARM_PURGE_MAX) {
      next = now;
    } else {
      const earliest = this.sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM replies").one().next;
      next = earliest === null ? null : Math.max(earliest, now + PURGE_INTERVAL_MS);
    }
    this.alarmAt = next;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }

  /** Row count, for tests and the operator page. */
  async size(): Promise<number> {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM replies").one().n;
  }

  /** Deletes up to `limit` expired rows, oldest first; returns how many, and the rows that wrote. */
  private purge(now: number, limit: number): { purged: number; rowsWritten: number } {
    const cursor = this.sql.exec(
      "DELETE FROM replies WHERE key IN (SELECT key FROM replies WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING 1",
      now,
      limit,
    );
    const purged = cursor.toArray().length;
    return { purged, rowsWritten: cursor.rowsWritten };
  }
}

/** The reply of CHECK_URL (the echo) or of a refused payload (its 400), whose only write is the audit row. */
function auditOnlyOutcome(work: Exclude<Work, { kind: "apply" }>): ApplyOutcome {
  return work.kind === "echo"
    ? { code: "200", message: MESSAGES.applied, replyData: work.echo, entityId: null }
    : { code: "400", message: work.message, replyData: "", entityId: null };
}

/** What a copy that arrived while its original was being worked on answers (its cost is the original's). */
function asDuplicate(outcome: LedgerOutcome): LedgerOutcome {
  return outcome.state === "done" ? { state: "duplicate", reply: outcome.reply, cost: { ...NO_COST } } : { ...outcome, cost: { ...NO_COST } };
}

function checkRequest(request: LedgerRequest): void {
  if (typeof request.key !== "string" || request.key === "") throw new TypeError("key must be a non-empty string");
  const ttl = request.ttlMs;
  if (!Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_MS) throw new RangeError("ttlMs out of range");
}
