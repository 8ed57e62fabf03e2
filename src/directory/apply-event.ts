// Applies one directory event (contract section 6): read what the decision depends on, decide (rules.ts),
// then write the change and its audit row as ONE D1 batch. Storage errors are thrown, not caught, so the
// route answers 500, releases the replay reservation, and OneAccess's retry can succeed.
//
// Concurrency: two events for the same entity may interleave between the read and the batch. The batch
// therefore starts with a statement asserting that everything read still holds (DirectoryReader); when it
// does not, D1 rolls the whole batch back and the event is decided again from a fresh read. A batch is
// thus never applied on a stale decision, and never half-applied.
import type { PasswordPolicy } from "../config";
import type { DirectoryEvent, UserAttributes } from "../protocol/events";
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
  type OrgRecord,
} from "./rules";
import {
  DirectoryReader,
  insertDelivery,
  isSnapshotChanged,
  organizationWrites,
  userWrites,
  type PasswordWrite,
} from "./store";

export type { ApplyOutcome } from "./rules";

export interface ApplyContext {
  nonce: string;
  /** The event's own timestamp (ms): last-event-wins compares these. */
  eventTimestampMs: number;
  receivedAtMs: number;
  passwordPolicy: PasswordPolicy;
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

/** Applies one event as one D1 batch, the delivery row included. Throws when storage fails. */
export async function applyEvent(db: D1Database, event: DirectoryEvent, ctx: ApplyContext): Promise<ApplyOutcome> {
  const password = passwordWriter(event, ctx.passwordPolicy);
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const reader = new DirectoryReader(db);
    const { outcome, writes } = await decide(db, reader, event, ctx, password);
    const check = reader.snapshotCheck();
    const delivery = insertDelivery(db, {
      receivedAtMs: ctx.receivedAtMs,
      eventType: event.type,
      nonce: ctx.nonce,
      code: outcome.code,
      message: outcome.message,
      entityId: outcome.entityId,
      durationMs: Date.now() - ctx.receivedAtMs,
    });
    try {
      await db.batch([...(check ? [check] : []), ...writes, delivery]);
      return outcome;
    } catch (e) {
      if (!isSnapshotChanged(e)) throw e;
    }
    // A little random delay, so racing events do not collide again in lockstep.
    if (attempt < MAX_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
  }
  throw new DirectoryContention(`directory changed during ${MAX_ATTEMPTS} attempts`);
}

/** Writes the audit row of an authenticated callback that changed nothing (refused payload, CHECK_URL). */
export async function recordDelivery(db: D1Database, record: DeliveryRecord): Promise<void> {
  await insertDelivery(db, record).run();
}

interface Decided {
  outcome: ApplyOutcome;
  writes: D1PreparedStatement[];
}

async function decide(
  db: D1Database,
  reader: DirectoryReader,
  event: DirectoryEvent,
  ctx: ApplyContext,
  password: () => Promise<PasswordWrite>,
): Promise<Decided> {
  const ts = ctx.eventTimestampMs;
  const now = ctx.receivedAtMs;
  switch (event.type) {
    case "CREATE_ORGANIZATION": {
      const existing = await reader.organization("code", event.org.code);
      const released = await reader.releasedKey("organization", event.org.code);
      const parentIsDescendant = await closesCycle(reader, existing, event.org.parentId);
      const d = decideCreateOrganization(event.org, { existing, released, parentIsDescendant }, ts, newId("org"));
      return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [] };
    }
    case "UPDATE_ORGANIZATION": {
      const existing = await reader.organization("id", event.id);
      const codeHolder = existing && existing.code !== event.org.code ? await reader.organizationIdWithCode(event.org.code) : null;
      const cycle = await closesCycle(reader, existing, event.org.parentId);
      const d = decideUpdateOrganization(event.id, event.org, { existing, codeHolder, parentIsDescendant: cycle }, ts);
      return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [] };
    }
    case "DELETE_ORGANIZATION": {
      const existing = await reader.organization("id", event.id);
      const live = existing !== null && existing.deletedAt === null;
      const liveChildren = live ? await reader.liveChildCount(event.id) : 0;
      const liveMembers = live ? await reader.liveMemberCount(event.id) : 0;
      const d = decideDeleteOrganization(event.id, { existing, liveChildren, liveMembers }, ts);
      return { outcome: d.outcome, writes: d.write ? organizationWrites(db, d.write, now) : [] };
    }
    case "CREATE_USER": {
      const existing = await reader.user("username", event.username);
      const released = await reader.releasedKey("user", event.username);
      const d = decideCreateUser(
        event.username,
        event.user,
        { existing, released, hashesPassword: passwordAction(event.user.password, ctx.passwordPolicy) === "hash" },
        ts,
        newId("usr"),
      );
      return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, await password(), now) : [] };
    }
    case "UPDATE_USER": {
      const existing = await reader.user("id", event.id);
      const usernameHolder = existing && existing.username !== event.username ? await reader.userIdWithUsername(event.username) : null;
      const d = decideUpdateUser(
        event.id,
        event.username,
        event.user,
        { existing, usernameHolder, hashesPassword: passwordAction(event.user.password, ctx.passwordPolicy) === "hash" },
        ts,
      );
      return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, await password(), now) : [] };
    }
    case "DELETE_USER": {
      const existing = await reader.user("id", event.id);
      const d = decideDeleteUser(event.id, existing, ts);
      return { outcome: d.outcome, writes: d.write ? userWrites(db, d.write, { kind: "keep" }, now) : [] };
    }
  }
}

/** Whether giving `existing` this parent would make it its own ancestor (self-parenting aside). */
async function closesCycle(
  reader: DirectoryReader,
  existing: OrgRecord | null,
  parentId: string | null | undefined,
): Promise<boolean> {
  if (existing === null || parentId === null || parentId === undefined || !needsCycleCheck(existing, parentId)) return false;
  return reader.chainContains(parentId, existing.id);
}

/**
 * The password part of a user write, hashed at most once per event (a retried decision reuses it) and only
 * when a write needs it: PBKDF2 is deliberately slow.
 */
function passwordWriter(event: DirectoryEvent, policy: PasswordPolicy): () => Promise<PasswordWrite> {
  const user: UserAttributes | null = event.type === "CREATE_USER" || event.type === "UPDATE_USER" ? event.user : null;
  let pending: Promise<PasswordWrite> | undefined;
  return () => {
    pending ??= (async (): Promise<PasswordWrite> => {
      const sent = user?.password;
      switch (passwordAction(sent, policy)) {
        case "keep":
          return { kind: "keep" };
        case "clear":
          return { kind: "set", hash: null };
        case "hash":
          return { kind: "set", hash: await hashPassword(sent!) };
      }
    })();
    return pending;
  };
}
