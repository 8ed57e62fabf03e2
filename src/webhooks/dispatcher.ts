// The webhook dispatcher: one Durable Object that follows the change log and POSTs every change to
// WEBHOOK_URL as a signed Standard Webhooks message, at least once, in commit order per entity. Driven by its
// alarm: each run takes the next changes after its cursor from D1 (`listChanges`, one batch), sends them
// concurrently across entities and one after another within an entity, and writes its cursor once. Only a
// failing message gets a row of its own (with its backoff), and so do the later messages of its entity, which
// wait behind it; after RETRY_FOR_MS a failing message becomes a dead letter, which holds nothing back.
// docs/webhooks.md has the design and what it costs on the Free plan.
import { DurableObject } from "cloudflare:workers";
import { readAuditRetentionDays, readWebhookSettings, type ConfigProblem, type WebhookSettings } from "../config";
import { errorName } from "../errors";
import { listChanges, SCAN_ROWS, type ApiChange } from "../read/changes";
import { importSigningKeys, webhookBody, webhookHeaders } from "./message";
import { afterFailure, retryDelayMs, RETRY_JITTER } from "./schedule";
import { postMessage, REQUEST_TIMEOUT_MS, type Attempt } from "./send";
import { STATUS_ROWS, type HeldMessage, type WebhookStatus } from "./stub";

/** Most messages one run sends (first attempts and retries): with its one D1 batch (3 queries), under the Free plan's 50 subrequests. */
export const MAX_SENDS_PER_RUN = 40;
/** Entities sent to at once: a Worker keeps at most 6 connections open, and a queued request's timeout would already be running. */
export const LANES = 6;
/** While webhooks are configured a run happens at least this often, so a change whose poke was lost is still sent. */
export const HEARTBEAT_MS = 5 * 60_000;
/** After a run that took changes, the next one comes this soon: the log is moving, more are likely. */
export const FOLLOW_UP_MS = 1_000;
/**
 * Runs in a row whose new messages all failed (and nothing succeeded) before the endpoint counts as down and
 * new changes are taken one at a time: one consumer refusing one record must not slow everyone else down.
 */
export const ENDPOINT_DOWN_AFTER_RUNS = 3;
/**
 * Held messages (failing or waiting) a run looks at, and the most there may be before the run stops taking
 * new changes: a bound on the rows each run reads, and on what piles up while the endpoint fails.
 */
export const PENDING_MAX = 1_000;

interface StateRow extends Record<string, SqlStorageValue> {
  cursor: number | null;
  delivered: number;
  endpoint_failures: number;
  probe_at: number | null;
}

interface HeldRow extends Record<string, SqlStorageValue> {
  position: number;
  entity_type: string;
  entity_id: string;
  type: string;
  version: number;
  body: string;
  attempts: number;
  first_failed_at: number | null;
  next_attempt_at: number | null;
  last_error: string | null;
}

interface DeadRow extends Record<string, SqlStorageValue> {
  position: number;
  entity_type: string;
  entity_id: string;
  type: string;
  version: number;
  attempts: number;
  last_error: string | null;
  dead_at: number;
}

/** One message of a run: a change just taken from the log, or one the object already held. */
interface Message {
  position: number;
  entityType: string;
  entityId: string;
  type: string;
  version: number;
  body: string;
  held: HeldRow | null;
}

/** What one run did, for its log line and for tests of its budget. */
export interface RunReport {
  /** Changes taken from the log (the cursor moved past them). */
  taken: number;
  sent: number;
  delivered: number;
  failed: number;
  dead: number;
  /** Rows this object's SQLite wrote (the alarm aside). */
  rowsWritten: number;
  /** When the next run is due. */
  nextRunAt: number | null;
}

const HELD_COLUMNS = "position, entity_type, entity_id, type, version, body, attempts, first_failed_at, next_attempt_at, last_error";

export class WebhookDispatcher extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** When the alarm is due, as far as this instance knows (null: none). */
  private alarmAt: number | null = null;
  /** The run under way: runs never overlap. */
  private running: Promise<RunReport | null> | null = null;
  /** A poke or an operator's action came while a run was under way: the next run comes soon. */
  private wokenDuringRun = false;
  private lastRunAt: number | null = null;
  /** Pokes since the last run line: reported there, so the cost of webhooks in Durable Object requests can be read from the log. */
  private pokesSinceLine = 0;
  private signing: { keys: readonly Uint8Array[]; imported: Promise<CryptoKey[]> } | null = null;
  /** The object's clock, random source and per-request timeout; tests replace them instead of sleeping. */
  clock: () => number = () => Date.now();
  random: () => number = () => Math.random();
  requestTimeoutMs = REQUEST_TIMEOUT_MS;
  /** The last run's report, for tests. */
  lastReport: RunReport | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS state (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      cursor INTEGER,
      delivered INTEGER NOT NULL,
      endpoint_failures INTEGER NOT NULL,
      probe_at INTEGER
    ) STRICT`);
    // A failing message, or one waiting behind a failing message of its entity; deleted once delivered.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS held (
      position INTEGER PRIMARY KEY,
      entity_type TEXT NOT NULL,
      entity_id TEXT NOT NULL,
      type TEXT NOT NULL,
      version INTEGER NOT NULL,
      body TEXT NOT NULL,
      attempts INTEGER NOT NULL,
      first_failed_at INTEGER,
      next_attempt_at INTEGER,
      last_error TEXT
    ) STRICT`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS dead_letters (
      position INTEGER PRIMARY KEY,
      entity_type TEXT NOT NULL,
      entity_id TEXT NOT NULL,
      type TEXT NOT NULL,
      version INTEGER NOT NULL,
      body TEXT NOT NULL,
      attempts INTEGER NOT NULL,
      last_error TEXT,
      dead_at INTEGER NOT NULL
    ) STRICT`);
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
    });
  }

  /** The event ledger recorded a change: run now, unless a run is due within FOLLOW_UP_MS anyway. */
  async poke(): Promise<void> {
    this.pokesSinceLine++;
    await this.wake(FOLLOW_UP_MS);
  }

  override async alarm(): Promise<void> {
    this.alarmAt = null;
    await this.runOnce();
  }

  /** One run, after any run under way (a run never overlaps another). Null when webhooks are off. */
  async runOnce(): Promise<RunReport | null> {
    while (this.running) await this.running;
    const run = this.run();
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = null;
    }
  }

  async status(): Promise<WebhookStatus> {
    const state = this.state();
    const counts = this.sql
      .exec<{ held: number; failing: number | null }>("SELECT count(*) AS held, sum(attempts > 0) AS failing FROM held")
      .one();
    const retrying = this.sql
      .exec<HeldRow>(`SELECT ${HELD_COLUMNS} FROM held WHERE attempts > 0 ORDER BY position LIMIT ?`, STATUS_ROWS)
      .toArray()
      .map((r) => heldMessage(r));
    const deadCount = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM dead_letters").one().n;
    const dead = this.sql
      .exec<DeadRow>(
        "SELECT position, entity_type, entity_id, type, version, attempts, last_error, dead_at FROM dead_letters ORDER BY dead_at DESC, position DESC LIMIT ?",
        STATUS_ROWS,
      )
      .toArray()
      .map((r) => ({ ...heldMessage({ ...r, next_attempt_at: null }), deadAt: new Date(r.dead_at).toISOString() }));
    const failing = counts.failing ?? 0;
    return {
      delivered: state.delivered,
      cursor: state.cursor,
      lastRunAt: this.lastRunAt === null ? null : new Date(this.lastRunAt).toISOString(),
      endpointFailing: state.endpoint_failures >= ENDPOINT_DOWN_AFTER_RUNS,
      retrying,
      retryingCount: failing,
      waitingCount: counts.held - failing,
      dead,
      deadCount,
    };
  }

  /** Puts a dead letter back in line, with a new retry period; false when there is none at that position. */
  async redeliver(position: number): Promise<boolean> {
    if (!Number.isSafeInteger(position) || position <= 0) return false;
    const moved = this.ctx.storage.transactionSync(() => this.revive("WHERE position = ?", [position]));
    if (moved > 0) await this.wake(0);
    return moved > 0;
  }

  /** Puts every dead letter back in line; returns how many. */
  async redeliverAll(): Promise<number> {
    const moved = this.ctx.storage.transactionSync(() => this.revive("", []));
    if (moved > 0) await this.wake(0);
    return moved;
  }

  // --- the run ---------------------------------------------------------------------------------------------

  private async run(): Promise<RunReport | null> {
    this.lastReport = null;
    const settings = readWebhookSettings(this.env);
    if (settings === null) {
      // Off (or misconfigured: the Worker reports it). What is held stays for when they are set again.
      this.alarmAt = null;
      await this.ctx.storage.deleteAlarm();
      return null;
    }
    const now = this.clock();
    this.lastRunAt = now;
    this.wokenDuringRun = false;
    this.expireDeadLetters(now);
    let report: RunReport;
    try {
      report = await this.deliver(settings, now);
    } catch (e) {
      // A failed run sends nothing it could not send again: the cursor only moves with the run's writes.
      console.error(JSON.stringify({ msg: "webhook run failed", error: errorName(e) }));
      report = { taken: 0, sent: 0, delivered: 0, failed: 0, dead: 0, rowsWritten: 0, nextRunAt: now + RUN_ERROR_RETRY_MS };
    }
    if (this.wokenDuringRun) report.nextRunAt = Math.min(report.nextRunAt ?? Infinity, this.clock() + FOLLOW_UP_MS);
    this.lastReport = report;
    if (report.sent > 0 || report.taken > 0) {
      const { taken, sent, delivered, failed, dead, rowsWritten } = report;
      console.log(JSON.stringify({ msg: "webhooks", taken, sent, delivered, failed, dead, storeRowsWritten: rowsWritten, pokes: this.pokesSinceLine }));
      this.pokesSinceLine = 0;
    }
    this.alarmAt = report.nextRunAt;
    if (report.nextRunAt !== null) await this.ctx.storage.setAlarm(report.nextRunAt);
    return report;
  }

  /**
   * A dead letter carries the entity as the change log had it: it is kept no longer than the audit retention
   * keeps that change record (an invalid AUDIT_RETENTION_DAYS deletes nothing, as for the audit log).
   */
  private expireDeadLetters(now: number): void {
    const problems: ConfigProblem[] = [];
    const days = readAuditRetentionDays(this.env, problems);
    if (problems.length > 0) return;
    this.sql.exec("DELETE FROM dead_letters WHERE dead_at < ?", now - days * DAY_MS);
  }

  private async deliver(settings: WebhookSettings, now: number): Promise<RunReport> {
    const state = this.state();
    const held = this.sql.exec<HeldRow>(`SELECT ${HELD_COLUMNS} FROM held ORDER BY position LIMIT ?`, PENDING_MAX).toArray();

    // Chains: per entity, its held messages in order, while its first is due and the run's budget lasts.
    const chains = new Map<string, Message[]>();
    /** Entities whose next messages must wait: the first held one is not due, or the budget cut the chain. */
    const closed = new Set<string>();
    let planned = 0;
    for (const row of held) {
      const key = entityKey(row.entity_type, row.entity_id);
      if (closed.has(key)) continue;
      const chain = chains.get(key);
      const due = chain !== undefined || row.next_attempt_at === null || row.next_attempt_at <= now;
      if (!due || planned >= MAX_SENDS_PER_RUN) {
        closed.add(key);
        continue;
      }
      const message = { position: row.position, entityType: row.entity_type, entityId: row.entity_id, type: row.type, version: row.version, body: row.body, held: row };
      if (chain) chain.push(message);
      else chains.set(key, [message]);
      planned++;
    }

    // New changes from the log: as many as the budget leaves, one at a time while the endpoint fails, none
    // while too many are held.
    const failing = state.endpoint_failures >= ENDPOINT_DOWN_AFTER_RUNS;
    let intake = held.length >= PENDING_MAX ? 0 : MAX_SENDS_PER_RUN - planned;
    if (failing) intake = state.probe_at !== null && now < state.probe_at ? 0 : Math.min(intake, 1);
    let cursor = state.cursor;
    let more = false;
    let taken = 0;
    const waiting: Message[] = [];
    if (intake > 0) {
      const page = await listChanges(this.env.DB, cursor === null || cursor === 0 ? null : cursor, intake, null);
      if (!page.ok) {
        // Outside the log: changes older than the retention kept are gone (skip to the oldest kept); a cursor
        // ahead of the newest means the database was replaced or restored (follow it from its newest).
        const behind = cursor !== null && cursor < page.oldest;
        console.warn(JSON.stringify({ msg: "webhook cursor outside the change log", behind, oldest: page.oldest, newest: page.newest }));
        cursor = behind ? page.oldest - 1 : page.newest;
        more = true;
      } else {
        const heldKeys = new Set(held.map((r) => entityKey(r.entity_type, r.entity_id)));
        for (const { change } of page.items) {
          const message = fromChange(change);
          const key = entityKey(message.entityType, message.entityId);
          const chain = chains.get(key);
          if (chain && !closed.has(key)) chain.push(message);
          else if (closed.has(key) || heldKeys.has(key)) waiting.push(message);
          else chains.set(key, [message]);
        }
        taken = page.items.length;
        more = taken === intake || page.next - (cursor ?? 0) >= SCAN_ROWS;
        cursor = page.next;
      }
    }

    // Send: chains concurrently (LANES at a time), each chain in order, stopping at its first failure.
    const outcomes = new Map<number, Attempt>();
    if (chains.size > 0) {
      const keys = await this.signingKeys(settings);
      const queue = [...chains.values()];
      const lane = async () => {
        for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
          for (const message of chain) {
            const headers = await webhookHeaders(keys, String(message.position), this.clock(), message.body);
            const attempt = await postMessage(settings.url, headers, message.body, this.requestTimeoutMs);
            outcomes.set(message.position, attempt);
            if (!attempt.ok) break;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(LANES, queue.length) }, lane));
    }

    // Record, in one transaction: the cursor and counters in one row; a row per failing or waiting message.
    const after = this.clock();
    const report: RunReport = { taken, sent: outcomes.size, delivered: 0, failed: 0, dead: 0, rowsWritten: 0, nextRunAt: null };
    /** Held messages after this run, by position: for when the next one is due. */
    const remaining = new Map<number, { key: string; nextAttemptAt: number | null }>(
      held.map((r) => [r.position, { key: entityKey(r.entity_type, r.entity_id), nextAttemptAt: r.next_attempt_at }]),
    );
    let firstAttemptFailed = false;
    this.ctx.storage.transactionSync(() => {
      const write = (query: string, ...params: SqlStorageValue[]) => {
        const c = this.sql.exec(query, ...params);
        c.toArray();
        report.rowsWritten += c.rowsWritten;
      };
      const hold = (m: Message, attempts: number, firstFailedAt: number | null, nextAttemptAt: number | null, lastError: string | null) => {
        write(
          `INSERT INTO held (${HELD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (position) DO UPDATE SET attempts = excluded.attempts, first_failed_at = excluded.first_failed_at,
             next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error`,
          m.position, m.entityType, m.entityId, m.type, m.version, m.body, attempts, firstFailedAt, nextAttemptAt, lastError,
        );
        remaining.set(m.position, { key: entityKey(m.entityType, m.entityId), nextAttemptAt });
      };
      for (const chain of chains.values()) {
        for (const m of chain) {
          const outcome = outcomes.get(m.position);
          if (outcome === undefined) {
            // Behind a failure of its entity in this run: it waits for it.
            if (m.held === null) hold(m, 0, null, null, null);
          } else if (outcome.ok) {
            report.delivered++;
            if (m.held !== null) {
              write("DELETE FROM held WHERE position = ?", m.position);
              remaining.delete(m.position);
            }
          } else {
            report.failed++;
            const attempts = (m.held?.attempts ?? 0) + 1;
            if (attempts === 1) firstAttemptFailed = true;
            const firstFailedAt = m.held?.first_failed_at ?? after;
            const next = afterFailure(firstFailedAt, attempts, after, this.random());
            if (next.dead) {
              report.dead++;
              write("DELETE FROM held WHERE position = ?", m.position);
              remaining.delete(m.position);
              write(
                `INSERT OR REPLACE INTO dead_letters (position, entity_type, entity_id, type, version, body, attempts, last_error, dead_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
                m.position, m.entityType, m.entityId, m.type, m.version, m.body, attempts, outcome.error, after,
              );
              console.warn(JSON.stringify({ msg: "webhook dead letter", id: String(m.position), type: m.type, attempts }));
            } else {
              hold(m, attempts, firstFailedAt, next.nextAttemptAt, outcome.error);
            }
          }
        }
      }
      for (const m of waiting) hold(m, 0, null, null, null);

      // The endpoint: any success clears its failures; runs whose first attempts failed with no success count
      // up, and from ENDPOINT_DOWN_AFTER_RUNS on new changes go one at a time, at the endpoint's own backoff.
      let failures = state.endpoint_failures;
      let probeAt = state.probe_at;
      if (report.delivered > 0) {
        failures = 0;
        probeAt = null;
      } else if (firstAttemptFailed) {
        failures += 1;
        const backoff = retryDelayMs(Math.max(1, failures - ENDPOINT_DOWN_AFTER_RUNS + 1));
        probeAt = failures < ENDPOINT_DOWN_AFTER_RUNS ? null : after + Math.round(backoff * (1 - RETRY_JITTER + 2 * RETRY_JITTER * this.random()));
      }
      if (cursor !== state.cursor || report.delivered > 0 || failures !== state.endpoint_failures || probeAt !== state.probe_at) {
        write(
          `INSERT INTO state (id, cursor, delivered, endpoint_failures, probe_at) VALUES (1, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, delivered = excluded.delivered,
             endpoint_failures = excluded.endpoint_failures, probe_at = excluded.probe_at`,
          cursor, state.delivered + report.delivered, failures, probeAt,
        );
      }
      // When to look at the log again: at once while there is more (or the budget went to retries), at the
      // probe time while the endpoint is down, a second after a run that took changes, else at the heartbeat.
      const down = failures >= ENDPOINT_DOWN_AFTER_RUNS;
      const skippedLog = intake === 0 && held.length < PENDING_MAX;
      const resume = down ? Math.max(probeAt ?? after, after) : after;
      const logNext = more || skippedLog ? resume : taken > 0 && !down ? after + FOLLOW_UP_MS : null;
      report.nextRunAt = nextRun(after, remaining, logNext);
    });
    return report;
  }

  private state(): StateRow {
    return (
      this.sql.exec<StateRow>("SELECT cursor, delivered, endpoint_failures, probe_at FROM state WHERE id = 1").toArray()[0] ?? {
        cursor: null,
        delivered: 0,
        endpoint_failures: 0,
        probe_at: null,
      }
    );
  }

  /** Moves dead letters back to `held`, due at once with a new retry period; returns how many. */
  private revive(where: string, params: SqlStorageValue[]): number {
    const moved = this.sql
      .exec(
        `INSERT OR IGNORE INTO held (${HELD_COLUMNS})
         SELECT position, entity_type, entity_id, type, version, body, 0, NULL, NULL, last_error FROM dead_letters ${where} RETURNING 1`,
        ...params,
      )
      .toArray().length;
    this.sql.exec(`DELETE FROM dead_letters ${where}`, ...params).toArray();
    return moved;
  }

  /** Makes a run happen within `withinMs` (after the one under way, if any). */
  private async wake(withinMs: number): Promise<void> {
    if (this.running) {
      this.wokenDuringRun = true;
      return;
    }
    const now = this.clock();
    if (this.alarmAt !== null && this.alarmAt <= now + withinMs) return;
    this.alarmAt = now;
    await this.ctx.storage.setAlarm(now);
  }

  /** The HMAC keys, imported once per object while the settings stay the same. */
  private signingKeys(settings: WebhookSettings): Promise<CryptoKey[]> {
    const same = this.signing !== null && sameKeys(this.signing.keys, settings.keys);
    if (!same) this.signing = { keys: settings.keys, imported: importSigningKeys(settings.keys) };
    return this.signing!.imported;
  }
}

/** After a run that failed as a whole (D1 unreachable, say), the next one comes this much later. */
const RUN_ERROR_RETRY_MS = 30_000;
/** A day, for the dead letters' retention. */
const DAY_MS = 86_400_000;

/** When the next run is due: an entity's next attempt, the log's next look, or the heartbeat. */
function nextRun(now: number, remaining: Map<number, { key: string; nextAttemptAt: number | null }>, logNext: number | null): number {
  let next = now + HEARTBEAT_MS;
  // Each entity's first held message decides when that entity goes on (a waiting one: at once).
  const seen = new Set<string>();
  for (const position of [...remaining.keys()].sort((a, b) => a - b)) {
    const { key, nextAttemptAt } = remaining.get(position)!;
    if (seen.has(key)) continue;
    seen.add(key);
    next = Math.min(next, nextAttemptAt ?? now);
  }
  if (logNext !== null) next = Math.min(next, logNext);
  return Math.max(next, now);
}

function entityKey(type: string, id: string): string {
  return `${type}:${id}`;
}

function fromChange(change: ApiChange): Message {
  return {
    position: Number(change.id),
    entityType: change.entity_type,
    entityId: change.entity_id,
    type: change.type,
    version: change.version,
    body: webhookBody(change),
    held: null,
  };
}

/** The columns a held message and a dead letter share, as the operator page shows them. */
interface ShownColumns {
  position: number;
  entity_type: string;
  entity_id: string;
  type: string;
  version: number;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
}

function heldMessage(r: ShownColumns): HeldMessage {
  return {
    id: String(r.position),
    type: r.type,
    entityType: r.entity_type === "organization" ? "organization" : "user",
    entityId: r.entity_id,
    version: r.version,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at === null ? null : new Date(r.next_attempt_at).toISOString(),
    lastError: r.last_error,
  };
}

function sameKeys(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((k, i) => k.length === b[i]!.length && k.every((byte, j) => byte === b[i]![j]));
}
