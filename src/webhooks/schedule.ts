// When a failed message is tried again, and when it is given up. Pure: the dispatcher hands in its clock and
// its random source, so tests step through the schedule exactly.

/** A failing message is retried for at least this long after its first failure, then it is a dead letter. */
export const RETRY_FOR_MS = 24 * 3600 * 1000;
/** The first retry's delay; each next one doubles it, up to RETRY_DELAY_MAX_MS. */
export const RETRY_DELAY_BASE_MS = 30_000;
export const RETRY_DELAY_MAX_MS = 4 * 3600 * 1000;
/** Each delay is scaled by a factor in [1 - JITTER, 1 + JITTER), so messages that failed together spread out. */
export const RETRY_JITTER = 0.2;

/** The delay after the `failures`-th failed attempt (1 = the first failure), before jitter. */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_DELAY_BASE_MS * 2 ** Math.max(0, failures - 1), RETRY_DELAY_MAX_MS);
}

export type AfterFailure = { dead: false; nextAttemptAt: number } | { dead: true };

/**
 * After a failed attempt at `now`: a dead letter once RETRY_FOR_MS have passed since the first failure, else
 * the next attempt, never later than that deadline (so the last attempt is made exactly at it).
 * `random` is in [0, 1).
 */
export function afterFailure(firstFailedAt: number, failures: number, now: number, random: number): AfterFailure {
  const deadline = firstFailedAt + RETRY_FOR_MS;
  if (now >= deadline) return { dead: true };
  const jitter = 1 - RETRY_JITTER + 2 * RETRY_JITTER * random;
  return { dead: false, nextAttemptAt: Math.min(now + Math.round(retryDelayMs(failures) * jitter), deadline) };
}
