// Sync records: each change becomes one event, sent at once in the request that made the change, and
// recorded with the reply's code and message. Order is kept where it matters downstream:
//
// - An event waits while an earlier event it depends on is unsettled (waiting, or failed in a way that
//   holds): earlier events of the same account or organization; for organizations, every earlier
//   organization event (the tree is one ordered stream, so a move never meets a parent that has not moved
//   yet); between the two, earlier events of an organization an account event names (its organization
//   before or after), and for an organization event, earlier events of accounts that name it.
// - An event also waits while an id it must carry is unknown (the create it needs was refused).
// - A failure holds back the events that depend on it when the event did not get through (no answer, 401,
//   5xx, an unreadable reply); a 400 or 404 is the receiver's verdict on that event alone and holds nothing.
// - Nothing is sent again by itself: a failed event stays failed until retried (`retry`); after a
//   successful retry the events waiting behind it are sent in order.
import { replyId, type Reply } from "../../sim/core/wire";
import { errors } from "./errors";
import type { EmulatorState, JsonValue, SyncRecord } from "./state";

export type Deliver = (eventType: string, message: string) => Promise<Reply>;

export interface SyncLog {
  (record: SyncRecord, latencyMs: number | null): void;
}

export type RecordDraft = Pick<SyncRecord, "eventType" | "objectType" | "objectId" | "objectName" | "refs" | "data" | "link">;

export function addRecord(state: EmulatorState, draft: RecordDraft, now: string): SyncRecord {
  const record: SyncRecord = {
    ...draft,
    id: state.nextRecordId++,
    status: "waiting",
    holds: false,
    code: null,
    message: "not sent yet",
    attempts: 0,
    createdAt: now,
    updatedAt: now,
  };
  state.records.push(record);
  return record;
}

const unsettled = (r: SyncRecord) => r.status === "waiting" || (r.status === "failed" && r.holds);

/** Whether `later` must wait for `earlier` (see the rules at the top of this file). */
export function dependsOn(later: SyncRecord, earlier: SyncRecord): boolean {
  if (later.objectId === earlier.objectId) return true;
  if (later.objectType === "organization" && earlier.objectType === "organization") return true;
  if (earlier.objectType === "organization" && later.refs.includes(earlier.objectId)) return true;
  return later.objectType === "organization" && earlier.refs.includes(later.objectId);
}

const needsOwnId = (r: SyncRecord) => !r.eventType.startsWith("CREATE_");

type Built = { ok: true; payload: Record<string, JsonValue> } | { ok: false; missing: string };

/** The event's data with the receiver's ids filled in, or which id is still unknown. */
export function buildPayload(state: EmulatorState, r: SyncRecord): Built {
  const payload: Record<string, JsonValue> = {};
  if (needsOwnId(r)) {
    const id = state.downstreamIds[r.objectId];
    if (id === undefined) return { ok: false, missing: `${r.objectType} ${r.objectName}` };
    payload.id = id;
  }
  for (const [key, value] of Object.entries(r.data)) {
    if (r.link && key === r.link.field) {
      if (r.link.orgId === null) {
        // A create leaves it out (a root, or no organization); an update says "none" explicitly.
        if (!r.eventType.startsWith("CREATE_")) payload[key] = "";
        continue;
      }
      const id = state.downstreamIds[r.link.orgId];
      if (id === undefined) return { ok: false, missing: `organization ${r.link.orgCode}` };
      payload[key] = id;
    } else {
      payload[key] = value;
    }
  }
  return { ok: true, payload };
}

/** Why `r` cannot be sent now, or null. */
export function blockerOf(state: EmulatorState, r: SyncRecord): string | null {
  if (state.settings === null) return "waiting for the callback settings (PUT .../sync-settings)";
  for (const q of state.records) {
    if (q.id >= r.id) break;
    if (unsettled(q) && dependsOn(r, q)) return `waiting for sync record ${q.id}`;
  }
  const built = buildPayload(state, r);
  return built.ok ? null : `waiting for the receiver's id of ${built.missing}`;
}

/** Sends one record now (its blockers already checked) and records the outcome. */
async function attempt(state: EmulatorState, r: SyncRecord, deliver: Deliver, now: () => string, log?: SyncLog): Promise<void> {
  const built = buildPayload(state, r);
  if (!built.ok) return;
  const reply = await deliver(r.eventType, JSON.stringify(built.payload));
  r.attempts++;
  r.updatedAt = now();
  r.code = reply.code;
  r.message = reply.message === "" ? (reply.code === "200" ? "success" : `HTTP ${reply.status}`) : reply.message;
  if (reply.code === "200") {
    const id = replyId(reply);
    if (id !== null && r.eventType !== "DELETE_USER" && r.eventType !== "DELETE_ORGANIZATION") {
      // As OneAccess does: the id each reply returns replaces the one kept (page 0131: "the ID returned ... will overwrite").
      state.downstreamIds[r.objectId] = id;
    }
    if (r.eventType.startsWith("CREATE_") && id === null) {
      r.status = "failed";
      r.holds = true;
      r.message =
        reply.plaintext === null
          ? `the reply's data does not open: ${reply.openError ?? "unknown reason"}`
          : "the reply carries no id";
    } else {
      r.status = "success";
      r.holds = false;
      // Delivered: the password has nothing left to do here.
      delete r.data.password;
    }
  } else {
    r.status = "failed";
    r.holds = reply.code !== "400" && reply.code !== "404";
  }
  log?.(r, reply.latencyMs);
}

/** Sends, in order, every waiting record nothing holds back. */
export async function drain(state: EmulatorState, deliver: Deliver | null, now: () => string, log?: SyncLog): Promise<void> {
  for (const r of state.records) {
    if (r.status !== "waiting") continue;
    const blocker = deliver === null ? "waiting for the callback settings (PUT .../sync-settings)" : blockerOf(state, r);
    if (blocker !== null) {
      if (r.message !== blocker) {
        r.message = blocker;
        log?.(r, null);
      }
      continue;
    }
    await attempt(state, r, deliver!, now, log);
  }
}

/** A failed record whose entity has changed successfully since: sending it again would undo a newer change. */
export function supersededBy(state: EmulatorState, r: SyncRecord): SyncRecord | undefined {
  return state.records.find((q) => q.id > r.id && q.objectId === r.objectId && q.status === "success");
}

/** Queues one failed record again and sends what can be sent. */
export async function retryRecord(state: EmulatorState, r: SyncRecord, deliver: Deliver | null, now: () => string, log?: SyncLog) {
  if (r.status !== "failed") throw errors.retry(`sync record ${r.id} is ${r.status}: only a failed record can be retried`);
  const newer = supersededBy(state, r);
  if (newer) throw errors.retry(`sync record ${r.id} is superseded by sync record ${newer.id}: sending it again would undo that change`);
  r.status = "waiting";
  await drain(state, deliver, now, log);
}

export interface RetrySummary {
  retried: number;
  success: number;
  failed: number;
  waiting: number;
  superseded: number[];
}

/** Queues every failed record again (except superseded ones), in order, and sends what can be sent. */
export async function retryAll(state: EmulatorState, deliver: Deliver | null, now: () => string, log?: SyncLog): Promise<RetrySummary> {
  const chosen: SyncRecord[] = [];
  const superseded: number[] = [];
  for (const r of state.records) {
    if (r.status !== "failed") continue;
    if (supersededBy(state, r)) superseded.push(r.id);
    else chosen.push(r);
  }
  for (const r of chosen) r.status = "waiting";
  await drain(state, deliver, now, log);
  return {
    retried: chosen.length,
    success: chosen.filter((r) => r.status === "success").length,
    failed: chosen.filter((r) => r.status === "failed").length,
    waiting: state.records.filter((r) => r.status === "waiting").length,
    superseded,
  };
}
