// The retry schedule as numbers, and the event ledger's poke limit, with the pairs on either side of each
// boundary. The trailing poke's timer is handed to the test instead of waited for.
import { describe, expect, it } from "vitest";
import { DispatcherPoke, POKE_INTERVAL_MS } from "../../src/webhooks/poke";
import { afterFailure, retryDelayMs, RETRY_FOR_MS } from "../../src/webhooks/schedule";
import { HOOK_URL, testEnv } from "./support";

describe("the retry schedule", () => {
  it("doubles from 30 s up to a 4-hour cap", () => {
    expect([1, 2, 3, 9, 10, 11, 50].map((n) => retryDelayMs(n) / 1000)).toEqual([30, 60, 120, 7680, 14400, 14400, 14400]);
  });

  it("jitter scales a delay by 0.8 to 1.2", () => {
    const t = 1_000_000;
    expect(afterFailure(t, 1, t, 0)).toEqual({ dead: false, nextAttemptAt: t + 24_000 });
    expect(afterFailure(t, 1, t, 0.5)).toEqual({ dead: false, nextAttemptAt: t + 30_000 });
    expect(afterFailure(t, 1, t, 0.999_999)).toEqual({ dead: false, nextAttemptAt: t + 36_000 });
  });

  it("never later than 24 hours after the first failure; a failure at that moment is the last", () => {
    const first = 5_000_000;
    expect(RETRY_FOR_MS).toBe(86_400_000);
    expect(afterFailure(first, 14, first + RETRY_FOR_MS - 1000, 0.5)).toEqual({ dead: false, nextAttemptAt: first + RETRY_FOR_MS });
    expect(afterFailure(first, 15, first + RETRY_FOR_MS - 1, 0.5)).toEqual({ dead: false, nextAttemptAt: first + RETRY_FOR_MS });
    expect(afterFailure(first, 15, first + RETRY_FOR_MS, 0.5)).toEqual({ dead: true });
    expect(afterFailure(first, 2, first + RETRY_FOR_MS + 1, 0.5)).toEqual({ dead: true });
  });
});

describe("the event ledger's poke", () => {
  /** A dispatcher namespace that counts pokes. */
  function fakeEnv(url = HOOK_URL) {
    const pokes: number[] = [];
    const stub = { poke: async () => void pokes.push(pokes.length) };
    const namespace = { idFromName: (name: string) => name, get: () => stub };
    return { env: { ...testEnv, WEBHOOK_URL: url, WEBHOOK_DISPATCHER: namespace } as unknown as Env, pokes };
  }

  it("pokes at once, then at most once per interval, with one trailing poke for changes inside it", async () => {
    let now = 1_000_000;
    const held: Array<{ run: () => void; ms: number }> = [];
    const poke = new DispatcherPoke(() => now, (run, ms) => held.push({ run, ms }));
    const { env, pokes } = fakeEnv();
    poke.changed(env);
    await poke.sent;
    expect(pokes).toHaveLength(1);
    // A burst inside the interval: no poke now, one trailing poke owed, due when the interval ends.
    now += 1;
    for (let i = 0; i < 100; i++) poke.changed(env);
    expect(pokes).toHaveLength(1);
    expect(held).toEqual([{ run: expect.any(Function), ms: POKE_INTERVAL_MS - 1 }]);
    now += POKE_INTERVAL_MS - 1;
    held.shift()!.run();
    await poke.sent;
    expect(pokes).toHaveLength(2);
    // Right at the interval after that trailing poke: one ms short waits, the full interval pokes at once.
    now += POKE_INTERVAL_MS - 1;
    poke.changed(env);
    expect(pokes).toHaveLength(2);
    expect(held.map((h) => h.ms)).toEqual([1]);
    now += 1;
    held.shift()!.run();
    await poke.sent;
    expect(pokes).toHaveLength(3);
    now += POKE_INTERVAL_MS;
    poke.changed(env);
    await poke.sent;
    expect(pokes).toHaveLength(4);
    expect(held).toEqual([]);
  });

  it("does not poke while webhooks are off", async () => {
    const poke = new DispatcherPoke(() => 0, () => expect.unreachable());
    const { env, pokes } = fakeEnv("");
    poke.changed(env);
    await poke.sent;
    expect(pokes).toEqual([]);
  });

  it("a poke that fails is logged by class name and lost: the heartbeat covers it", async () => {
    const poke = new DispatcherPoke(() => 0);
    const namespace = { idFromName: (name: string) => name, get: () => ({ poke: async () => Promise.reject(new TypeError("boom: secret detail")) }) };
    const env = { ...testEnv, WEBHOOK_URL: HOOK_URL, WEBHOOK_DISPATCHER: namespace } as unknown as Env;
    const warn = console.warn;
    const lines: string[] = [];
    console.warn = (line: string) => void lines.push(line);
    try {
      poke.changed(env);
      await poke.sent;
    } finally {
      console.warn = warn;
    }
    expect(lines).toEqual([JSON.stringify({ msg: "webhook poke failed", error: "TypeError" })]);
  });
});
