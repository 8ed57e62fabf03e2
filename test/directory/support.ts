// Shared by the directory tests: send one event through the Worker with the independent sender, and look
// at the rows it left. Every request gets a fresh nonce (the sender's default) and, unless a test says
// otherwise, a fresh millisecond timestamp, so last-event-wins never ignores a test's own events.
import { readDirectory } from "../../src/directory/snapshot";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import { shardsOf, withDirectoryDb } from "../helpers/directory-db";
import { buildRequest, openReply, toRequest, type Envelope, type SenderProfile } from "../sender/oneaccess-sender";

export type Overrides = Partial<Record<keyof Env, unknown>>;

let clock = Date.now();
/** Strictly increasing millisecond timestamps (13 digits), within any timestamp window. */
export function nextTimestamp(): number {
  clock += 1;
  return clock;
}

export interface SendOptions {
  timestamp?: number;
  nonce?: string;
  /** Extra env overrides for this call (PASSWORD_POLICY, DB, …). */
  env?: Overrides;
  profile?: SenderProfile;
}

export interface Sent {
  status: number;
  code: string;
  message: string;
  /** The reply's data, opened. */
  plaintext: string;
  /** The id in a `{"id": ...}` reply, else undefined. */
  id: string | undefined;
  envelope: Envelope;
  /** Resends the exact same request (same nonce, same body), optionally with other overrides. */
  resend: (env?: Overrides) => Promise<Sent>;
}

/** The Worker's env for a profile; the timestamp window is off so tests may send old timestamps. */
export function workerEnv(p: SenderProfile, extra: Overrides = {}): Overrides {
  return { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "0", ...extra };
}

/** Sends an envelope already built (its exact bytes, as a retry would), with the same bindings as `send`. */
export async function sendEnvelope(p: SenderProfile, envelope: Envelope, env: Overrides = {}): Promise<Sent> {
  return deliver(p, envelope, env);
}

async function deliver(p: SenderProfile, envelope: Envelope, env: Overrides): Promise<Sent> {
  const call = () => callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), workerEnv(p, env));
  // A D1 override reaches the directory write too, which runs in the replay object.
  const res = env.DB ? await withDirectoryDb(env.DB as D1Database, call, shardsOf(env)) : await call();
  const reply = await openReply(p, res);
  const id = reply.plaintext.startsWith("{") ? (JSON.parse(reply.plaintext) as { id?: string }).id : undefined;
  return {
    status: reply.status,
    code: reply.code,
    message: reply.message,
    plaintext: reply.plaintext,
    id,
    envelope,
    resend: (other = env) => deliver(p, envelope, other),
  };
}

export async function send(eventType: string, payload: unknown, opts: SendOptions = {}): Promise<Sent> {
  const p = opts.profile ?? profile("sha1+gcm");
  const { envelope } = await buildRequest(CALLBACK_URL, p, eventType, payload, {
    timestamp: opts.timestamp ?? nextTimestamp(),
    ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}),
  });
  return deliver(p, envelope, opts.env ?? {});
}

/** Sends an event that must succeed with an id, and returns the id. */
export async function sendForId(eventType: string, payload: unknown, opts: SendOptions = {}): Promise<string> {
  const sent = await send(eventType, payload, opts);
  if (sent.code !== "200" || sent.id === undefined) {
    throw new Error(`${eventType} answered ${sent.code} ${sent.message}`);
  }
  return sent.id;
}

export const createOrg = (code: string, name: string, parentId?: string, extra: Record<string, unknown> = {}) =>
  sendForId("CREATE_ORGANIZATION", { code, name, ...(parentId !== undefined ? { parentId } : {}), ...extra });

export const createUser = (username: string, attrs: Record<string, unknown> = {}) =>
  sendForId("CREATE_USER", { username, name: `Name of ${username}`, ...attrs });

export const db = () => testEnv.DB;

export async function orgRow(id: string) {
  return db().prepare("SELECT * FROM organizations WHERE id = ?").bind(id).first<Record<string, unknown>>();
}

export async function userRow(id: string) {
  return db().prepare("SELECT * FROM users WHERE id = ?").bind(id).first<Record<string, unknown>>();
}

export async function deliveriesFor(nonce: string) {
  const { results } = await db()
    .prepare("SELECT event_type, nonce, code, message, entity_id, received_at, duration_ms FROM deliveries WHERE nonce = ? ORDER BY id")
    .bind(nonce)
    .all<{ event_type: string; nonce: string; code: string; message: string; entity_id: string | null; received_at: number; duration_ms: number }>();
  return results;
}

/** The live directory, or one entity of it. */
export async function liveOrg(id: string) {
  return (await readDirectory(db())).organizations.find((o) => o.id === id);
}

export async function liveUser(id: string) {
  return (await readDirectory(db())).users.find((u) => u.id === id);
}

/** Every row of every table of ours, as text: for "this value is stored nowhere" checks. */
export async function everyStoredRow(): Promise<string> {
  const { results: tables } = await db()
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
    .all<{ name: string }>();
  const dumps: string[] = [];
  for (const { name } of tables) {
    const { results } = await db().prepare(`SELECT * FROM "${name}"`).all();
    dumps.push(`${name}: ${JSON.stringify(results)}`);
  }
  return dumps.join("\n");
}

export const ID_SHAPE = { org: /^org_[0-9A-Za-z]{12}$/, usr: /^usr_[0-9A-Za-z]{12}$/ };

export type Batch = (statements: D1PreparedStatement[]) => Promise<D1Result[]>;

/** The test database under a binding object of its own, optionally with `batch` replaced; everything else goes to the real database. */
export function ownBinding(batch?: Batch): D1Database {
  const real = db();
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "batch" && batch) return batch;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A binding of its own that records the size of every D1 batch reaching the database. */
export function countingBinding(): { binding: D1Database; sizes: number[] } {
  const sizes: number[] = [];
  const binding = ownBinding((statements) => {
    sizes.push(statements.length);
    return db().batch(statements);
  });
  return { binding, sizes };
}
