// Placeholder until the directory issue lands: directory events must never answer 200 before they are
// applied durably, so this refuses with a storage failure (500, retry later).
import type { PasswordPolicy } from "../config";
import type { DirectoryEvent } from "../protocol/events";

export interface ApplyContext {
  nonce: string;
  /** The event's own timestamp (ms): last-event-wins compares these. */
  eventTimestampMs: number;
  receivedAtMs: number;
  passwordPolicy: PasswordPolicy;
}

export interface ApplyOutcome {
  code: "200" | "400" | "404";
  message: string;
  /** Reply `data` before sealing: `{"id":"..."}` or "". */
  replyData: string;
  entityId: string | null;
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

/** Applies one event as one D1 batch, the delivery row included. Throws when storage fails. */
export async function applyEvent(_db: D1Database, _event: DirectoryEvent, _ctx: ApplyContext): Promise<ApplyOutcome> {
  throw new Error("directory not implemented yet");
}

/** Writes the audit row of an authenticated callback that changed nothing (refused payload, CHECK_URL). */
export async function recordDelivery(_db: D1Database, _record: DeliveryRecord): Promise<void> {
  throw new Error("directory not implemented yet");
}
