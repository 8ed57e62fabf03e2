// Event streams for the directory properties: generators, delivery plans, and two drivers that deliver a
// plan (the Worker through the independent sender, or the in-memory model of src/directory/rules.ts).
// Every plan carries what each delivery must answer and what the directory must hold at the end, both from
// the contract's rules restated in reference.ts (never from src/directory).
//
// Two kinds of stream:
// - directory streams (`directoryStreamArb`): OneAccess's view of a company changing, event by event:
//   nested organizations, moves (attempted cycles included), renames of names and keys, deletes (of
//   non-empty organizations included), revivals, references to organizations that are deleted or were never
//   created, creates resent by a full sync, timestamps in seconds and in milliseconds with many events in
//   one second. Delivered in order, a few events held back behind other entities' events, plus exact
//   duplicates and resends under new nonces anywhere later;
// - interleaving streams (`interleavingStreamArb`): per-entity sequences of full-state events over a tree
//   that cannot close a cycle, delivered in any order their ids allow.
import fc from "fast-check";
import { parseEvent } from "../../src/protocol/events";
import { toWire } from "../../src/protocol/failures";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import { buildEnvelope, openReply, randomNonce, toRequest } from "../sender/oneaccess-sender";
import { MemoryDirectory } from "./model";
import {
  refName,
  Reference,
  type DirectoryView,
  type Ext,
  type ExtValue,
  type OrgEvent,
  type OrgRef,
  type OrgRow,
  type OrgView,
  type Outcome,
  type SymEvent,
  type UserEvent,
  type UserRow,
  type UserView,
  type Wire,
} from "./reference";

// --- field generators -------------------------------------------------------------------------------

const EXT_KEYS = ["title", "location", "level", "remote"] as const;
const extValue: fc.Arbitrary<ExtValue> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.integer({ min: -5, max: 99 }),
  fc.boolean(),
  fc.constant(null),
);
const extModel = Object.fromEntries(EXT_KEYS.map((k) => [k, extValue])) as Record<(typeof EXT_KEYS)[number], fc.Arbitrary<ExtValue>>;
const fullExt: fc.Arbitrary<Ext> = fc.record(extModel);
const partialExt: fc.Arbitrary<Ext> = fc.record(extModel, { requiredKeys: [] });
const nameArb = fc.string({ unit: "binary", minLength: 1, maxLength: 20 });
const emailArb = fc.option(fc.nat(999).map((n) => `p${n}@example.test`), { nil: null });
const mobileArb = fc.option(fc.nat(9999).map((n) => `+86-13800${String(n).padStart(4, "0")}`), { nil: null });

// --- timestamps -------------------------------------------------------------------------------------

/** The step from the previous event's timestamp, and how this one travels. */
export interface Tick {
  gap: number;
  wire: Wire;
}

/** Mostly the same instant or the same second; seconds (10 digits) and milliseconds (13) mixed. */
const tickArb: fc.Arbitrary<Tick> = fc.record({
  gap: fc.oneof(
    { weight: 5, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 999 }) },
    { weight: 3, arbitrary: fc.constant(1000) },
    { weight: 1, arbitrary: fc.integer({ min: 1001, max: 5000 }) },
  ),
  wire: fc.constantFrom<Wire>("s", "s", "s-text", "ms", "ms", "ms-text"),
});

const inSeconds = (wire: Wire) => wire === "s" || wire === "s-text";

/** The next timestamp: never earlier; a seconds timestamp is a whole second (so often the previous one). */
function nextTs(previous: number, tick: Tick): number {
  const at = previous + tick.gap;
  return inSeconds(tick.wire) ? Math.ceil(at / 1000) * 1000 : at;
}

/** A stream's time zero: a whole second an hour ago (the Worker runs with the timestamp window off). */
export function streamStart(): number {
  return Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
}

// --- directory streams ------------------------------------------------------------------------------

const OPS = {
  createOrg: 9,
  createUser: 9,
  moveOrg: 8,
  renameOrg: 4,
  deleteOrg: 7,
  reviveOrg: 4,
  recreateOrg: 2,
  moveUser: 7,
  updateUser: 6,
  deleteUser: 5,
  reviveUser: 4,
  recreateUser: 3,
  reuseKey: 1,
  touchDeleted: 1,
} as const;
type Op = keyof typeof OPS;

/**
 * One step of OneAccess's side, in random numbers: the interpreter gives them a meaning against the
 * directory as it stands (which organization, which mode of choosing a parent...), so every step is
 * meaningful whatever came before, and shrinking keeps working.
 */
export interface Intent {
  op: Op;
  pick: number;
  other: number;
  mode: number;
  /** Another event for the entity the previous one of its kind touched (several in one second, often). */
  burst: boolean;
  bits: number;
  tick: Tick;
  name: string;
  ext: Ext;
  patch: Ext;
  email: string | null;
  mobile: string | null;
  disabled: boolean | undefined;
}

const intentArb: fc.Arbitrary<Intent> = fc.record({
  op: fc.oneof(...Object.entries(OPS).map(([op, weight]) => ({ weight, arbitrary: fc.constant(op as Op) }))),
  pick: fc.nat(),
  other: fc.nat(),
  mode: fc.nat(9),
  burst: fc.nat(4).map((n) => n === 0),
  bits: fc.nat(63),
  tick: tickArb,
  name: nameArb,
  ext: fullExt,
  patch: partialExt,
  email: emailArb,
  mobile: mobileArb,
  disabled: fc.option(fc.boolean(), { nil: undefined }),
});

export interface DirectoryStream {
  /** In generation order (OneAccess's order): timestamps never decrease along it. */
  events: SymEvent[];
  /** Events held back behind the next few events of other entities. */
  holds: Array<{ of: number; by: number }>;
  /**
   * Copies inserted after their original: the same request again, or the event under a new nonce. `aimed`:
   * of an event that has a later one of its entity in the same instant, and just behind that one.
   */
  dupes: Array<{ of: number; after: number; exact: boolean; aimed: boolean }>;
}

export function directoryStreamArb(size: { minIntents: number; maxIntents: number; maxCopies: number }): fc.Arbitrary<DirectoryStream> {
  return fc
    .record({
      intents: fc.array(intentArb, { minLength: size.minIntents, maxLength: size.maxIntents, size: "max" }),
      holds: fc.array(fc.record({ of: fc.nat(), by: fc.nat() }), { maxLength: Math.ceil(size.maxCopies / 2), size: "max" }),
      // Copies close behind their original (a retry), anywhere later, or aimed just behind a later event of
      // the same entity in the same instant (where only the replay guard can keep an exact duplicate out).
      dupes: fc.array(fc.record({ of: fc.nat(), after: fc.oneof(fc.nat(4), fc.nat()), exact: fc.boolean(), aimed: fc.nat(2).map((n) => n === 0) }), {
        maxLength: size.maxCopies,
        size: "max",
      }),
    })
    .map(({ intents, holds, dupes }) => ({ events: interpret(intents), holds, dupes }));
}

const pickFrom = <T>(list: T[], n: number): T | undefined => (list.length === 0 ? undefined : list[n % list.length]);

/** Runs the intents against the reference rules, in order, turning each into one event. */
export function interpret(intents: Intent[]): SymEvent[] {
  const ref = new Reference();
  const events: SymEvent[] = [];
  const last: { org: string | null; user: string | null } = { org: null, user: null };
  let clock = 0;
  let orgs = 0;
  let users = 0;
  let renames = 0;

  const liveOrgs = () => [...ref.orgs.values()].filter((o) => !o.deleted);
  const deadOrgs = () => [...ref.orgs.values()].filter((o) => o.deleted);
  const liveUsers = () => [...ref.users.values()].filter((u) => !u.deleted);
  const deadUsers = () => [...ref.users.values()].filter((u) => u.deleted);
  const target = <T extends { handle: string }>(kind: "org" | "user", list: T[], it: Intent): T | undefined =>
    (it.burst ? list.find((x) => x.handle === last[kind]) : undefined) ?? pickFrom(list, it.pick);
  const deepest = (except?: string) => {
    const live = liveOrgs().filter((o) => o.handle !== except);
    const max = Math.max(0, ...live.map((o) => ref.depth(o.handle)));
    return live.filter((o) => ref.depth(o.handle) === max);
  };
  const descendants = (handle: string) => [...ref.orgs.values()].filter((o) => o.handle !== handle && ref.chainContains(o.parent, handle));
  const asRef = (o: OrgRow | undefined): OrgRef => (o ? { handle: o.handle } : null);

  /** A parent or organization: deep in the tree, anywhere, a tombstone (missing), never created, or none. */
  const orgRef = (mode: number, n: number, except?: string): OrgRef => {
    const live = liveOrgs().filter((o) => o.handle !== except);
    if (mode <= 2) return asRef(pickFrom(deepest(except), n));
    if (mode <= 5) return asRef(pickFrom(live, n));
    if (mode === 6) return asRef(pickFrom(deadOrgs().filter((o) => o.handle !== except), n) ?? pickFrom(live, n));
    if (mode === 7) return { ghost: `g${n % 3}` };
    return null;
  };

  const createOrg = (it: Intent, code?: string): OrgEvent => {
    const handle = `o${orgs++}`;
    return { kind: "org", op: "create", handle, code: code ?? handle, name: it.name, parent: orgRef(it.mode, it.other), ext: it.ext };
  };
  const createUser = (it: Intent, username?: string): UserEvent => {
    const handle = `u${users++}`;
    const org = orgRef(it.mode, it.other);
    return { kind: "user", op: "create", handle, username: username ?? handle, name: it.name, org, disabled: it.disabled, email: it.email, mobile: it.mobile, ext: it.ext };
  };

  const build = (it: Intent): (OrgEvent | UserEvent) & { pinned?: true } => {
    switch (it.op) {
      case "createOrg":
        return createOrg(it);
      case "createUser":
        return createUser(it);
      case "moveOrg": {
        const o = target("org", liveOrgs(), it);
        if (!o) return createOrg(it);
        const down = descendants(o.handle);
        let parent: OrgRef;
        if (it.mode <= 1) parent = asRef(pickFrom(down, it.other)) ?? { handle: o.handle }; // a cycle, or itself
        else if (it.mode === 2) parent = { handle: o.handle };
        else if (it.mode <= 5) parent = asRef(pickFrom(liveOrgs().filter((x) => x.handle !== o.handle), it.other));
        else if (it.mode === 6) parent = null;
        else if (it.mode === 7) parent = asRef(pickFrom(deadOrgs(), it.other));
        else if (it.mode === 8) parent = { ghost: `g${it.other % 3}` };
        else parent = asRef(pickFrom(deepest(o.handle), it.other));
        return { kind: "org", op: "update", handle: o.handle, code: o.code, name: it.bits & 1 ? it.name : o.name, parent, ext: it.bits & 2 ? it.patch : {} };
      }
      case "renameOrg": {
        const o = target("org", liveOrgs(), it);
        if (!o) return createOrg(it);
        let code = o.code;
        if (it.mode === 6 || it.mode === 7) code = `${o.handle}.r${renames++}`;
        if (it.mode >= 8) code = pickFrom([...ref.orgs.values()].filter((x) => x.handle !== o.handle), it.other)?.code ?? code;
        const parent = (it.bits & 3) === 1 ? { parent: o.parent } : {};
        return { kind: "org", op: "update", handle: o.handle, code, name: it.name, ...parent, ext: it.patch, ...(code !== o.code ? { pinned: true as const } : {}) };
      }
      case "deleteOrg": {
        const live = liveOrgs();
        const empty = live.filter((o) => ref.liveChildren(o.handle) + ref.liveMembers(o.handle) === 0);
        // Mostly an empty one (applied), else any (often refused: not empty), sometimes a tombstone (200).
        let o: OrgRow | undefined;
        if (it.mode <= 4) o = pickFrom(empty, it.pick) ?? pickFrom(live, it.pick);
        else if (it.mode === 9) o = pickFrom(deadOrgs(), it.pick) ?? pickFrom(live, it.pick);
        else o = target("org", live, it);
        return o ? { kind: "org", op: "delete", handle: o.handle } : createOrg(it);
      }
      case "reviveOrg": {
        const o = target("org", deadOrgs(), it);
        if (!o) return createOrg(it);
        // Under one of its own descendants (a waiting child): a cycle, refused.
        const parent = it.mode <= 1 ? (asRef(pickFrom(descendants(o.handle), it.other)) ?? null) : orgRef(it.mode, it.other, o.handle);
        return { kind: "org", op: "create", handle: o.handle, code: o.code, name: it.name, parent, ext: it.ext };
      }
      case "recreateOrg": {
        const o = target("org", liveOrgs(), it);
        if (!o) return createOrg(it);
        const parent = it.bits & 2 ? o.parent : orgRef(it.mode, it.other, o.handle);
        return { kind: "org", op: "create", handle: o.handle, code: o.code, name: it.bits & 1 ? o.name : it.name, parent, ext: it.bits & 4 ? o.ext : it.ext };
      }
      case "moveUser": {
        const u = target("user", liveUsers(), it);
        if (!u) return createUser(it);
        const org = it.mode === 9 ? null : orgRef(it.mode === 8 ? 7 : it.mode === 7 ? 6 : it.mode, it.other);
        return { kind: "user", op: "update", handle: u.handle, username: u.username, org, ...(it.bits & 1 ? { name: it.name } : {}), ext: {} };
      }
      case "updateUser": {
        const u = target("user", liveUsers(), it);
        if (!u) return createUser(it);
        let username = u.username;
        if (it.mode === 7 || it.mode === 8) username = `${u.handle}.r${renames++}`;
        if (it.mode === 9) username = pickFrom([...ref.users.values()].filter((x) => x.handle !== u.handle), it.other)?.username ?? username;
        const bits = it.bits === 0 ? 1 : it.bits;
        return {
          kind: "user",
          op: "update",
          handle: u.handle,
          username,
          ...(bits & 1 ? { name: it.name } : {}),
          ...(bits & 2 ? { email: it.email } : {}),
          ...(bits & 4 ? { mobile: it.mobile } : {}),
          ...(bits & 8 ? { disabled: it.disabled ?? !u.disabled } : {}),
          ext: bits & 16 ? it.patch : {},
          ...(username !== u.username ? { pinned: true as const } : {}),
        };
      }
      case "deleteUser": {
        const u = it.mode === 9 ? pickFrom(deadUsers(), it.pick) : target("user", liveUsers(), it);
        return u ? { kind: "user", op: "delete", handle: u.handle } : createUser(it);
      }
      case "reviveUser": {
        const u = target("user", deadUsers(), it);
        if (!u) return createUser(it);
        // `disabled` left out half the time: the revived user keeps what was stored (fail closed).
        return { kind: "user", op: "create", handle: u.handle, username: u.username, name: it.name, org: orgRef(it.mode, it.other), disabled: it.disabled, email: it.email, mobile: it.mobile, ext: it.ext };
      }
      case "recreateUser": {
        const u = target("user", liveUsers(), it);
        if (!u) return createUser(it);
        return {
          kind: "user",
          op: "create",
          handle: u.handle,
          username: u.username,
          name: it.bits & 1 ? u.name : it.name,
          org: it.bits & 2 ? u.org : orgRef(it.mode, it.other),
          disabled: it.disabled,
          email: it.bits & 4 ? u.email : it.email,
          mobile: u.mobile,
          ext: it.bits & 8 ? u.ext : it.ext,
        };
      }
      case "reuseKey": {
        // A key a rename gave up, taken by a new entity.
        const free = [...ref.released.keys()].filter((k) => (k.startsWith("organization:") ? ref.orgByCode(k.slice(13)) : ref.userByName(k.slice(5))) === null);
        const key = pickFrom(free, it.pick);
        if (key === undefined) return createUser(it);
        return key.startsWith("organization:") ? createOrg(it, key.slice(13)) : createUser(it, key.slice(5));
      }
      case "touchDeleted": {
        // An update of a tombstone: 404.
        const o = it.bits & 1 ? pickFrom(deadOrgs(), it.pick) : undefined;
        if (o) return { kind: "org", op: "update", handle: o.handle, code: o.code, name: it.name, ext: {} };
        const u = pickFrom(deadUsers(), it.pick);
        if (u) return { kind: "user", op: "update", handle: u.handle, username: u.username, name: it.name, ext: {} };
        return createUser(it);
      }
    }
  };

  for (const it of intents) {
    const body = build(it);
    clock = nextTs(clock, it.tick);
    const event = { ...body, seq: events.length, ts: clock, wire: it.tick.wire } as SymEvent;
    ref.apply(event);
    events.push(event);
    last[event.kind] = event.handle;
  }
  return events;
}

// --- interleaving streams ---------------------------------------------------------------------------

/**
 * Per-entity sequences of full-state events (every attribute stated), so that any delivery order converges:
 * organizations hang only under organizations of a lower index (no order can close a cycle), only
 * organizations nobody points to are deleted (no delete is refused), users join any of the others.
 */
export interface InterleavingStream {
  events: SymEvent[];
  priorities: number[];
}

interface OrgState {
  name: string;
  parent: number;
  ext: Ext;
}
interface UserState {
  name: string;
  org: number;
  disabled: boolean;
  email: string | null;
  mobile: string | null;
  ext: Ext;
}
interface Epoch<S> {
  create: S;
  updates: S[];
  deleted: boolean;
}

function lifeArb<S>(state: fc.Arbitrary<S>, maxUpdates: number, maxEpochs: number) {
  return fc
    .array(fc.record({ create: state, updates: fc.array(state, { maxLength: maxUpdates }), deleted: fc.boolean() }), { minLength: 1, maxLength: maxEpochs })
    .map((epochs: Epoch<S>[]) => epochs.map((e, i) => ({ ...e, deleted: i < epochs.length - 1 ? true : e.deleted })));
}

/** `parent` / `org`: a number the stream turns into an organization of the tree, none, or a ghost. */
const orgState: fc.Arbitrary<OrgState> = fc.record({ name: nameArb, parent: fc.nat(), ext: fullExt });
const userState: fc.Arbitrary<UserState> = fc.record({ name: nameArb, org: fc.nat(), disabled: fc.boolean(), email: emailArb, mobile: mobileArb, ext: fullExt });

/** Sizes are maximums; each stream has at least half of each (and one organization and one user). */
export function interleavingStreamArb(size: { tree: number; leaves: number; users: number; maxUpdates: number }): fc.Arbitrary<InterleavingStream> {
  const half = (n: number, min: number) => Math.max(min, Math.ceil(n / 2));
  return fc
    .record({
      tree: fc.array(fc.record({ create: orgState, updates: fc.array(orgState, { maxLength: size.maxUpdates }) }), {
        minLength: half(size.tree, 1),
        maxLength: size.tree,
        size: "max",
      }),
      leaves: fc.array(lifeArb(orgState, size.maxUpdates, 3), { minLength: half(size.leaves, 0), maxLength: size.leaves, size: "max" }),
      users: fc.array(lifeArb(userState, size.maxUpdates, 3), { minLength: half(size.users, 1), maxLength: size.users, size: "max" }),
      merge: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      ticks: fc.array(tickArb, { minLength: 97, maxLength: 97 }),
      priorities: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
    })
    .map(({ tree, leaves, users, merge, ticks, priorities }) => {
      const n = tree.length;
      // Mostly under the previous organization, so the tree gets deep; sometimes a root, or a ghost.
      const treeParent = (i: number, p: number): OrgRef => {
        if (i === 0 || p % 7 === 0) return null;
        if (p % 11 === 1) return { ghost: `g${p % 2}` };
        return { handle: `t${p % 2 === 0 ? i - 1 : p % i}` };
      };
      const treeRef = (p: number): OrgRef => (p % 9 === 0 ? null : p % 13 === 1 ? { ghost: "g0" } : { handle: `t${p % n}` });
      type Body = OrgEvent | UserEvent;
      const sequences: Body[][] = [];
      tree.forEach((life, i) => {
        const handle = `t${i}`;
        const event = (s: OrgState, op: "create" | "update"): Body =>
          ({ kind: "org", op, handle, code: handle, name: s.name, parent: treeParent(i, s.parent), ext: s.ext }) as Body;
        sequences.push([event(life.create, "create"), ...life.updates.map((s) => event(s, "update"))]);
      });
      leaves.forEach((life, i) => {
        const handle = `l${i}`;
        const event = (s: OrgState, op: "create" | "update"): Body => ({ kind: "org", op, handle, code: handle, name: s.name, parent: treeRef(s.parent), ext: s.ext }) as Body;
        sequences.push(life.flatMap((e) => [event(e.create, "create"), ...e.updates.map((s) => event(s, "update")), ...(e.deleted ? [{ kind: "org", op: "delete", handle } as Body] : [])]));
      });
      users.forEach((life, i) => {
        const handle = `u${i}`;
        const state = (s: UserState) => ({ name: s.name, org: treeRef(s.org), disabled: s.disabled, email: s.email, mobile: s.mobile, ext: s.ext });
        sequences.push(
          life.flatMap((e) => [
            { kind: "user", op: "create", handle, username: handle, ...state(e.create) } as Body,
            ...e.updates.map((s) => ({ kind: "user", op: "update", handle, username: handle, ...state(s) }) as Body),
            ...(e.deleted ? [{ kind: "user", op: "delete", handle } as Body] : []),
          ]),
        );
      });
      // A random merge that keeps each entity's order: slots sorted by priority, each entity taking its slots in turn.
      const owners = sequences.flatMap((s, i) => s.map(() => i));
      const slots = owners.map((owner, k) => ({ owner, p: merge[k % merge.length]! * 64 + k })).sort((a, b) => a.p - b.p);
      const next = sequences.map(() => 0);
      const events: SymEvent[] = [];
      let clock = 0;
      for (const { owner } of slots) {
        const body = sequences[owner]![next[owner]!++]!;
        const tick = ticks[events.length % ticks.length]!;
        clock = nextTs(clock, tick);
        events.push({ ...body, seq: events.length, ts: clock, wire: tick.wire } as SymEvent);
      }
      return { events, priorities };
    });
}

/** The handles an event needs ids for: its target (not for a create), and the organization it names. */
function needs(e: SymEvent): string[] {
  const out: string[] = [];
  if (e.op !== "create") out.push(e.handle);
  const ref = e.kind === "org" ? (e.op === "delete" ? undefined : e.parent) : e.op === "delete" ? undefined : e.org;
  if (ref && "handle" in ref) out.push(ref.handle);
  return out;
}

/**
 * Any order OneAccess could deliver the events in: each event only after the create of its own epoch and
 * the first create of the organization it names were answered (ids come from create replies), creates of
 * one key in their order, otherwise anything, a later event of the same entity overtaking an earlier one
 * included. Picks, at each step, the ready event of lowest priority.
 */
export function anyDeliveryOrder(events: SymEvent[], priorities: number[]): SymEvent[] {
  const creates = new Map<string, number[]>();
  for (const e of events) if (e.op === "create") creates.set(e.handle, [...(creates.get(e.handle) ?? []), e.seq]);
  const after = events.map((e) => {
    const own = creates.get(e.handle) ?? [];
    const deps = e.op === "create" ? own.filter((s) => s < e.seq) : [Math.max(...own.filter((s) => s < e.seq))];
    for (const h of needs(e)) if (h !== e.handle) deps.push(creates.get(h)![0]!);
    return deps;
  });
  const pending = [...events];
  const delivered = new Set<number>();
  const out: SymEvent[] = [];
  const rank = (x: SymEvent) => priorities[x.seq % priorities.length]! * 100_000 + x.seq;
  while (pending.length > 0) {
    let best = -1;
    for (let i = 0; i < pending.length; i++) {
      const e = pending[i]!;
      if (!after[e.seq]!.every((s) => delivered.has(s))) continue;
      if (best < 0 || rank(e) < rank(pending[best]!)) best = i;
    }
    if (best < 0) throw new Error("no event is ready: the dependencies form a cycle");
    const [e] = pending.splice(best, 1);
    delivered.add(e!.seq);
    out.push(e!);
  }
  return out;
}

/**
 * Last event wins, for the entities whose events all have distinct timestamps: each as its newest event
 * states it (every event states everything), or deleted. Ties are left to the reference (which of two
 * events of one instant wins is the delivery order's choice).
 */
export function lastEventWins(events: SymEvent[]): Map<string, { deleted: boolean; fields?: Record<string, unknown> }> {
  const byHandle = new Map<string, SymEvent[]>();
  for (const e of events) byHandle.set(e.handle, [...(byHandle.get(e.handle) ?? []), e]);
  const out = new Map<string, { deleted: boolean; fields?: Record<string, unknown> }>();
  for (const [handle, list] of byHandle) {
    if (new Set(list.map((e) => e.ts)).size !== list.length) continue;
    const newest = list.reduce((a, b) => (b.ts > a.ts ? b : a));
    if (newest.op === "delete") out.set(handle, { deleted: true });
    else if (newest.kind === "org") out.set(handle, { deleted: false, fields: { name: newest.name, parent: refName(newest.parent!), extensions: nonNull(newest.ext), ts: newest.ts } });
    else {
      const u = newest as SymEvent & { kind: "user"; op: "create" };
      out.set(handle, { deleted: false, fields: { name: u.name, org: refName(u.org), disabled: u.disabled, email: u.email, mobile: u.mobile, extensions: nonNull(u.ext), ts: u.ts } });
    }
  }
  return out;
}

const nonNull = (ext: Ext) => Object.fromEntries(Object.entries(ext).filter(([, v]) => v !== null));

/** The fields lastEventWins states, read from a directory view. */
export function lastEventView(view: DirectoryView, handles: Iterable<string>): Map<string, { deleted: boolean; fields?: Record<string, unknown> }> {
  const rows = new Map<string, OrgView | UserView>([...view.organizations, ...view.users].map((r) => [r.handle, r]));
  const out = new Map<string, { deleted: boolean; fields?: Record<string, unknown> }>();
  for (const handle of handles) {
    const r = rows.get(handle);
    if (!r) continue;
    if (r.deleted) out.set(handle, { deleted: true });
    else if ("code" in r) out.set(handle, { deleted: false, fields: { name: r.name, parent: r.parent, extensions: r.extensions, ts: r.ts } });
    else out.set(handle, { deleted: false, fields: { name: r.name, org: r.org, disabled: r.disabled, email: r.email, mobile: r.mobile, extensions: r.extensions, ts: r.ts } });
  }
  return out;
}

// --- delivery plans ---------------------------------------------------------------------------------

export interface Delivery {
  event: SymEvent;
  kind: "original" | "exact-duplicate" | "resend";
  nonce: string;
  heldBack?: boolean;
}

/** The sizes and cases one or more plans reached; the summary prints them and asserts minimums. */
export interface Figures {
  streams: number;
  deliveries: number;
  orgs: number;
  users: number;
  maxDepth: number;
  depthSum: number;
  orgMoves: number;
  userMoves: number;
  cyclesRefused: number;
  deletes: number;
  deletesRefused: number;
  revivals: number;
  renames: number;
  keyRenames: number;
  keysTaken: number;
  missingRefs: number;
  flagsCleared: number;
  notFound: number;
  stale: number;
  keptDisabled: number;
  secondStamps: number;
  sameSecondGroups: number;
  sameEntitySameTs: number;
  exactDuplicates: number;
  guardOnly: number;
  resends: number;
  resendsApplied: number;
  heldBack: number;
  overtaken: number;
  twins: number;
  undeliverable: number;
}

export const noFigures = (): Figures => ({
  streams: 0,
  deliveries: 0,
  orgs: 0,
  users: 0,
  maxDepth: 0,
  depthSum: 0,
  orgMoves: 0,
  userMoves: 0,
  cyclesRefused: 0,
  deletes: 0,
  deletesRefused: 0,
  revivals: 0,
  renames: 0,
  keyRenames: 0,
  keysTaken: 0,
  missingRefs: 0,
  flagsCleared: 0,
  notFound: 0,
  stale: 0,
  keptDisabled: 0,
  secondStamps: 0,
  sameSecondGroups: 0,
  sameEntitySameTs: 0,
  exactDuplicates: 0,
  guardOnly: 0,
  resends: 0,
  resendsApplied: 0,
  heldBack: 0,
  overtaken: 0,
  twins: 0,
  undeliverable: 0,
});

export function addFigures(into: Figures, f: Figures): void {
  for (const k of Object.keys(f) as Array<keyof Figures>) into[k] = k === "maxDepth" ? Math.max(into[k], f[k]) : into[k] + f[k];
}

export interface Plan {
  deliveries: Delivery[];
  /** What the Worker must answer: the replay guard answers an exact duplicate with the first reply. */
  worker: Outcome[];
  /** What the rules alone must answer (the model has no replay guard); null: not sent to the model. */
  rules: Array<Outcome | null>;
  /** A copy the rules must leave without any effect: the directory is compared before and after it. */
  harmless: boolean[];
  view: DirectoryView;
  figures: Figures;
}

const isCreate = (e: SymEvent) => e.op === "create";

/**
 * The stream in order, some events held back behind a few events of other entities (never a create, never
 * past an event of their own entity, never one that renames a key: so every id and key is where the
 * generator meant it), then copies inserted anywhere after their original.
 */
export function directoryDeliveries(stream: DirectoryStream): Delivery[] {
  const out: Delivery[] = stream.events.map((event) => ({ event, kind: "original", nonce: randomNonce() }));
  const n = out.length;
  if (n === 0) return out;
  for (const h of stream.holds) {
    const from = out.findIndex((d) => d.event.seq === h.of % n);
    const d = out[from]!;
    if (isCreate(d.event) || d.event.pinned) continue;
    let to = from;
    for (let steps = 1 + (h.by % 6); steps > 0 && to + 1 < out.length; steps--) {
      if (out[to + 1]!.event.handle === d.event.handle) break;
      to++;
    }
    if (to === from) continue;
    out.splice(from, 1);
    out.splice(to, 0, { ...d, heldBack: true });
  }
  const successor = (e: SymEvent) => stream.events.find((x) => x.seq > e.seq && x.handle === e.handle && x.ts === e.ts);
  const aims = stream.events.filter((e) => successor(e) !== undefined);
  for (const c of stream.dupes) {
    const aim = c.aimed ? pickFrom(aims, c.of) : undefined;
    const original = out.find((d) => d.kind === "original" && d.event.seq === (aim?.seq ?? c.of % n))!;
    const from = aim ? out.findIndex((d) => d.kind === "original" && d.event.seq === successor(aim)!.seq) + 1 : out.indexOf(original) + 1;
    const at = from + (c.after % (aim ? 3 : out.length - from + 1));
    out.splice(at, 0, c.exact ? { ...original, kind: "exact-duplicate", heldBack: false } : { event: original.event, nonce: randomNonce(), kind: "resend" });
  }
  return out;
}

/**
 * Runs the deliveries through the reference rules: what each must answer, whether a copy changes nothing,
 * and the directory at the end. A delivery naming an entity that has no id yet (a create went elsewhere)
 * cannot be sent and is dropped (counted: it must stay rare).
 */
export function plan(input: Delivery[]): Plan {
  const ref = new Reference();
  const known = new Set<string>();
  const deliveries: Delivery[] = [];
  const worker: Outcome[] = [];
  const rules: Array<Outcome | null> = [];
  const harmless: boolean[] = [];
  const firstReply = new Map<string, Outcome>();
  const f = noFigures();
  const depthAt = new Map<string, number>();
  for (const d of input) {
    const e = d.event;
    if (!needs(e).every((h) => known.has(h))) {
      f.undeliverable++;
      continue;
    }
    if (d.kind === "exact-duplicate") {
      const original = firstReply.get(d.nonce);
      if (!original) {
        f.undeliverable++;
        continue;
      }
      // The rules' own answer, not applied: the replay guard keeps the request out whatever the rules say.
      const decision = ref.decide(e);
      deliveries.push(d);
      worker.push(original);
      rules.push(decision.outcome.changed ? null : decision.outcome);
      harmless.push(!decision.outcome.changed);
      f.exactDuplicates++;
      if (decision.outcome.changed) f.guardOnly++;
      continue;
    }
    const outcome = ref.apply(e);
    if (outcome.code === "200" && outcome.replyHandle !== null) known.add(outcome.replyHandle);
    if (d.kind === "original") firstReply.set(d.nonce, outcome);
    deliveries.push(d);
    worker.push(outcome);
    rules.push(outcome);
    harmless.push(d.kind === "resend" && !outcome.changed);
    count(f, d, outcome);
    if (e.kind === "org" && outcome.changed) for (const o of ref.orgs.values()) if (!o.deleted) depthAt.set(o.handle, Math.max(depthAt.get(o.handle) ?? 0, ref.depth(o.handle)));
  }
  f.streams = 1;
  f.deliveries = deliveries.length;
  f.orgs = ref.orgs.size;
  f.users = ref.users.size;
  f.maxDepth = Math.max(0, ...depthAt.values());
  f.depthSum = f.maxDepth;
  stampFigures(f, deliveries.filter((d) => d.kind === "original").map((d) => d.event));
  return { deliveries, worker, rules, harmless, view: ref.view(), figures: f };
}

function count(f: Figures, d: Delivery, o: Outcome) {
  if (d.heldBack) f.heldBack++;
  if (d.kind === "resend") {
    f.resends++;
    if (o.changed) f.resendsApplied++;
  }
  const e = d.event;
  if (o.changed) {
    if (o.notes.moved) e.kind === "org" ? f.orgMoves++ : f.userMoves++;
    if (o.notes.renamed) f.renames++;
    if (o.notes.keyRenamed) f.keyRenames++;
    if (o.notes.missingRef) f.missingRefs++;
    if (o.notes.keptDisabled) f.keptDisabled++;
    if (o.notes.twin) f.twins++;
    f.flagsCleared += o.notes.flagsCleared ?? 0;
  }
  if (o.effect === "revived") f.revivals++;
  if (o.effect === "deleted") f.deletes++;
  if (o.effect === "cycle") f.cyclesRefused++;
  if (o.effect === "not-empty") f.deletesRefused++;
  if (o.effect === "key-taken") f.keysTaken++;
  if (o.effect === "not-found") f.notFound++;
  if (o.effect === "stale") f.stale++;
}

/** Seconds timestamps, seconds shared by several events, and entities with several events at one instant. */
function stampFigures(f: Figures, events: SymEvent[]) {
  const perSecond = new Map<number, number>();
  const perEntityTs = new Map<string, number>();
  for (const e of events) {
    if (inSeconds(e.wire)) {
      f.secondStamps++;
      perSecond.set(e.ts, (perSecond.get(e.ts) ?? 0) + 1);
    }
    const k = `${e.handle}@${e.ts}`;
    perEntityTs.set(k, (perEntityTs.get(k) ?? 0) + 1);
  }
  f.sameSecondGroups += [...perSecond.values()].filter((c) => c >= 2).length;
  f.sameEntitySameTs += [...perEntityTs.values()].reduce((s, c) => s + c - 1, 0);
}

/** An interleaving: every delivery an original, the reference applied in delivery order. */
export function interleavingPlan(stream: InterleavingStream): Plan {
  const order = anyDeliveryOrder(stream.events, stream.priorities);
  const p = plan(order.map((event) => ({ event, kind: "original", nonce: randomNonce() })));
  const newest = new Map<string, number>();
  for (const e of order) {
    if ((newest.get(e.handle) ?? -Infinity) > e.ts) p.figures.overtaken++;
    newest.set(e.handle, Math.max(newest.get(e.handle) ?? -Infinity, e.ts));
  }
  p.figures.sameSecondGroups = 0;
  p.figures.sameEntitySameTs = 0;
  p.figures.secondStamps = 0;
  stampFigures(p.figures, stream.events);
  return p;
}

// --- rendering --------------------------------------------------------------------------------------

/** Ids the receiver answered, per handle, for one run's namespace; and the ids of organizations never created. */
export class IdBook {
  private readonly byHandle = new Map<string, string>();
  private readonly byId = new Map<string, string>();

  constructor(readonly prefix: string) {}

  id(handle: string): string {
    const id = this.byHandle.get(handle);
    if (id === undefined) throw new Error(`${handle}: no id yet`);
    return id;
  }

  /** Records the id a reply gave `handle`; a handle keeps one id, and an id names one handle. */
  bind(handle: string, id: string): void {
    const had = this.byHandle.get(handle);
    if (had !== undefined && had !== id) throw new Error(`${handle}: answered ${id}, was ${had} (a revival must keep the id)`);
    const owner = this.byId.get(id);
    if (owner !== undefined && owner !== handle) throw new Error(`${handle}: answered ${id}, which is ${owner}'s id`);
    this.byHandle.set(handle, id);
    this.byId.set(id, handle);
  }

  ghost(name: string): string {
    return `org_ghost-${this.prefix}${name}`;
  }

  /** A stored id as a view names it: the handle, `ghost:<name>`, or `unknown:<id>` (which no view expects). */
  name(id: string | null): string | null {
    if (id === null) return null;
    const handle = this.byId.get(id);
    if (handle !== undefined) return handle;
    const ghost = `org_ghost-${this.prefix}`;
    return id.startsWith(ghost) ? `ghost:${id.slice(ghost.length)}` : `unknown:${id}`;
  }

  ref(ref: OrgRef): string | null {
    return ref === null ? null : "handle" in ref ? this.id(ref.handle) : this.ghost(ref.ghost);
  }
}

export function render(e: SymEvent, book: IdBook): { type: string; payload: Record<string, unknown> } {
  const key = (k: string) => `${book.prefix}${k}`;
  if (e.op === "delete") return { type: e.kind === "org" ? "DELETE_ORGANIZATION" : "DELETE_USER", payload: { id: book.id(e.handle) } };
  if (e.kind === "org") {
    const payload: Record<string, unknown> = e.op === "create" ? { code: key(e.code) } : { id: book.id(e.handle), code: key(e.code) };
    payload.name = e.name;
    // A create names its parent or none; an update without parentId keeps it, "" moves it to the root.
    if (e.parent !== undefined && e.parent !== null) payload.parentId = book.ref(e.parent);
    else if (e.parent === null && e.op === "update") payload.parentId = "";
    Object.assign(payload, e.ext);
    return { type: e.op === "create" ? "CREATE_ORGANIZATION" : "UPDATE_ORGANIZATION", payload };
  }
  const payload: Record<string, unknown> = e.op === "create" ? { username: key(e.username), password: "Stream-Secret-1" } : { id: book.id(e.handle), username: key(e.username) };
  if (e.name !== undefined) payload.name = e.name;
  if (e.op === "create" ? e.org !== null : e.org !== undefined) payload.organizationId = e.org === null ? "" : book.ref(e.org!);
  if (e.disabled !== undefined) payload.disabled = e.disabled;
  if (e.email !== undefined) payload.email = e.email;
  if (e.mobile !== undefined) payload.mobile = e.mobile;
  Object.assign(payload, e.ext);
  return { type: e.op === "create" ? "CREATE_USER" : "UPDATE_USER", payload };
}

/** The timestamp as sent: seconds or milliseconds, a number or a digit string. */
function wireTimestamp(e: SymEvent, t0: number): number | string {
  const ms = t0 + e.ts;
  const value = inSeconds(e.wire) ? ms / 1000 : ms;
  return e.wire.endsWith("-text") ? String(value) : value;
}

// --- drivers ----------------------------------------------------------------------------------------

export interface Reply {
  code: string;
  message: string;
  id?: string;
}

export interface Driver {
  readonly book: IdBook;
  send(d: Delivery): Promise<Reply>;
  /** Everything the namespace holds, bookkeeping included (row versions where there are): equal text, nothing written. */
  snapshot(): Promise<string>;
  /** The namespace's rows, tombstones included, as the reference's view names them. */
  view(): Promise<DirectoryView>;
}

function idOf(plaintext: string): string | undefined {
  return plaintext.startsWith("{") ? (JSON.parse(plaintext) as { id?: string }).id : undefined;
}

/** The Worker through the independent sender; an exact duplicate resends the first request's very bytes. */
export function workerDriver(prefix: string, t0: number): Driver {
  const p = profile("sha1+gcm", "iv12");
  // Window off (fixed timestamps an hour old); only 5xx lines logged: refusals are expected here by the hundred.
  const env = { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "0", LOG_LEVEL: "error" };
  const bodies = new Map<string, string>();
  const book = new IdBook(prefix);
  const db = testEnv.DB;
  // Keys of this namespace: [prefix, prefix with its last character raised) in binary order.
  const range = [prefix, prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)];
  const rows = async (withVersion: boolean) => {
    const v = withVersion ? ", version" : "";
    const [orgs, users, released] = await db.batch([
      db
        .prepare(
          `SELECT id, code, name, parent_id, parent_missing, extensions, event_ts, deleted_at${v}
           FROM organizations WHERE code >= ?1 AND code < ?2 ORDER BY code`,
        )
        .bind(...range),
      db
        .prepare(
          `SELECT id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name, mobile, email, extensions, event_ts, deleted_at${v}
           FROM users WHERE username >= ?1 AND username < ?2 ORDER BY username`,
        )
        .bind(...range),
      db.prepare("SELECT entity, key, entity_id, released_ts FROM released_keys WHERE key >= ?1 AND key < ?2 ORDER BY entity, key").bind(...range),
    ]);
    type Rows = Array<Record<string, unknown>>;
    return { orgs: orgs!.results as Rows, users: users!.results as Rows, released: released!.results as Rows };
  };
  const strip = (k: unknown) => String(k).slice(prefix.length);
  return {
    book,
    async send(d) {
      let body = bodies.get(d.nonce);
      if (body === undefined) {
        const { type, payload } = render(d.event, book);
        body = JSON.stringify(await buildEnvelope(p, type, JSON.stringify(payload), { nonce: d.nonce, timestamp: wireTimestamp(d.event, t0) }));
        bodies.set(d.nonce, body);
      }
      const reply = await openReply(p, await callWorker(toRequest(CALLBACK_URL, p, body), env));
      return { code: reply.code, message: reply.message, id: idOf(reply.plaintext) };
    },
    snapshot: async () => JSON.stringify(await rows(true)),
    async view() {
      const { orgs, users, released } = await rows(false);
      return sortView({
        organizations: orgs.map((o) => ({
          handle: book.name(o.id as string)!,
          code: strip(o.code),
          name: o.name as string,
          parent: book.name(o.parent_id as string | null),
          parentMissing: o.deleted_at === null ? o.parent_missing === 1 : null,
          extensions: JSON.parse(o.extensions as string) as Ext,
          ts: (o.event_ts as number) - t0,
          deleted: o.deleted_at !== null,
        })),
        users: users.map((u) => ({
          handle: book.name(u.id as string)!,
          username: strip(u.username),
          name: u.name as string,
          org: book.name(u.organization_id as string | null),
          organizationMissing: u.deleted_at === null ? u.organization_missing === 1 : null,
          disabled: u.disabled === 1,
          firstName: u.first_name as null,
          middleName: u.middle_name as null,
          lastName: u.last_name as null,
          mobile: u.mobile as string | null,
          email: u.email as string | null,
          extensions: JSON.parse(u.extensions as string) as Ext,
          ts: (u.event_ts as number) - t0,
          deleted: u.deleted_at !== null,
        })),
        released: Object.fromEntries(released.map((r) => [`${r.entity}:${strip(r.key)}`, `${book.name(r.entity_id as string)}@${(r.released_ts as number) - t0}`])),
      });
    },
  };
}

/** The in-memory model: every delivery, a duplicate included, goes through the rules (there is no replay guard). */
export function modelDriver(t0: number): Driver & { model: MemoryDirectory } {
  const model = new MemoryDirectory();
  const book = new IdBook("");
  const tsOf = (e: SymEvent) => t0 + e.ts;
  return {
    model,
    book,
    async send(d) {
      const { type, payload } = render(d.event, book);
      const event = parseEvent(type as "CREATE_USER", JSON.stringify(payload));
      if (!event.ok) return { code: "400", message: toWire(event.failure).message };
      if (event.value.type === "CHECK_URL") throw new Error("not a directory event");
      const outcome = model.apply(event.value, tsOf(d.event));
      return { code: outcome.code, message: outcome.message, id: idOf(outcome.replyData) };
    },
    snapshot: async () => model.dump(),
    async view() {
      const live = (id: string | null) => id !== null && model.orgs.get(id)?.deletedAt === null;
      return sortView({
        organizations: [...model.orgs.values()].map((o) => ({
          handle: book.name(o.id)!,
          code: o.code,
          name: o.name,
          parent: book.name(o.parentId),
          parentMissing: o.deletedAt === null ? o.parentId !== null && !live(o.parentId) : null,
          extensions: o.extensions as Ext,
          ts: o.eventTs - t0,
          deleted: o.deletedAt !== null,
        })),
        users: [...model.users.values()].map((u) => ({
          handle: book.name(u.id)!,
          username: u.username,
          name: u.name,
          org: book.name(u.organizationId),
          organizationMissing: u.deletedAt === null ? u.organizationId !== null && !live(u.organizationId) : null,
          disabled: u.disabled,
          firstName: u.firstName as null,
          middleName: u.middleName as null,
          lastName: u.lastName as null,
          mobile: u.mobile,
          email: u.email,
          extensions: u.extensions as Ext,
          ts: u.eventTs - t0,
          deleted: u.deletedAt !== null,
        })),
        released: Object.fromEntries([...model.released].map(([k, r]) => [k, `${book.name(r.entityId)}@${r.releasedTs - t0}`])),
      });
    },
  };
}

function sortView(v: DirectoryView): DirectoryView {
  const byHandle = <T extends { handle: string }>(a: T, b: T) => (a.handle < b.handle ? -1 : a.handle > b.handle ? 1 : 0);
  return {
    organizations: [...v.organizations].sort(byHandle),
    users: [...v.users].sort(byHandle),
    released: Object.fromEntries(Object.entries(v.released).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
}

// --- delivering a plan ------------------------------------------------------------------------------

const describe = (i: number, d: Delivery) => `delivery ${i} (${d.kind} of event ${d.event.seq}, ts ${d.event.ts} ${d.event.wire}): ${JSON.stringify(d.event)}`;

/**
 * Sends the plan's deliveries through a driver, checking each reply against the plan (the Worker's answers,
 * or the rules' for the model), and that every copy the plan calls harmless (and, on the Worker, every
 * exact duplicate) leaves the namespace exactly as it was, bookkeeping included.
 */
export async function deliver(driver: Driver, p: Plan, as: "worker" | "rules"): Promise<void> {
  for (let i = 0; i < p.deliveries.length; i++) {
    const expected = as === "worker" ? p.worker[i]! : p.rules[i];
    if (!expected) continue;
    const d = p.deliveries[i]!;
    const watch = p.harmless[i] || (as === "worker" && d.kind === "exact-duplicate");
    const before = watch ? await driver.snapshot() : null;
    const reply = await driver.send(d);
    const problem = check(reply, expected, driver.book);
    if (problem) throw new Error(`${describe(i, d)}\n  ${problem}`);
    if (before !== null && (await driver.snapshot()) !== before) {
      throw new Error(`${describe(i, d)}\n  changed the directory; the ${as === "worker" && d.kind === "exact-duplicate" ? "replay guard" : "rules"} say it must not`);
    }
  }
}

function check(reply: Reply, expected: Outcome, book: IdBook): string | null {
  const want = `expected ${expected.code} (${expected.effect}${expected.replyHandle ? ` ${expected.replyHandle}` : ""})`;
  const got = `got ${reply.code} ${JSON.stringify(reply.message)}${reply.id ? ` ${reply.id}` : ""}`;
  if (reply.code !== expected.code) return `${want}, ${got}`;
  if (expected.replyHandle === null) {
    if (reply.id !== undefined) return `${want} with empty data, ${got}`;
  } else {
    if (reply.id === undefined) return `${want} with an id, ${got}`;
    try {
      book.bind(expected.replyHandle, reply.id);
    } catch (e) {
      return `${want}: ${(e as Error).message}`;
    }
  }
  if (expected.counts) {
    const m = /(\d+) child organizations? and (\d+) members?/.exec(reply.message);
    if (!m || Number(m[1]) !== expected.counts.children || Number(m[2]) !== expected.counts.members) {
      return `${want}, naming ${expected.counts.children} children and ${expected.counts.members} members, ${got}`;
    }
  }
  return null;
}

export type { OrgRow, UserRow };
