// How long the route asks the replay store to remember a request. Expected values are literals: a week is
// 604 800 000 ms, the margin 60 s, the object's ceiling 30 days (2 592 000 000 ms).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { replayTtlMs } from "../../src/ingest/ttl";
import { randomNonce } from "../sender/oneaccess-sender";

const WEEK_MS = 604_800_000;
const THIRTY_DAYS_MS = 2_592_000_000;

describe("replayTtlMs", () => {
  it("is twice the window plus 60 s", () => {
    expect(replayTtlMs(300)).toBe(660_000); // 2 × 300 s + 60 s
    expect(replayTtlMs(1)).toBe(62_000); // 2 × 1 s + 60 s
    expect(replayTtlMs(3600)).toBe(7_260_000); // 2 × 3 600 s + 60 s
    expect(replayTtlMs(86_400)).toBe(172_860_000); // 2 × 86 400 s + 60 s
  });

  it("with the window off, a week", () => {
    expect(replayTtlMs(0)).toBe(WEEK_MS);
  });

  it("every accepted TIMESTAMP_TOLERANCE_SECONDS (0 to 86400) gives a time to live under the object's 30 days", () => {
    for (const seconds of [0, 1, 300, 3600, 86_400]) {
      expect(replayTtlMs(seconds)).toBeGreaterThanOrEqual(2 * seconds * 1000);
      expect(replayTtlMs(seconds)).toBeLessThanOrEqual(THIRTY_DAYS_MS);
    }
  });

  it("the replay object accepts each of them and keeps the record exactly that long (on its clock)", async () => {
    const stub = env.EVENT_LEDGER.get(env.EVENT_LEDGER.idFromName(`ttl-${randomNonce(20)}`));
    const now = 1_900_000_000_000;
    await runInDurableObject(stub, (instance) => {
      instance.clock = () => now;
    });
    const record = (key: string, ttlMs: number) =>
      stub.processOnce({ key, ttlMs, nonce: key, receivedAtMs: now, work: { kind: "echo", echo: "ttl" } });
    for (const seconds of [0, 1, 300, 86_400]) {
      const key = `ttl-${seconds}-${randomNonce(12)}`;
      expect((await record(key, replayTtlMs(seconds))).state).toBe("done");
      const row = await runInDurableObject(stub, (_i, state) =>
        state.storage.sql.exec<{ expires_at: number }>("SELECT expires_at FROM replies WHERE key = ?", key).one(),
      );
      expect(row.expires_at - now).toBe(seconds === 0 ? WEEK_MS : 2 * seconds * 1000 + 60_000);
    }
    // The ceiling those stay under: 30 days is accepted, one millisecond more is not.
    expect((await record(`ttl-max-${randomNonce(12)}`, THIRTY_DAYS_MS)).state).toBe("done");
    let refused = "";
    try {
      await runInDurableObject(stub, (instance) =>
        instance.processOnce({ key: `ttl-over-${randomNonce(12)}`, ttlMs: THIRTY_DAYS_MS + 1, nonce: "x", receivedAtMs: now, work: { kind: "echo", echo: "x" } }),
      );
    } catch (e) {
      refused = e instanceof Error ? e.message : String(e);
    }
    expect(refused).toBe("ttlMs out of range");
  });
});
