// The nonce store: one SQLite row per nonce in a Durable Object, which is what makes "seen before?" and
// "mark as seen" one atomic step. Each method's reads and writes run synchronously, with no await between
// them, so no other call on the same object can interleave (the object is single-threaded; an await would
// be the only place another request could slip in).
import { DurableObject } from "cloudflare:workers";
import { applyEvent, type ApplyOutcome } from "../directory/apply-event";
import { groupCommitting } from "../directory/group-commit";
import { insertDelivery } from "../directory/store";
import type { GuardedEvent, GuardedOutcome, GuardedWork, Reservation, StoredReply } from "./types";

/** A reservation not committed within this long is taken to be abandoned (its Worker died mid-flight). */
export const LEASE_MS = 30_000;
/**
 * Expired rows are also removed inline, so storage stays bounded even if an alarm is late: up to
 * INLINE_PURGE rows by one reserve in every INLINE_PURGE_EVERY (the first of each run of them), which on
 * average removes far more rows than reserves add. Not on every reserve: the purge statement costs about
 * as much as the reserve itself, and at steady state it finds nothing.
 */
export const INLINE_PURGE = 256;
export const INLINE_PURGE_EVERY = 8;
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

interface Row extends Record<string, SqlStorageValue> {
  body_hash: string;
  state: string;
  code: string | null;
  message: string | null;
  plaintext: string | null;
  lease: string;
  reserved_at: number;
  expires_at: number;
}

export class ReplayGuard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** When the next purge alarm is due, as far as this instance knows (null: none scheduled). */
  private alarmAt: number | null = null;
  /** Reserves left before the next inline purge (0: this one purges). */
  private reservesUntilPurge = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS nonces (
      nonce TEXT PRIMARY KEY,
      body_hash TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('reserved', 'committed')),
      code TEXT,
      message TEXT,
      plaintext TEXT,
      lease TEXT NOT NULL,
      reserved_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    ) STRICT`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at)");
    // The runtime delivers no call before this finishes, so the first reserve sees the real alarm state.
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
    });
  }

  /**
   * Marks `nonce` as in flight with `bodyHash`, or says why it cannot be processed. A `fresh` answer
   * carries a lease: pass it to commit / release so a Worker whose lease was taken over (it stalled past
   * LEASE_MS) cannot commit or drop the reservation of the Worker that took over.
   */
  async reserve(nonce: string, bodyHash: string, ttlMs: number): Promise<Reservation> {
    checkKey(nonce, bodyHash);
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) throw new RangeError("ttlMs out of range");
    const now = Date.now();
    const expiresAt = now + Math.ceil(ttlMs);

    // --- atomic section: no await until the end of it -------------------------------------------------
    // The common case, a nonce never seen (or expired but not purged yet), is one statement: the insert
    // succeeds. Only when a live row holds the nonce is it read, to say why it cannot be processed.
    let lease = crypto.randomUUID();
    const inserted = this.sql
      .exec(
        `INSERT INTO nonces (nonce, body_hash, state, lease, reserved_at, expires_at) VALUES (?, ?, 'reserved', ?, ?, ?)
         ON CONFLICT (nonce) DO UPDATE SET body_hash = excluded.body_hash, state = 'reserved', code = NULL,
           message = NULL, plaintext = NULL, lease = excluded.lease, reserved_at = excluded.reserved_at,
           expires_at = excluded.expires_at
         WHERE nonces.expires_at <= ?
         RETURNING 1`,
        nonce,
        bodyHash,
        lease,
        now,
        expiresAt,
        now,
      )
      .toArray().length;
    let result: Reservation;
    if (inserted === 1) {
      result = { state: "fresh", lease };
    } else {
      const row = this.sql
        .exec<Row>("SELECT body_hash, state, code, message, plaintext, lease, reserved_at, expires_at FROM nonces WHERE nonce = ?", nonce)
        .one();
      if (row.body_hash !== bodyHash) {
        result = { state: "conflict" };
      } else if (row.state === "committed") {
        result = { state: "committed", reply: { code: row.code ?? "", message: row.message ?? "", plaintext: row.plaintext ?? "" } };
      } else if (now - row.reserved_at < LEASE_MS) {
        result = { state: "in-flight" };
      } else {
        // The holder is presumed dead: take the lease over. The row keeps its expiry (measured from the
        // first sight of the nonce, which is what the timestamp window is measured against).
        lease = crypto.randomUUID();
        this.sql.exec("UPDATE nonces SET reserved_at = ?, lease = ? WHERE nonce = ?", now, lease, nonce);
        result = { state: "fresh", lease };
      }
    }
    if (this.reservesUntilPurge === 0) {
      this.purge(now, INLINE_PURGE);
      this.reservesUntilPurge = INLINE_PURGE_EVERY;
    }
    this.reservesUntilPurge--;
    // --- end of atomic section ------------------------------------------------------------------------

    if (result.state === "fresh") {
      // An alarm that should have run long ago is presumed lost (every retry of it failed): arm a new one
      // now rather than trusting the cache for ever. Storage stays bounded meanwhile by the inline purge.
      const lost = this.alarmAt !== null && this.alarmAt < now - PURGE_INTERVAL_MS;
      if (this.alarmAt === null || this.alarmAt > expiresAt || lost) {
        const at = lost ? now : expiresAt;
        this.alarmAt = at;
        await this.ctx.storage.setAlarm(at);
      }
    }
    return result;
  }

  /**
   * Stores the reply of a reserved nonce. Throws if the reservation is gone (released, expired, taken over
   * by another lease, or already committed): the caller must not answer 200.
   */
  async commit(nonce: string, bodyHash: string, reply: StoredReply, lease?: string): Promise<void> {
    checkKey(nonce, bodyHash);
    const updated = this.sql
      .exec(
        `UPDATE nonces SET state = 'committed', code = ?, message = ?, plaintext = ?
         WHERE nonce = ? AND body_hash = ? AND state = 'reserved' AND (? IS NULL OR lease = ?)
         RETURNING nonce`,
        reply.code,
        reply.message,
        reply.plaintext,
        nonce,
        bodyHash,
        lease ?? null,
        lease ?? null,
      )
      .toArray().length;
    if (updated !== 1) throw new Error("no reservation to commit");
  }

  /**
   * Drops a reservation whose processing failed, so a legitimate retry of the same request can succeed.
   * Only a reserved row with the same body (and lease, when given) is dropped: never a committed reply.
   */
  async release(nonce: string, bodyHash: string, lease?: string): Promise<boolean> {
    checkKey(nonce, bodyHash);
    const dropped = this.sql
      .exec(
        "DELETE FROM nonces WHERE nonce = ? AND body_hash = ? AND state = 'reserved' AND (? IS NULL OR lease = ?) RETURNING nonce",
        nonce,
        bodyHash,
        lease ?? null,
        lease ?? null,
      )
      .toArray().length;
    return dropped === 1;
  }

  /**
   * The route's one call per directory event (the request already authenticated, opened and checked):
   * reserve the nonce, do the work (apply the event to D1, or write the audit row of a refused payload),
   * then record the reply, all inside this object, so the Worker makes one round trip to it instead of
   * reserve + commit around its own D1 write. Answers like `reserve` for a nonce already seen; `done` once
   * the work and its reply are both recorded (the runtime releases the answer only when this object's
   * writes are durable, and the D1 batch was before); `failed` when the work threw (the reservation is
   * dropped, so OneAccess's retry can succeed) or the reservation was lost meanwhile.
   */
  async process(request: GuardedEvent): Promise<GuardedOutcome> {
    const { nonce, bodyHash, ttlMs, work } = request;
    const reservation = await this.reserve(nonce, bodyHash, ttlMs);
    if (reservation.state !== "fresh") return reservation;
    const { lease } = reservation;
    let outcome: ApplyOutcome;
    try {
      outcome = await this.perform(work, nonce);
    } catch (e) {
      await this.release(nonce, bodyHash, lease);
      return { state: "failed", error: errorName(e) };
    }
    const reply: StoredReply = { code: outcome.code, message: outcome.message, plaintext: outcome.replyData };
    try {
      await this.commit(nonce, bodyHash, reply, lease);
    } catch (e) {
      // Released, expired or taken over while the work ran (it stalled past LEASE_MS): not ours to answer.
      return { state: "failed", error: errorName(e) };
    }
    return { state: "done", reply, entityId: outcome.entityId };
  }

  /** The directory binding is read on each call (tests swap it to inject D1 faults). */
  private async perform(work: GuardedWork, nonce: string): Promise<ApplyOutcome> {
    const db = this.env.DB;
    if (work.kind === "apply") return applyEvent(groupCommitting(db), work.event, work.context);
    const outcome: ApplyOutcome = { code: work.code, message: work.message, replyData: "", entityId: null };
    // The refusal's audit row, before the reply is recorded: its own batch, shared like any event's.
    const directory = groupCommitting(db);
    await directory.batch([
      insertDelivery(directory, {
        receivedAtMs: work.receivedAtMs,
        eventType: work.eventType,
        nonce,
        code: work.code,
        message: work.message,
        entityId: null,
        durationMs: Date.now() - work.receivedAtMs,
      }),
    ]);
    return outcome;
  }

  /**
   * Purges expired rows (at most ALARM_PURGE_MAX per run) and re-arms itself: at once if it stopped at the
   * cap, otherwise for the earliest remaining expiry but not sooner than PURGE_INTERVAL_MS. Running twice,
   * or with nothing to do, is harmless.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const purged = this.purge(now, ALARM_PURGE_MAX);
    let next: number | null;
    if (purged >= ALARM_PURGE_MAX) {
      next = now;
    } else {
      const earliest = this.sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM nonces").one().next;
      next = earliest === null ? null : Math.max(earliest, now + PURGE_INTERVAL_MS);
    }
    this.alarmAt = next;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }

  /** Row count, for tests and the operator page. */
  async size(): Promise<number> {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM nonces").one().n;
  }

  /** Deletes up to `limit` expired rows, oldest first; returns how many. */
  private purge(now: number, limit: number): number {
    return this.sql
      .exec(
        "DELETE FROM nonces WHERE nonce IN (SELECT nonce FROM nonces WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING 1",
        now,
        limit,
      )
      .toArray().length;
  }
}

/** Error class names only: a D1 error message could quote the statement's values. */
function errorName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}

function checkKey(nonce: unknown, bodyHash: unknown): void {
  if (typeof nonce !== "string" || nonce === "") throw new TypeError("nonce must be a non-empty string");
  if (typeof bodyHash !== "string" || bodyHash === "") throw new TypeError("bodyHash must be a non-empty string");
}
