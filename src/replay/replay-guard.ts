// The nonce store: one SQLite row per nonce in a Durable Object, which is what makes "seen before?" and
// "mark as seen" one atomic step. Each method's read and write run with no await between them.
import { DurableObject } from "cloudflare:workers";
import type { Reservation, StoredReply } from "./types";

/** A reservation not committed within this long is taken to be abandoned (its Worker died mid-flight). */
export const LEASE_MS = 30_000;
/** Expired rows removed inline by each reserve, so storage stays bounded even if an alarm is late. */
const INLINE_PURGE = 32;

interface Row extends Record<string, SqlStorageValue> {
  body_hash: string;
  state: string;
  code: string | null;
  message: string | null;
  plaintext: string | null;
  reserved_at: number;
  expires_at: number;
}

export class ReplayGuard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** When the next purge alarm is due, as far as this instance knows (null: none scheduled). */
  private alarmAt: number | null = null;

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
      reserved_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    ) STRICT`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at)");
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
    });
  }

  async reserve(nonce: string, bodyHash: string, ttlMs: number): Promise<Reservation> {
    const now = Date.now();
    const expiresAt = now + ttlMs;
    const row = this.sql
      .exec<Row>("SELECT body_hash, state, code, message, plaintext, reserved_at, expires_at FROM nonces WHERE nonce = ?", nonce)
      .toArray()[0];
    let result: Reservation;
    if (row && row.expires_at > now) {
      if (row.body_hash !== bodyHash) {
        result = { state: "conflict" };
      } else if (row.state === "committed") {
        result = { state: "committed", reply: { code: row.code ?? "", message: row.message ?? "", plaintext: row.plaintext ?? "" } };
      } else if (now - row.reserved_at < LEASE_MS) {
        result = { state: "in-flight" };
      } else {
        this.sql.exec("UPDATE nonces SET reserved_at = ? WHERE nonce = ?", now, nonce);
        result = { state: "fresh" };
      }
    } else {
      this.sql.exec(
        `INSERT INTO nonces (nonce, body_hash, state, reserved_at, expires_at) VALUES (?, ?, 'reserved', ?, ?)
         ON CONFLICT (nonce) DO UPDATE SET body_hash = excluded.body_hash, state = 'reserved', code = NULL,
           message = NULL, plaintext = NULL, reserved_at = excluded.reserved_at, expires_at = excluded.expires_at`,
        nonce,
        bodyHash,
        now,
        expiresAt,
      );
      result = { state: "fresh" };
    }
    this.sql.exec(
      "DELETE FROM nonces WHERE nonce IN (SELECT nonce FROM nonces WHERE expires_at <= ? LIMIT ?)",
      now,
      INLINE_PURGE,
    );
    if (result.state === "fresh" && (this.alarmAt === null || this.alarmAt > expiresAt)) {
      this.alarmAt = expiresAt;
      await this.ctx.storage.setAlarm(expiresAt);
    }
    return result;
  }

  /** Stores the reply of a reserved nonce. Throws if the reservation is gone: the caller must not answer 200. */
  async commit(nonce: string, bodyHash: string, reply: StoredReply): Promise<void> {
    const cursor = this.sql.exec(
      `UPDATE nonces SET state = 'committed', code = ?, message = ?, plaintext = ?
       WHERE nonce = ? AND body_hash = ? AND state = 'reserved'`,
      reply.code,
      reply.message,
      reply.plaintext,
      nonce,
      bodyHash,
    );
    if (cursor.rowsWritten !== 1) throw new Error("no reservation to commit");
  }

  /** Drops a reservation whose processing failed, so a legitimate retry of the same request can succeed. */
  async release(nonce: string, bodyHash: string): Promise<void> {
    this.sql.exec("DELETE FROM nonces WHERE nonce = ? AND body_hash = ? AND state = 'reserved'", nonce, bodyHash);
  }

  /** Purges expired rows and re-arms itself for the earliest remaining expiry. Running twice is harmless. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM nonces WHERE expires_at <= ?", now);
    const next = this.sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM nonces").one().next;
    this.alarmAt = next;
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  /** Row count, for tests and the operator page. */
  async size(): Promise<number> {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM nonces").one().n;
  }
}
