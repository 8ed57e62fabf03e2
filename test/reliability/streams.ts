// Event streams for the duplicate and interleaving properties: per-entity sequences of symbolic events
// (users and organizations with keys, not ids), their timestamps, the orders they are delivered in, and two
// drivers that deliver them: the Worker (through the independent sender) or the in-memory model.
import fc from "fast-check";
import { parseEvent } from "../../src/protocol/events";
import { callWorker, CALLBACK_URL, envFor, profile } from "../helpers/worker";
import { buildEnvelope, openReply, randomNonce, toRequest } from "../sender/oneaccess-sender";
import { MemoryDirectory } from "./model";
import { keyed, keyedDirectory, type KeyedDirectory } from "./support";

export type ExtValue = string | number | boolean | null;
export type Ext = Record<string, ExtValue>;

export interface UserFields {
  name: string;
  email: string | null;
  mobile: string | null;
  disabled: boolean;
  /** Index of a root organization. */
  org: number;
  ext: Ext;
}

export interface OrgFields {
  name: string;
  /** Index of a root organization, or null (a root itself). */
  parent: number | null;
  ext: Ext;
}

interface Base {
  key: string;
  /** Unique in the stream. */
  seq: number;
  /** seq of the create this event follows (its own for a create): it cannot be sent before that answered. */
  createSeq: number;
  ts: number;
}
export type SymEvent =
  | (Base & { kind: "user"; op: "create"; fields: UserFields })
  | (Base & { kind: "user"; op: "update"; changes: Partial<UserFields> })
  | (Base & { kind: "user"; op: "delete" })
  | (Base & { kind: "org"; op: "create"; fields: OrgFields })
  | (Base & { kind: "org"; op: "update"; changes: Partial<OrgFields> & { name: string } })
  | (Base & { kind: "org"; op: "delete" });

export const ROOTS = 3;
const EXT_KEYS = ["title", "location", "level", "remote"] as const;

// --- generators -------------------------------------------------------------------------------------

const extValue: fc.Arbitrary<ExtValue> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.integer({ min: -5, max: 99 }),
  fc.boolean(),
  fc.constant(null),
);
const fullExt = fc.record(Object.fromEntries(EXT_KEYS.map((k) => [k, extValue])) as Record<(typeof EXT_KEYS)[number], fc.Arbitrary<ExtValue>>);
const partialExt = fc.record(Object.fromEntries(EXT_KEYS.map((k) => [k, extValue])) as Record<(typeof EXT_KEYS)[number], fc.Arbitrary<ExtValue>>, {
  requiredKeys: [],
});
const nameArb = fc.string({ unit: "binary", minLength: 1, maxLength: 20 });
const emailArb = fc.option(fc.nat(999).map((n) => `p${n}@example.test`), { nil: null });
const mobileArb = fc.option(fc.nat(9999).map((n) => `+86-13800${String(n).padStart(4, "0")}`), { nil: null });
const rootArb = fc.nat(ROOTS - 1);

const userFields: fc.Arbitrary<UserFields> = fc.record({ name: nameArb, email: emailArb, mobile: mobileArb, disabled: fc.boolean(), org: rootArb, ext: fullExt });
const userChanges: fc.Arbitrary<Partial<UserFields>> = fc.record(
  { name: nameArb, email: emailArb, mobile: mobileArb, disabled: fc.boolean(), org: rootArb, ext: partialExt },
  { requiredKeys: [] },
);
const orgFields: fc.Arbitrary<OrgFields> = fc.record({ name: nameArb, parent: fc.option(rootArb, { nil: null }), ext: fullExt });
const orgChanges: fc.Arbitrary<Partial<OrgFields> & { name: string }> = fc.record(
  { name: nameArb, parent: fc.option(rootArb, { nil: null }), ext: partialExt },
  { requiredKeys: ["name"] },
);

interface Epoch<F, C> {
  create: F;
  updates: C[];
  deleted: boolean;
}

/** One entity's life: one or two epochs (create, updates, delete), every epoch but the last ending deleted. */
function lifeArb<F, C>(fields: fc.Arbitrary<F>, changes: fc.Arbitrary<C>, maxUpdates: number) {
  return fc
    .array(fc.record({ create: fields, updates: fc.array(changes, { maxLength: maxUpdates }), deleted: fc.boolean() }), { minLength: 1, maxLength: 2 })
    .map((epochs: Epoch<F, C>[]) => epochs.map((e, i) => ({ ...e, deleted: i < epochs.length - 1 ? true : e.deleted })));
}

export interface StreamShape {
  users: number;
  orgs: number;
  maxUpdates: number;
  /** Updates state every attribute (full state): needed for reorderings to converge (see README). */
  fullUpdates: boolean;
}

export interface Stream {
  /** In generation order: timestamps strictly increase along it. */
  events: SymEvent[];
  /** Random priorities, for delivery orders and duplicates. */
  priorities: number[];
  dupes: Array<{ of: number; after: number; exact: boolean }>;
}

export function streamArb(shape: StreamShape): fc.Arbitrary<Stream> {
  const userLife = lifeArb(userFields, shape.fullUpdates ? userFields : userChanges, shape.maxUpdates);
  const orgLife = lifeArb(orgFields, shape.fullUpdates ? orgFields : orgChanges, shape.maxUpdates);
  return fc
    .record({
      users: fc.array(userLife, { minLength: 1, maxLength: shape.users }),
      orgs: fc.array(orgLife, { maxLength: shape.orgs }),
      merge: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      priorities: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      dupes: fc.array(fc.record({ of: fc.nat(), after: fc.nat(), exact: fc.boolean() }), { maxLength: 10 }),
    })
    .map(({ users, orgs, merge, priorities, dupes }) => {
      // Each entity's events in its own order.
      const sequences: Array<Array<Omit<SymEvent, "seq" | "createSeq" | "ts">>> = [];
      users.forEach((life, i) =>
        sequences.push(
          life.flatMap((e) => [
            { kind: "user" as const, key: `u${i}`, op: "create" as const, fields: e.create },
            ...e.updates.map((c) => ({ kind: "user" as const, key: `u${i}`, op: "update" as const, changes: c })),
            ...(e.deleted ? [{ kind: "user" as const, key: `u${i}`, op: "delete" as const }] : []),
          ]),
        ),
      );
      orgs.forEach((life, i) =>
        sequences.push(
          life.flatMap((e) => [
            { kind: "org" as const, key: `o${i}`, op: "create" as const, fields: e.create },
            ...e.updates.map((c) => ({ kind: "org" as const, key: `o${i}`, op: "update" as const, changes: c as Partial<OrgFields> & { name: string } })),
            ...(e.deleted ? [{ kind: "org" as const, key: `o${i}`, op: "delete" as const }] : []),
          ]),
        ),
      );
      // A random merge that keeps each entity's order: slots sorted by priority, each entity taking its slots in turn.
      const owners = sequences.flatMap((s, i) => s.map(() => i));
      const slots = owners.map((owner, n) => ({ owner, p: merge[n % merge.length]! * 64 + n })).sort((a, b) => a.p - b.p);
      const next = sequences.map(() => 0);
      const events: SymEvent[] = [];
      const lastCreate = new Map<string, number>();
      for (const { owner } of slots) {
        const e = sequences[owner]![next[owner]!++]!;
        const seq = events.length;
        if (e.op === "create") lastCreate.set(e.key, seq);
        events.push({ ...e, seq, createSeq: lastCreate.get(e.key)!, ts: 0 } as SymEvent);
      }
      return { events, priorities, dupes };
    });
}

/** Timestamps (ms) strictly increasing along the generation order, starting at `base`. */
export function stamp(stream: Stream, base: number): SymEvent[] {
  return stream.events.map((e, i) => ({ ...e, ts: base + 10 * i }));
}

// --- delivery orders --------------------------------------------------------------------------------

export interface Delivery {
  event: SymEvent;
  nonce: string;
  kind: "original" | "exact-duplicate" | "resend";
}

/** The stream in order, plus copies inserted after their original: the same request again, or a new nonce. */
export function withDuplicates(events: SymEvent[], dupes: Stream["dupes"]): Delivery[] {
  const out: Delivery[] = events.map((event) => ({ event, nonce: randomNonce(), kind: "original" }));
  for (const d of dupes) {
    const original = out.filter((x) => x.kind === "original")[d.of % events.length]!;
    const from = out.indexOf(original) + 1;
    const at = from + (d.after % (out.length - from + 1));
    out.splice(at, 0, d.exact ? { ...original, kind: "exact-duplicate" } : { event: original.event, nonce: randomNonce(), kind: "resend" });
  }
  return out;
}

/**
 * Any order OneAccess could deliver the events in: each event only after the create it follows has been
 * answered (ids come from create replies), otherwise anything, a later event of the same entity overtaking
 * an earlier one included. Picks, at each step, the ready event of lowest priority.
 */
export function anyDeliveryOrder(events: SymEvent[], priorities: number[]): Delivery[] {
  const pending = [...events];
  const delivered = new Set<number>();
  const out: Delivery[] = [];
  while (pending.length > 0) {
    let best = -1;
    for (let i = 0; i < pending.length; i++) {
      const e = pending[i]!;
      const ready = e.op === "create" ? events.every((o) => o.key !== e.key || o.op !== "create" || o.seq >= e.seq || delivered.has(o.seq)) : delivered.has(e.createSeq);
      if (!ready) continue;
      const rank = (x: SymEvent) => priorities[x.seq % priorities.length]! * 1000 + x.seq;
      if (best < 0 || rank(e) < rank(pending[best]!)) best = i;
    }
    const [e] = pending.splice(best, 1);
    delivered.add(e!.seq);
    out.push({ event: e!, nonce: randomNonce(), kind: "original" });
  }
  return out;
}

/** How many deliveries came after a later event of the same entity (overtaken, so ignored as older). */
export function overtaken(deliveries: Delivery[]): number {
  const newest = new Map<string, number>();
  let n = 0;
  for (const { event } of deliveries) {
    if ((newest.get(event.key) ?? -Infinity) > event.ts) n++;
    newest.set(event.key, Math.max(newest.get(event.key) ?? -Infinity, event.ts));
  }
  return n;
}

// --- expected directories (independent of src/directory) ----------------------------------------------

const rootCode = (i: number) => `root${i}`;
const nonNull = (ext: Ext) => Object.fromEntries(Object.entries(ext).filter(([, v]) => v !== null).sort(([a], [b]) => (a < b ? -1 : 1)));

function rootsView(): KeyedDirectory["organizations"] {
  return Array.from({ length: ROOTS }, (_, i) => ({ code: rootCode(i), name: `Root ${i}`, parent: null, extensions: {} }));
}

function userView(key: string, f: UserFields): KeyedDirectory["users"][number] {
  return {
    username: key,
    name: f.name,
    org: rootCode(f.org),
    disabled: f.disabled,
    firstName: null,
    middleName: null,
    lastName: null,
    mobile: f.mobile,
    email: f.email,
    extensions: nonNull(f.ext),
  };
}

function sortView(d: KeyedDirectory): KeyedDirectory {
  return {
    organizations: [...d.organizations].sort((a, b) => (a.code < b.code ? -1 : 1)),
    users: [...d.users].sort((a, b) => (a.username < b.username ? -1 : 1)),
  };
}

/** The in-order stream folded by hand: creates state everything, updates what they name, deletes remove. */
export function foldInOrder(events: SymEvent[]): KeyedDirectory {
  const users = new Map<string, UserFields>();
  const orgs = new Map<string, OrgFields>();
  for (const e of events) {
    const map = (e.kind === "user" ? users : orgs) as Map<string, UserFields | OrgFields>;
    if (e.op === "delete") map.delete(e.key);
    else if (e.op === "create") map.set(e.key, structuredClone(e.fields));
    else {
      const cur = map.get(e.key)!;
      const { ext, ...rest } = e.changes;
      const merged = { ...cur, ...rest, ext: { ...cur.ext } } as UserFields | OrgFields;
      for (const [k, v] of Object.entries(ext ?? {})) {
        if (v === null) delete merged.ext[k];
        else merged.ext[k] = v;
      }
      map.set(e.key, merged);
    }
  }
  return sortView({
    organizations: [
      ...rootsView(),
      ...[...orgs].map(([key, f]) => ({ code: key, name: f.name, parent: f.parent === null ? null : rootCode(f.parent), extensions: nonNull(f.ext) })),
    ],
    users: [...users].map(([key, f]) => userView(key, f)),
  });
}

/** Last event wins: each entity as its newest event (by timestamp) states it; gone if that is a delete. */
export function lastEventWins(events: SymEvent[]): KeyedDirectory {
  const newest = new Map<string, SymEvent>();
  for (const e of events) if ((newest.get(e.key)?.ts ?? -Infinity) < e.ts) newest.set(e.key, e);
  const users: KeyedDirectory["users"] = [];
  const orgs: KeyedDirectory["organizations"] = [...rootsView()];
  for (const e of newest.values()) {
    if (e.op === "delete") continue;
    const f = (e.op === "create" ? e.fields : e.changes) as UserFields & OrgFields;
    if (e.kind === "user") users.push(userView(e.key, f));
    else orgs.push({ code: e.key, name: f.name, parent: f.parent === null ? null : rootCode(f.parent), extensions: nonNull(f.ext) });
  }
  return sortView({ organizations: orgs, users });
}

// --- rendering and drivers --------------------------------------------------------------------------

/** One namespace of the directory: its prefix, its roots' ids, and the ids its creates were answered with. */
export interface Namespace {
  prefix: string;
  roots: string[];
  ids: Map<string, string>;
}

function render(e: SymEvent, ns: Namespace): { type: string; payload: Record<string, unknown> } {
  const name = `${ns.prefix}${e.key}`;
  const id = () => {
    const known = ns.ids.get(e.key);
    if (known === undefined) throw new Error(`${e.key}: no id yet (delivered before its create answered)`);
    return known;
  };
  if (e.op === "delete") return { type: e.kind === "user" ? "DELETE_USER" : "DELETE_ORGANIZATION", payload: { id: id() } };
  if (e.kind === "user") {
    const f: Partial<UserFields> = e.op === "create" ? e.fields : e.changes;
    const payload: Record<string, unknown> = e.op === "create" ? { username: name, password: "Stream-Secret-1" } : { id: id(), username: name };
    if (f.name !== undefined) payload.name = f.name;
    if (f.email !== undefined) payload.email = f.email;
    if (f.mobile !== undefined) payload.mobile = f.mobile;
    if (f.disabled !== undefined) payload.disabled = f.disabled;
    if (f.org !== undefined) payload.organizationId = ns.roots[f.org];
    Object.assign(payload, f.ext ?? {});
    return { type: e.op === "create" ? "CREATE_USER" : "UPDATE_USER", payload };
  }
  const f: Partial<OrgFields> = e.op === "create" ? e.fields : e.changes;
  const payload: Record<string, unknown> = e.op === "create" ? { code: name } : { id: id(), code: name };
  payload.name = f.name;
  // A create names its parent or none; an update without parentId keeps it, "" moves it to the root.
  if (f.parent !== undefined && f.parent !== null) payload.parentId = ns.roots[f.parent];
  else if (f.parent === null && e.op === "update") payload.parentId = "";
  Object.assign(payload, f.ext ?? {});
  return { type: e.op === "create" ? "CREATE_ORGANIZATION" : "UPDATE_ORGANIZATION", payload };
}

export interface Reply {
  code: string;
  id?: string;
}

export interface Driver {
  send(type: string, payload: Record<string, unknown>, nonce: string, ts: number): Promise<Reply>;
  directory(prefix: string): Promise<KeyedDirectory>;
}

function idOf(plaintext: string): string | undefined {
  return plaintext.startsWith("{") ? (JSON.parse(plaintext) as { id?: string }).id : undefined;
}

/** The Worker through the independent sender; exact duplicates resend the first request's very bytes. */
export function workerDriver(): Driver {
  const p = profile("sha1+gcm", "iv12");
  const env = { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "0" };
  const bodies = new Map<string, string>();
  return {
    async send(type, payload, nonce, ts) {
      let body = bodies.get(nonce);
      if (body === undefined) {
        body = JSON.stringify(await buildEnvelope(p, type, JSON.stringify(payload), { nonce, timestamp: ts }));
        bodies.set(nonce, body);
      }
      const reply = await openReply(p, await callWorker(toRequest(CALLBACK_URL, p, body), env));
      return { code: reply.code, id: idOf(reply.plaintext) };
    },
    directory: (prefix) => keyedDirectory(prefix),
  };
}

/** The in-memory model; a nonce seen before gets its first reply again, as the replay guard answers. */
export function modelDriver(): Driver & { model: MemoryDirectory } {
  const model = new MemoryDirectory();
  const replies = new Map<string, Reply>();
  return {
    model,
    async send(type, payload, nonce, ts) {
      const seen = replies.get(nonce);
      if (seen) return seen;
      const event = parseEvent(type as "CREATE_USER", JSON.stringify(payload));
      if (!event.ok) return { code: "400" };
      if (event.value.type === "CHECK_URL") throw new Error("not a directory event");
      const outcome = model.apply(event.value, ts);
      const reply = { code: outcome.code, id: idOf(outcome.replyData) };
      replies.set(nonce, reply);
      return reply;
    },
    directory: async (prefix) => keyed(model.live(), prefix),
  };
}

/** Creates the roots (older than every event), then delivers; returns each delivery's reply code. */
export async function run(driver: Driver, prefix: string, deliveries: Delivery[], rootsTs: number): Promise<{ ns: Namespace; codes: string[] }> {
  const ns: Namespace = { prefix, roots: [], ids: new Map() };
  for (let i = 0; i < ROOTS; i++) {
    const reply = await driver.send("CREATE_ORGANIZATION", { code: `${prefix}${rootCode(i)}`, name: `Root ${i}` }, randomNonce(), rootsTs + i);
    if (reply.code !== "200" || reply.id === undefined) throw new Error(`root ${i}: ${reply.code}`);
    ns.roots.push(reply.id);
  }
  const codes: string[] = [];
  for (const d of deliveries) {
    const { type, payload } = render(d.event, ns);
    const reply = await driver.send(type, payload, d.nonce, d.event.ts);
    codes.push(reply.code);
    if (d.event.op === "create" && reply.code === "200" && reply.id !== undefined) {
      const known = ns.ids.get(d.event.key);
      if (known !== undefined && known !== reply.id) throw new Error(`${d.event.key}: create answered ${reply.id}, was ${known}`);
      ns.ids.set(d.event.key, reply.id);
    }
  }
  return { ns, codes };
}
