// How long a request's record must live in the event ledger.

/**
 * Slack added to every record's time to live. The window check runs on the Worker's clock, the expiry check
 * on the Durable Object's clock later: a replay checked just inside the window must still find the record
 * even when it reaches the object late (RPC latency, a busy object) or the two clocks disagree.
 */
export const REPLAY_TTL_MARGIN_MS = 60_000;

/** With the window off (tolerance 0), a request is remembered this long. */
export const REPLAY_TTL_NO_WINDOW_MS = 7 * 24 * 3600 * 1000;

/**
 * A request's timestamp may be up to the tolerance in the future, and is accepted until it is the
 * tolerance in the past: twice the window after first sight, plus the margin, so a timestamp at the far
 * edge of the window can never be replayed later.
 */
export function replayTtlMs(toleranceSeconds: number): number {
  return toleranceSeconds > 0 ? 2 * toleranceSeconds * 1000 + REPLAY_TTL_MARGIN_MS : REPLAY_TTL_NO_WINDOW_MS;
}
