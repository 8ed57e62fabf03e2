// What the callback route needs from the replay store (issue: replay guard).
import type { ApplyContext } from "../directory/apply-event";
import type { DirectoryEvent } from "../protocol/events";

/** A reply as it was first sent, kept so an exact duplicate gets the same answer (re-sealed). */
export interface StoredReply {
  code: string;
  message: string;
  /** The reply's `data` before sealing (an `{"id":...}` text or empty); never a request payload. */
  plaintext: string;
}

export type Reservation =
  /**
   * First sight of this nonce (or an abandoned reservation taken over): process it. `lease` names this
   * reservation; commit and release only act on the reservation holding it.
   */
  | { state: "fresh"; lease: string }
  /** Already answered with this same body: send `reply` again, apply nothing. */
  | { state: "committed"; reply: StoredReply }
  /** This nonce was seen with another body: a replay (401). */
  | { state: "conflict" }
  /** The same request is being processed right now (500, retry later). */
  | { state: "in-flight" };

export interface ReplayStore {
  reserve(nonce: string, bodyHash: string, ttlMs: number): Promise<Reservation>;
  commit(nonce: string, bodyHash: string, reply: StoredReply, lease?: string): Promise<void>;
  /** Resolves true when a reservation was dropped. */
  release(nonce: string, bodyHash: string, lease?: string): Promise<boolean>;
  /** Reserve, do the work, commit (or release when the work fails): the route's one call per event. */
  process(request: GuardedEvent): Promise<GuardedOutcome>;
}

/**
 * One directory event as the route hands it to the replay store, once the request is authenticated,
 * opened and its payload checked: the store reserves the nonce, does the work, and records the reply, in
 * one call (see ReplayGuard.process).
 */
export interface GuardedEvent {
  nonce: string;
  bodyHash: string;
  ttlMs: number;
  work: GuardedWork;
}

export type GuardedWork =
  /** Apply the event to the directory (one D1 batch, its audit row included). */
  | { kind: "apply"; event: DirectoryEvent; context: ApplyContext }
  /** A payload refused after authentication (400): write its audit row only. */
  | { kind: "refuse"; eventType: string; code: "400"; message: string; receivedAtMs: number };

export type GuardedOutcome =
  /** First sight (or an abandoned reservation taken over): done now, and the reply recorded. */
  | { state: "done"; reply: StoredReply; entityId: string | null }
  /** Already answered with this same body: send `reply` again; nothing was done. */
  | { state: "committed"; reply: StoredReply }
  | { state: "conflict" }
  | { state: "in-flight" }
  /**
   * The work or the recording of its reply failed (`error`: the error's class name): nothing is recorded,
   * and the reservation was dropped (unless another lease had taken it over), so a retry can succeed.
   */
  | { state: "failed"; error: string };
