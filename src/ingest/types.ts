// What the ingest facade hands the event ledger, and what the ledger answers.
import type { PasswordIntent } from "../directory/passwords";
import type { Cost } from "./cost";
import type { EventType } from "../protocol/envelope";
import type { DirectoryEvent } from "../protocol/events";

/** A reply as it was first sent, kept so a copy of the request gets the same answer (re-sealed). */
export interface StoredReply {
  code: string;
  message: string;
  /** The reply's `data` before sealing (an `{"id":...}` text, a CHECK_URL's echo, or empty); never a payload. */
  plaintext: string;
}

/** One authenticated request: the ledger does its work once per replay key and answers every copy from its record. */
export interface LedgerRequest {
  /** The request's replay key (protocol/callback.ts): every signature-preserving variant shares it. */
  key: string;
  ttlMs: number;
  /** For the audit row only. */
  nonce: string;
  receivedAtMs: number;
  work: Work;
}

export type Work =
  /** Apply the event to the directory (one D1 batch, its audit row included). */
  | { kind: "apply"; event: DirectoryEvent; eventTimestampMs: number; password: PasswordIntent }
  /** CHECK_URL: write its audit row and answer the echo. */
  | { kind: "echo"; echo: string }
  /**
   * A payload refused after authentication (400): write its audit row, once per replay key. Recorded apart
   * from the key's own record, so a refused copy can never take the genuine request's place.
   */
  | { kind: "refuse"; eventType: EventType; message: string };

export type LedgerOutcome = (
  /** First sight of this key: the work is done and its reply recorded. */
  | { state: "done"; reply: StoredReply; entityId: string | null }
  /** The same signed request was already answered (or is being answered right now): its reply, nothing done. */
  | { state: "duplicate"; reply: StoredReply }
  /** The work or the recording of its reply failed (`error`: the error's class name): nothing is recorded. */
  | { state: "failed"; error: string }
) & {
  /** What this call cost in storage (a copy that waited for its original: nothing of its own). */
  cost: Cost;
};
