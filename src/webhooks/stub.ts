// How the rest of the Worker reaches the webhook dispatcher: its one object's name and stub, and the shape of
// what it reports to the operator page. Imported by the event ledger (its poke), /admin and the cron, never
// the object's class itself.
import type { WebhookDispatcher } from "./dispatcher";

/** The one dispatcher object: the change log has one order, so one object follows it. */
export const DISPATCHER_NAME = "webhooks";

/** The dispatcher's stub; `locationHint` is the event ledger's (beside the database it reads). */
export function dispatcherStub(namespace: DurableObjectNamespace<WebhookDispatcher>, locationHint?: DurableObjectLocationHint): DurableObjectStub<WebhookDispatcher> {
  return namespace.get(namespace.idFromName(DISPATCHER_NAME), locationHint === undefined ? undefined : { locationHint });
}

/** A message the dispatcher holds: failing (retrying), waiting behind a failing one of its entity, or dead. */
export interface HeldMessage {
  /** The change's position in the log: its `webhook-id`. */
  id: string;
  type: string;
  entityType: "user" | "organization";
  entityId: string;
  version: number;
  /** Attempts made (0: waiting behind an earlier message of its entity, not tried yet). */
  attempts: number;
  /** ISO time of the next attempt; null while waiting, and for a dead letter. */
  nextAttemptAt: string | null;
  /** What the last attempt got (`HTTP 503`, `no answer within 10 s`, `network error (TypeError)`). */
  lastError: string | null;
  /** ISO time it became a dead letter (dead letters only). */
  deadAt?: string;
}

export interface WebhookStatus {
  /** Messages delivered since the dispatcher first ran: a running total, kept with its cursor. */
  delivered: number;
  /** The position of the last change taken from the log (null: none yet, it starts at the oldest kept). */
  cursor: number | null;
  lastRunAt: string | null;
  /** New messages failed in several runs in a row and nothing succeeded since: new changes go one at a time. */
  endpointFailing: boolean;
  /** Failing messages (attempts > 0), oldest first, at most STATUS_ROWS. */
  retrying: HeldMessage[];
  retryingCount: number;
  /** Messages waiting behind a failing message of their entity. */
  waitingCount: number;
  /** Dead letters, newest first, at most STATUS_ROWS. */
  dead: HeldMessage[];
  deadCount: number;
}

/** Rows of each list the status carries. */
export const STATUS_ROWS = 50;
