// Applies one directory event (contract section 6): read what the decision depends on, decide (rules.ts),
// then write the change and its audit row as ONE D1 batch. Storage errors are thrown, not caught, so the
// event ledger records nothing, the route answers 500, and OneAccess's retry can succeed.
//
// One path, plus one shortcut:
// - The path: every read the decision may need goes to D1 as one batch (reader.ts), then the writes go as
//   one batch that starts with a check that everything read still holds. When another event committed in
//   between, D1 rolls the batch back and the event is decided again from a fresh read, so a batch is never
//   applied on a stale decision, and never half-applied.
// - The shortcut, for a create of a key nobody holds (most events of a full sync): its insert and audit row
//   go first, guarded by the facts under which the rules insert; when they do not hold, nothing is written
//   and the event takes the path. In production it saves one D1 round trip per new entity.
import { auditRecord, insertAudit, type AuditRecord, type ChangeRecord, type DirectoryDb } from "./audit";
import { organizationChange, userChange } from "./changes";
import { newId } from "./ids";
import type { PasswordWrite } from "./passwords";
import { DirectoryReader, isSnapshotChanged } from "./reader";
import {
  decideCreateOrganization,
  decideCreateUser,
  decideDeleteOrganization,
  decideDeleteUser,
  decideUpdateOrganization,
  decideUpdateUser,
  needsCycleCheck,
  type ApplyOutcome,
} from "./rules";
import { organizationWrites, userWrites } from "./writer";
import type { DirectoryEvent } from "../protocol/events";

export interface ApplyContext {
  nonce: string;
  /** The event's own timestamp (ms): last-event-wins compares these. */
  eventTimestampMs: number;
  receivedAtMs: number;
  /** What a user write does to the stored password hash (passwords.ts). */
  password: PasswordWrite;
  /** The clock, for the audit row's duration and the rows' write times. */
  now: () => number;
}

/**
 * Attempts before giving up with a 500 (OneAccess retries later). An attempt fails only when another event
 * committed in between, so with up to this many events racing on one entity every one of them gets through.
 * Five keep an event under the Free plan's 50 D1 queries per invocation: at most 9 statements an attempt
 * (3 reads, the check, 4 writes, the audit row) and 3 for the create shortcut.
 */
export const MAX_ATTEMPTS = 5;

class DirectoryContention extends Error {
  override name = "DirectoryContention";
}

/** Applies one event as one D1 batch, its audit row included. Throws when storage fails. */
export async function applyEvent(db: DirectoryDb, event: DirectoryEvent, ctx: ApplyContext): Promise<ApplyOutcome> {
  const shortcut = createOfFreeKey(db, event, ctx);
  if (shortcut) {
    const [insert] = await db.batch(shortcut.statements);
    if (insert?.meta.changes === 1) return shortcut.outcome;
  }
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const reader = new DirectoryReader(db);
    const decide = plan(db, reader, event, ctx);
    await reader.run();
    const { outcome, writes, change } = decide();
    const check = reader.snapshotCheck();
    try {
      await db.batch([...(check ? [check] : []), ...writes, insertAudit(db, audit(event, ctx, outcome), change ?? undefined)]);
      return outcome;
    } catch (e) {
      if (!isSnapshotChanged(e)) throw e;
      // A little random delay, so racing events do not collide again in lockstep.
      if (attempt < MAX_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    }
  }
  throw new DirectoryContention(`directory changed during ${MAX_ATTEMPTS} attempts`);
}

function audit(event: DirectoryEvent, ctx: ApplyContext, outcome: ApplyOutcome): AuditRecord {
  return auditRecord({ receivedAtMs: ctx.receivedAtMs, eventType: event.type, nonce: ctx.nonce }, outcome, ctx.now());
}

interface Decided {
  outcome: ApplyOutcome;
  writes: D1PreparedStatement[];
  /** What the write changed, for the audit row to be its change record; null when nothing visible changed. */
  change: ChangeRecord | null;
}

/**
 * Queues every read the event's decision may need (`reader.run` sends them as one batch) and returns the
 * decision to make once they are in. A read the decision turns out not to need (the cycle check of an
 * unchanged parent, the holder of an unchanged code) costs a statement in the batch, not a round trip.
 */
function plan(db: DirectoryDb, reader: DirectoryReader, event: DirectoryEvent, ctx: ApplyContext): () => Decided {
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
        return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [], change: d.write ? organizationChange(d.write, ts) : null };
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
        return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [], change: d.write ? organizationChange(d.write, ts) : null };
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
        return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [], change: d.write ? organizationChange(d.write, ts) : null };
      };
    }
    case "CREATE_USER": {
      const existing = reader.user("username", event.username);
      const released = reader.releasedKey("user", event.username);
      return () => {
        const facts = { existing: existing.value, released: released.value, hashesPassword };
        const d = decideCreateUser(event.username, event.user, facts, ts, newId("usr"));
        return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, ctx.password, now) : [], change: d.write ? userChange(d.write, ts) : null };
      };
    }
    case "UPDATE_USER": {
      const existing = reader.user("id", event.id);
      const holder = reader.userIdWithUsername(event.username);
      return () => {
        const e = existing.value;
        const usernameHolder = e && e.username !== event.username ? holder.value : null;
        const d = decideUpdateUser(event.id, event.username, event.user, { existing: e, usernameHolder, hashesPassword }, ts);
        return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, ctx.password, now) : [], change: d.write ? userChange(d.write, ts) : null };
      };
    }
    case "DELETE_USER": {
      const existing = reader.user("id", event.id);
      return () => {
        const d = decideDeleteUser(event.id, existing.value, ts);
        return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, { kind: "keep" }, now) : [], change: d.write ? userChange(d.write, ts) : null };
      };
    }
  }
}

/**
 * The shortcut: a create's decision when nothing holds its key, as statements that only write while that
 * is true (the insert first, so its `changes` say whether the event was applied, then the audit row, written
 * only when the insert was). Null for every other event.
 */
function createOfFreeKey(db: DirectoryDb, event: DirectoryEvent, ctx: ApplyContext): { statements: D1PreparedStatement[]; outcome: ApplyOutcome } | null {
  const ts = ctx.eventTimestampMs;
  const now = ctx.receivedAtMs;
  if (event.type === "CREATE_USER") {
    const hashesPassword = ctx.password.kind === "set" && ctx.password.hash !== null;
    const d = decideCreateUser(event.username, event.user, { existing: null, released: null, hashesPassword }, ts, newId("usr"));
    if (d.write?.kind !== "insert") return null;
    const row = insertAudit(db, audit(event, ctx, d.outcome), userChange(d.write, ts)!);
    return { statements: [...userWrites(db, d.write, ctx.password, now, true), row], outcome: d.outcome };
  }
  if (event.type === "CREATE_ORGANIZATION") {
    const d = decideCreateOrganization(event.org, { existing: null, released: null, parentIsDescendant: false }, ts, newId("org"));
    if (d.write?.kind !== "insert") return null;
    const row = insertAudit(db, audit(event, ctx, d.outcome), organizationChange(d.write, ts)!);
    return { statements: [...organizationWrites(db, d.write, now, true), row], outcome: d.outcome };
  }
  return null;
}
