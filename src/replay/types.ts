// What the callback route needs from the replay store (issue: replay guard).

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
}
