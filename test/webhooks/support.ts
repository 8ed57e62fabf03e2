// Shared by the webhook tests. The endpoint is the sink Worker of vitest.config.ts (every outbound fetch of the
// Worker reaches it); the consumer's side is the official `standardwebhooks` package. Webhooks are off in the
// test env, as in a deployment's default: a test turns them on in the objects it uses (the dispatcher and, for
// pokes, the event ledgers) by swapping their env, and drives the dispatcher on its own clock, far in the
// future, so its alarms never fire by themselves while a test runs: every run is one the test asked for.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { shardName } from "../../src/ingest/shard";
import type { EventLedger } from "../../src/ingest/event-ledger";
import type { RunReport, WebhookDispatcher } from "../../src/webhooks/dispatcher";
import { DispatcherPoke } from "../../src/webhooks/poke";
import { DISPATCHER_NAME } from "../../src/webhooks/stub";
import { testEnv as baseEnv } from "../helpers/worker";
import type { TestEnv } from "../helpers/env";
import { b64, randomNonce } from "../sender/oneaccess-sender";

export const testEnv = baseEnv as TestEnv & { WEBHOOK_SINK: Fetcher };

/** Test secrets, Standard Webhooks style: `whsec_` + Base64 of 32 bytes. */
export const SECRET = `whsec_${b64(new TextEncoder().encode("test webhook key one, 32 bytes!!"))}`;
export const PREVIOUS_SECRET = `whsec_${b64(new TextEncoder().encode("test webhook key two, 32 bytes!!"))}`;
export const HOOK_URL = "https://hooks.receiver.test/oneaccess?token=path-secret-9f3c";

/** A time far in the future: alarms set on this clock never fire by themselves during a test. */
export const T0 = Date.UTC(2031, 0, 1);
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

export type WebhookEnv = Partial<Record<keyof Env, string>>;
export const webhookEnv = (extra: WebhookEnv = {}): WebhookEnv => ({ WEBHOOK_URL: HOOK_URL, WEBHOOK_SECRET: SECRET, WEBHOOK_SECRET_PREVIOUS: "", ...extra });

type WithEnv = { env: Env };

// --- the endpoint ----------------------------------------------------------------------------------------

export interface Received {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  /** What the sink answered (a status, or "hang"). */
  answered: number | "hang";
  /** The sink's real time. */
  at: number;
}

export interface SinkMode {
  /** Answer to every message (default 200). */
  status?: number;
  /** Per webhook-id: a status, or "hang" (no answer for 30 s). */
  byId?: Record<string, number | "hang">;
  /** Per entity id (the body's data.entity_id): a status, or "hang". */
  byEntity?: Record<string, number | "hang">;
  /** Wait this long before answering each message. */
  delayMs?: number;
}

const control = (path: string, body?: unknown) =>
  testEnv.WEBHOOK_SINK.fetch(`http://sink.control${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });

export const sink = {
  async mode(mode: SinkMode): Promise<void> {
    await (await control("/mode", mode)).text();
  },
  async reset(): Promise<void> {
    await (await control("/reset", {})).text();
  },
  async received(): Promise<Received[]> {
    return ((await (await control("/received")).json()) as { received: Received[] }).received;
  },
  async maxInFlight(): Promise<number> {
    return ((await (await control("/received")).json()) as { maxInFlight: number }).maxInFlight;
  },
};

/** The body's parts, as a consumer reads them. */
export interface Body {
  type: string;
  timestamp: string;
  data: { id: string; type: string; entity_type: string; entity_id: string; version: number; [k: string]: unknown };
}
export const bodyOf = (r: Received) => JSON.parse(r.body) as Body;

/** Verifies a received message with the official package as of `atSeconds` (its clock is Date.now, swapped synchronously). */
export function verifyAt(secret: string, r: Pick<Received, "body" | "headers">, atSeconds: number): unknown {
  const realNow = Date.now;
  Date.now = () => atSeconds * 1000;
  try {
    return new Webhook(secret).verify(r.body, r.headers);
  } finally {
    Date.now = realNow;
  }
}

/** The error `verifyAt` throws, or null when the message verifies. */
export function verifyError(secret: string, r: Pick<Received, "body" | "headers">, atSeconds: number): string | null {
  try {
    verifyAt(secret, r, atSeconds);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

// --- the dispatcher --------------------------------------------------------------------------------------

export type Dispatcher = DurableObjectStub<WebhookDispatcher>;

/**
 * A dispatcher object with webhooks on, its clock at `now` and its jitter at the middle (delays exactly as
 * scheduled). A fresh name by default, starting after the newest change already in the log (other tests' changes
 * are not its business); DISPATCHER_NAME is the one the ledgers poke and /admin shows.
 */
export async function dispatcher(opts: { name?: string; now?: number; env?: WebhookEnv; fromNewest?: boolean } = {}): Promise<Dispatcher> {
  const stub: Dispatcher = testEnv.WEBHOOK_DISPATCHER.get(testEnv.WEBHOOK_DISPATCHER.idFromName(opts.name ?? `test-${randomNonce(12)}`));
  const now = opts.now ?? T0;
  const env = { ...testEnv, ...webhookEnv(opts.env) } as unknown as Env;
  const newest = opts.fromNewest === false ? null : await newestChange();
  await runInDurableObject(stub, async (instance: WebhookDispatcher, state) => {
    (instance as unknown as WithEnv).env = env;
    instance.clock = () => now;
    instance.random = () => 0.5;
    // A named object may have served an earlier test of the file: it starts over.
    for (const table of ["held", "dead_letters", "state"]) state.storage.sql.exec(`DELETE FROM ${table}`);
    await state.storage.deleteAlarm();
    (instance as unknown as { alarmAt: number | null }).alarmAt = null;
    if (newest !== null) {
      state.storage.sql.exec("INSERT OR REPLACE INTO state (id, cursor, delivered, endpoint_failures, probe_at) VALUES (1, ?, 0, 0, NULL)", newest);
    }
  });
  return stub;
}

export const setClock = (stub: Dispatcher, now: number) =>
  runInDurableObject(stub, (instance: WebhookDispatcher) => {
    instance.clock = () => now;
  });

export const setEnv = (stub: Dispatcher, extra: WebhookEnv) =>
  runInDurableObject(stub, (instance) => {
    (instance as unknown as WithEnv).env = { ...testEnv, ...webhookEnv(extra) } as unknown as Env;
  });

export const alarmOf = (stub: Dispatcher) => runInDurableObject(stub, (_i, state) => state.storage.getAlarm());

/** What the object holds: failing and waiting messages, dead letters, its state row. */
export const stored = (stub: Dispatcher) =>
  runInDurableObject(stub, (_i, state) => {
    const sql = state.storage.sql;
    return {
      held: sql.exec<{ position: number; entity_id: string; attempts: number; next_attempt_at: number | null; last_error: string | null }>(
        "SELECT position, entity_id, attempts, next_attempt_at, last_error FROM held ORDER BY position",
      ).toArray(),
      dead: sql.exec<{ position: number; entity_id: string; attempts: number; last_error: string | null; dead_at: number }>(
        "SELECT position, entity_id, attempts, last_error, dead_at FROM dead_letters ORDER BY position",
      ).toArray(),
      state: sql.exec<{ cursor: number | null; delivered: number; endpoint_failures: number; probe_at: number | null }>(
        "SELECT cursor, delivered, endpoint_failures, probe_at FROM state",
      ).toArray()[0],
    };
  });

/** Fires the alarm the way the runtime does (it must be set and due on the object's clock); returns the run's report. */
export async function fireAlarm(stub: Dispatcher): Promise<RunReport> {
  const report = await fireAlarmOf(stub);
  if (report === null) throw new Error("the run did nothing: webhooks are off");
  return report;
}

/** Fires the alarm; the run's report, or null when webhooks were off. */
export async function fireAlarmOf(stub: Dispatcher): Promise<RunReport | null> {
  const { alarm, now } = await runInDurableObject(stub, async (instance: WebhookDispatcher, state) => ({ alarm: await state.storage.getAlarm(), now: instance.clock() }));
  if (alarm === null) throw new Error("no alarm is set");
  if (alarm > now) throw new Error(`the alarm is due ${alarm - now} ms later`);
  if (!(await runDurableObjectAlarm(stub))) throw new Error("the alarm did not run");
  return runInDurableObject(stub, (instance: WebhookDispatcher) => instance.lastReport);
}

/** Fires every alarm due on the object's clock until none is (the runs a busy dispatcher makes back to back). */
export async function settle(stub: Dispatcher, maxRuns = 100): Promise<RunReport[]> {
  const reports: RunReport[] = [];
  for (let i = 0; i < maxRuns; i++) {
    const { alarm, now } = await runInDurableObject(stub, async (instance: WebhookDispatcher, state) => ({ alarm: await state.storage.getAlarm(), now: instance.clock() }));
    if (alarm === null || alarm > now) return reports;
    reports.push(await fireAlarm(stub));
  }
  throw new Error(`still busy after ${maxRuns} runs`);
}

// --- the change log --------------------------------------------------------------------------------------

export async function newestChange(): Promise<number> {
  const row = await testEnv.DB.prepare("SELECT max(id) AS newest FROM deliveries").first<{ newest: number | null }>();
  return row?.newest ?? 0;
}

let seq = 0;
/** Appends a change to the log directly (the dispatcher reads only the log); returns its position. */
export async function appendChange(entityId: string, opts: { type?: string; version?: number; at?: number } = {}): Promise<number> {
  const type = opts.type ?? (entityId.startsWith("org_") ? "organization.updated" : "user.updated");
  const at = opts.at ?? T0;
  const entity = type.endsWith(".deleted") ? null : JSON.stringify({ id: entityId, name: `entity ${entityId}`, version: opts.version ?? 1 });
  const row = await testEnv.DB.prepare(
    `INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms, change_type, changed, entity_version, event_at, entity)
     VALUES (?, 'UPDATE_USER', ?, '200', 'success', ?, 1, ?, '["name"]', ?, ?, ?) RETURNING id`,
  )
    .bind(at, `webhook-test-${++seq}`, entityId, type, opts.version ?? 1, at - 1000, entity)
    .first<{ id: number }>();
  return row!.id;
}

/** Appends an audit row that is not a change (a refused event): the log has rows the feed skips. */
export async function appendNonChange(): Promise<number> {
  const row = await testEnv.DB.prepare(
    "INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms) VALUES (?, 'CHECK_URL', ?, '200', 'success', NULL, 1) RETURNING id",
  )
    .bind(T0, `webhook-test-${++seq}`)
    .first<{ id: number }>();
  return row!.id;
}

// --- the event ledgers -----------------------------------------------------------------------------------

export const ledger = (shard: number): DurableObjectStub<EventLedger> => testEnv.EVENT_LEDGER.get(testEnv.EVENT_LEDGER.idFromName(shardName(shard)));

/** Trailing pokes the ledgers scheduled (held here instead of on a timer): `pokesSent` sends them. */
const trailingPokes: Array<() => void> = [];

type WithPoke = { env: Env; dispatcherPoke: DispatcherPoke; clock: () => number };

/**
 * Turns webhooks on in the first `shards` ledger objects (they poke DISPATCHER_NAME), with their trailing pokes
 * held for `pokesSent` rather than left on a timer that would fire in a later test; returns how to undo it.
 */
export async function ledgersWithWebhooks(shards = 4, extra: WebhookEnv = {}): Promise<() => Promise<void>> {
  const saved: Array<{ env: Env; poke: DispatcherPoke }> = [];
  for (let s = 0; s < shards; s++) {
    await runInDurableObject(ledger(s), (instance) => {
      const own = instance as unknown as WithPoke;
      saved[s] = { env: own.env, poke: own.dispatcherPoke };
      own.env = { ...own.env, ...webhookEnv(extra) } as unknown as Env;
      own.dispatcherPoke = new DispatcherPoke(() => own.clock(), (run) => trailingPokes.push(run));
    });
  }
  return async () => {
    trailingPokes.length = 0;
    for (let s = 0; s < shards; s++) {
      await runInDurableObject(ledger(s), (instance) => {
        const own = instance as unknown as WithPoke;
        own.env = saved[s]!.env;
        own.dispatcherPoke = saved[s]!.poke;
      });
    }
  };
}

/** Sends the held trailing pokes, then waits for every ledger's last poke (never awaited on the request's path). */
export async function pokesSent(shards = 4): Promise<void> {
  for (const run of trailingPokes.splice(0)) run();
  for (let s = 0; s < shards; s++) await runInDurableObject(ledger(s), (instance) => (instance as unknown as WithPoke).dispatcherPoke.sent);
}

export { DISPATCHER_NAME };
