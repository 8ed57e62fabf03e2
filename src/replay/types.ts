// What the callback route needs from the replay store (issue: replay guard).

/** A reply as it was first sent, kept so an exact duplicate gets the same answer (re-sealed). */
export interface StoredReply {
  code: string;
  message: string;
  /** The reply's `data` before sealing (an `{"id":...}` text or empty); never a request payload. */
  plaintext: string;
}

export type Reservation =
  /** First sight of this nonce: process it. */
  | { state: "fresh" }
  /** Already answered with this same body: send `reply` again, apply nothing. */
  | { state: "committed"; reply: StoredReply }
  /** This nonce was seen with another body: a replay (401). */
  | { state: "conflict" }
  /** The same request is being processed right now (500, retry later). */
  | { state: "in-flight" };

export interface ReplayStore {
  reserve(nonce: string, bodyHash: string, ttlMs: number): Promise<Reservation>;
  commit(nonce: string, bodyHash: string, reply: StoredReply): Promise<void>;
  release(nonce: string, bodyHash: string): Promise<void>;
}
