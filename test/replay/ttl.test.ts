// How long the route asks the replay store to remember a nonce.
import { describe, expect, it } from "vitest";
import { REPLAY_TTL_MARGIN_MS, REPLAY_TTL_NO_WINDOW_MS, replayTtlMs } from "../../src/replay/ttl";
import { MAX_TTL_MS } from "../../src/replay/replay-guard";

describe("replayTtlMs", () => {
  it("is twice the window plus the margin", () => {
    expect(replayTtlMs(300)).toBe(600_000 + REPLAY_TTL_MARGIN_MS);
    expect(replayTtlMs(1)).toBe(2_000 + REPLAY_TTL_MARGIN_MS);
    expect(REPLAY_TTL_MARGIN_MS).toBeGreaterThan(0);
  });

  it("with the window off, a week", () => {
    expect(replayTtlMs(0)).toBe(REPLAY_TTL_NO_WINDOW_MS);
  });

  it("every accepted TIMESTAMP_TOLERANCE_SECONDS (0 to 86400) gives a time to live the object accepts", () => {
    for (const seconds of [0, 1, 300, 3600, 86_400]) {
      expect(replayTtlMs(seconds)).toBeGreaterThanOrEqual(2 * seconds * 1000);
      expect(replayTtlMs(seconds)).toBeLessThanOrEqual(MAX_TTL_MS);
    }
  });
});
