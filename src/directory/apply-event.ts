// Applies one directory event (contract section 6): read what the decision depends on, decide (rules.ts),
// then write the change and its audit row as ONE D1 batch. Storage errors are thrown, not caught, so the
// caller answers 500, releases the replay reservation, and OneAccess's retry can succeed.
//
// Round trips: a create (user or organization) first tries the common case, a key nobody holds, as one
// batch of two statements: its insert and audit row, guarded by the facts under which the rules insert (no
// row holds the username / code, no rename gave it up). When those facts hold the event is done in one
// round trip; when they do not, the guarded statements change nothing and the event goes the general way.
// The general way: every read the decision may need goes to D1 as one batch (one round trip, one
// consistent snapshot), then the writes as one batch.
//
// Concurrency: two events for the same entity may interleave between the read and the batch. The batch
// therefore starts with a statement asserting that everything read still holds (DirectoryReader); when it
// does not, D1 rolls the whole batch back and the event is decided again from a fresh read. A batch is
// thus never applied on a stale decision, and never half-applied.
import type { PasswordPolicy } from "../config";
import type { DirectoryEvent } from "../protocol/events";
import { newId } from "./ids";
import { hashPassword } from "./password";
import {
  decideCreateOrganization,
  decideCreateUser,
  decideDeleteOrganization,
  decideDeleteUser,
  decideUpdateOrganization,
  decideUpdateUser,
  needsCycleCheck,
  passwordAction,
  type ApplyOutcome,
  type UserRecord,
  type Write,
} from "./rules";
import { userRowCache, type KnownUser, type UserRowCache } from "./row-cache";
import {
  DirectoryReader,
  insertDelivery,
  type DirectoryDb,
  isSnapshotChanged,
  organizationWrites,
  userWrites,
  type PasswordWrite,
} from "./store";

export type { ApplyOutcome } from "./rules";
export type { PasswordWrite } from "./store";

export interface ApplyContext {
  nonce: string;
  /** The event's own timestamp (ms): last-event-wins compares these. */
  eventTimestampMs: number;
  receivedAtMs: number;
  /** What a user write does to the stored password hash (`resolvePassword`). */
  password: PasswordWrite;
}

export interface DeliveryRecord {
  receivedAtMs: number;
  eventType: string;
  nonce: string;
  code: string;
  message: string;
  entityId: string | null;
  durationMs: number;
}

/**
 * Attempts before giving up with a 500 (OneAccess retries later). An attempt fails only when another event
 * committed in between, so with up to this many events racing on one entity every one of them gets through.
 */
export const MAX_ATTEMPTS = 8;

class DirectoryContention extends Error {
  override name = "DirectoryContention";
}

/**
 * What a user event does to the stored password, as the route hands it to the replay store: keep the stored
 * hash (none sent), clear it (drop policy), or hash the sent password (pbkdf2 policy). The hash itself is
 * made by `resolvePassword` inside the store, once the request is known to be new: hashing is deliberately
 * slow, and an exact duplicate must not pay for it.
 */
export type PasswordIntent = { kind: "keep" } | { kind: "clear" } | { kind: "hash"; password: string };

export function passwordIntent(event: DirectoryEvent, policy: PasswordPolicy): PasswordIntent {
  const sent = event.type === "CREATE_USER" || event.type === "UPDATE_USER" ? event.user.password : undefined;
  const action = passwordAction(sent, policy);
  return action === "hash" ? { kind: "hash", password: sent! } : { kind: action };
}

export async function resolvePassword(intent: PasswordIntent): Promise<PasswordWrite> {
  switch (intent.kind) {
    case "keep":
      return { kind: "keep" };
    case "clear":
      return { kind: "set", hash: null };
    case "hash":
      return { kind: "set", hash: await hashPassword(intent.password) };
  }
}

/**
 * The event as it is handed to the replay store's Durable Object: without its password (what
 * `passwordWrite` made of it is all the directory needs), and with its extension attributes in a plain
 * object (the parser builds them without a prototype, which RPC does not clone).
 */
export function forReplayStore(event: DirectoryEvent): DirectoryEvent {
  switch (event.type) {
    case "CREATE_USER":
    case "UPDATE_USER": {
      const { password: _dropped, ...user } = event.user;
      return { ...event, user: { ...user, extensions: { ...user.extensions } } } as DirectoryEvent;
    }
    case "CREATE_ORGANIZATION":
    case "UPDATE_ORGANIZATION":
      return { ...event, org: { ...event.org, extensions: { ...event.org.extensions } } } as DirectoryEvent;
    default:
      return event;
  }
}

/** Applies one event as one D1 batch, the delivery row included. Throws when storage fails. */
export async function applyEvent(db: DirectoryDb, event: DirectoryEvent, ctx: ApplyContext): Promise<ApplyOutcome> {
  const users = userRowCache(db);
  const speculation = speculativeCreate(db, event, ctx);
  if (speculation) {
    const [insert] = await db.batch(speculation.statements);
    if (insert?.meta.changes === 1) {
      if (speculation.user) users.remember(speculation.user, 0);
      return speculation.outcome;
    }
  }
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const reader = new DirectoryReader(db);
    // An update of a user this isolate knows, keeping its username, is decided from the known row (its
    // version is checked in the batch); a rename reads, since who else holds the new username matters.
    let known: KnownUser | undefined;
    if (attempt === 1 && event.type === "UPDATE_USER") {
      const cached = users.get(event.id);
      if (cached?.record.username === event.username) known = cached;
    }
    const decide = plan(db, reader, event, ctx, known);
    await reader.run();

    const { outcome, writes, userWrite } = decide();
    const check = reader.snapshotCheck();
    const delivery = insertDelivery(db, deliveryOf(event, ctx, outcome));
    try {
      await db.batch([...(check ? [check] : []), ...writes, delivery]);
    } catch (e) {
      forgetUsersOf(users, event);
      if (!isSnapshotChanged(e)) throw e;
      // A little random delay, so racing events do not collide again in lockstep.
      if (attempt < MAX_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
      continue;
    }
    if (userWrite) rememberUserWrite(users, reader, userWrite);
    return outcome;
  }
  throw new DirectoryContention(`directory changed during ${MAX_ATTEMPTS} attempts`);
}

/** After a user write committed: the row as written, one version up from the one it was decided on. */
function rememberUserWrite(users: UserRowCache, reader: DirectoryReader, write: Write<UserRecord>): void {
  if (write.kind === "tombstone") return users.forget(write.id);
  if (write.kind === "insert") return users.remember(write.record, 0);
  const decidedOn = reader.userVersion(write.record.id);
  if (decidedOn === undefined) return users.forget(write.record.id);
  users.remember(write.record, decidedOn + 1);
}

/** A failed batch leaves the user it was about in a state this isolate does not know. */
function forgetUsersOf(users: UserRowCache, event: DirectoryEvent): void {
  if (event.type === "UPDATE_USER" || event.type === "DELETE_USER") users.forget(event.id);
}

function deliveryOf(event: DirectoryEvent, ctx: ApplyContext, outcome: ApplyOutcome): DeliveryRecord {
  return {
    receivedAtMs: ctx.receivedAtMs,
    eventType: event.type,
    nonce: ctx.nonce,
    code: outcome.code,
    message: outcome.message,
    entityId: outcome.entityId,
    durationMs: Date.now() - ctx.receivedAtMs,
  };
}

interface Decided {
  outcome: ApplyOutcome;
  writes: D1PreparedStatement[];
  /** A user event's write, for the row cache. */
  userWrite?: Write<UserRecord> | null;
}

/**
 * Queues every read the event's decision may need (`reader.run` sends them as one batch) and returns the
 * decision to make once they are in. A read the decision turns out not to need (the cycle check of an
 * unchanged parent, the holder of an unchanged code) costs a statement in the batch, not a round trip.
 */
function plan(db: DirectoryDb, reader: DirectoryReader, event: DirectoryEvent, ctx: ApplyContext, known?: KnownUser): () => Decided {
  const ts = ctx.eventTimestampMs;
  const now = ctx.receivedAtMs;
  const hashesPassword = ctx.password.kind === "set" && ctx.password.hash !== null;
  switch (event.type) {
    case "CREATE_ORGANIZATION": {
      const existing = reader.organization("code", event.org.code);
      const released = reader.releasedKey("organization", event.org.code);
      const parentId = event.org.parentId;
      const chain = parentId !== null ? reader.chainContainsHolderOf(parentId, event.org.code) : null;
      return () => {
        const e = existing.value;
        // Giving an existing organization this parent must not make it its own ancestor.
        const parentIsDescendant = e !== null && parentId !== null && needsCycleCheck(e, parentId) && chain!.value !== 0;
        const d = decideCreateOrganization(event.org, { existing: e, released: released.value, parentIsDescendant }, ts, newId("org"));
        return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [] };
      };
    }
    case "UPDATE_ORGANIZATION": {
      const existing = reader.organization("id", event.id);
      const holder = reader.organizationIdWithCode(event.org.code);
      const parentId = event.org.parentId;
      const chain = typeof parentId === "string" && parentId !== event.id ? reader.chainContains(parentId, event.id) : null;
      return () => {
        const e = existing.value;
        const codeHolder = e && e.code !== event.org.code ? holder.value : null;
        const cycle = e !== null && typeof parentId === "string" && needsCycleCheck(e, parentId) && chain!.value !== 0;
        const d = decideUpdateOrganization(event.id, event.org, { existing: e, codeHolder, parentIsDescendant: cycle }, ts);
        return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [] };
      };
    }
    case "DELETE_ORGANIZATION": {
      const existing = reader.organization("id", event.id);
      const children = reader.liveChildCount(event.id);
      const members = reader.liveMemberCount(event.id);
      return () => {
        const e = existing.value;
        const live = e !== null && e.deletedAt === null;
        const facts = { existing: e, liveChildren: live ? children.value : 0, liveMembers: live ? members.value : 0 };
        const d = decideDeleteOrganization(event.id, facts, ts);
        return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [] };
      };
    }
    case "CREATE_USER": {
      const existing = reader.user("username", event.username);
      const released = reader.releasedKey("user", event.username);
      return () => {
        const facts = { existing: existing.value, released: released.value, hashesPassword };
        const d = decideCreateUser(event.username, event.user, facts, ts, newId("usr"));
        return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, ctx.password, now) : [], userWrite: d.write };
      };
    }
    case "UPDATE_USER": {
      // A known row keeps its username (applyEvent checks), so who holds the username is not needed.
      const existing = known ? reader.knownUser(known.record, known.version) : reader.user("id", event.id);
      const holder = known ? null : reader.userIdWithUsername(event.username);
      return () => {
        const e = existing.value;
        const usernameHolder = e && e.username !== event.username ? (holder?.value ?? null) : null;
        const d = decideUpdateUser(event.id, event.username, event.user, { existing: e, usernameHolder, hashesPassword }, ts);
        return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, ctx.password, now) : [], userWrite: d.write };
      };
    }
    case "DELETE_USER": {
      const existing = reader.user("id", event.id);
      return () => {
        const d = decideDeleteUser(event.id, existing.value, ts);
        return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, { kind: "keep" }, now) : [], userWrite: d.write };
      };
    }
  }
}

/**
 * A create's decision when nothing holds its key, as statements that only write while that is true (see
 * the top of this file): the insert first, so its `changes` say whether the event was applied, then the
 * audit row, written only when the insert was (the id is fresh). Null for every other event.
 */
function speculativeCreate(
  db: DirectoryDb,
  event: DirectoryEvent,
  ctx: ApplyContext,
): { statements: D1PreparedStatement[]; outcome: ApplyOutcome; user?: UserRecord } | null {
  const ts = ctx.eventTimestampMs;
  const now = ctx.receivedAtMs;
  if (event.type === "CREATE_USER") {
    const hashesPassword = ctx.password.kind === "set" && ctx.password.hash !== null;
    const d = decideCreateUser(event.username, event.user, { existing: null, released: null, hashesPassword }, ts, newId("usr"));
    if (d.write?.kind !== "insert") return null;
    const audit = insertDelivery(db, deliveryOf(event, ctx, d.outcome), { table: "users", id: d.write.record.id });
    return { statements: [...userWrites(db, d.write, ctx.password, now, true), audit], outcome: d.outcome, user: d.write.record };
  }
  if (event.type === "CREATE_ORGANIZATION") {
    const d = decideCreateOrganization(event.org, { existing: null, released: null, parentIsDescendant: false }, ts, newId("org"));
    if (d.write?.kind !== "insert") return null;
    const audit = insertDelivery(db, deliveryOf(event, ctx, d.outcome), { table: "organizations", id: d.write.record.id });
    return { statements: [...organizationWrites(db, d.write, now, true), audit], outcome: d.outcome };
  }
  return null;
}
