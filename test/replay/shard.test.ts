// The shard function: stable (a nonce always lands on the same object, across isolates and deploys) and
// uniform (load spreads), checked by a chi-square test with a fixed bound.
import { describe, expect, it } from "vitest";
import { shardFor, shardName } from "../../src/replay/shard";

/** Small seeded PRNG (mulberry32): the "random" nonces are the same on every run, so the test never flakes. */
function seeded(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const COUNT = 20_000;

function randomLetters(seed: number): string[] {
  const next = seeded(seed);
  return Array.from({ length: COUNT }, () => Array.from({ length: 16 }, () => LETTERS[Math.floor(next() * 52)]).join(""));
}

const NONCE_SETS: Record<string, string[]> = {
  "random 16 letters (seed 1)": randomLetters(1),
  "random 16 letters (seed 2)": randomLetters(2),
  "sequential digits 0..19999": Array.from({ length: COUNT }, (_, i) => String(i)),
  "sequential 13-digit (millisecond-like)": Array.from({ length: COUNT }, (_, i) => String(1_700_000_000_000 + i)),
  "sequential zero-padded 16 digits": Array.from({ length: COUNT }, (_, i) => String(i).padStart(16, "0")),
};

/**
 * Upper bounds: the chi-square distribution's 0.999 quantile for N - 1 degrees of freedom. A uniform
 * hash exceeds it one time in a thousand; the inputs are fixed, so the outcome is too.
 */
const CHI_SQUARE_BOUND: Record<number, number> = { 4: 16.27, 16: 37.7, 64: 103.44 };

function chiSquare(nonces: string[], shards: number, shard: (n: string, s: number) => number = shardFor): number {
  const counts = new Array<number>(shards).fill(0);
  for (const n of nonces) counts[shard(n, shards)]!++;
  const expected = nonces.length / shards;
  return counts.reduce((sum, observed) => sum + (observed - expected) ** 2 / expected, 0);
}

describe("shardFor", () => {
  for (const shards of [4, 16, 64]) {
    for (const [name, nonces] of Object.entries(NONCE_SETS)) {
      it(`N = ${shards}, ${name}: chi-square under ${CHI_SQUARE_BOUND[shards]}`, () => {
        expect(chiSquare(nonces, shards)).toBeLessThan(CHI_SQUARE_BOUND[shards]!);
      });
    }
  }

  it("the uniformity check has teeth: a naive character-sum hash fails it on sequential digits", () => {
    const naive = (n: string, s: number) => [...n].reduce((a, ch) => a + ch.charCodeAt(0), 0) % s;
    expect(chiSquare(NONCE_SETS["sequential digits 0..19999"]!, 16, naive)).toBeGreaterThan(CHI_SQUARE_BOUND[16]!);
  });

  it("always answers within 0..N-1, and 0 for a single shard", () => {
    const sample = [...NONCE_SETS["random 16 letters (seed 1)"]!.slice(0, 500), "", "x", "nonce-ä-中-😀"];
    for (const shards of [1, 2, 3, 7, 64, 256]) {
      for (const n of sample) {
        const s = shardFor(n, shards);
        expect(Number.isInteger(s) && s >= 0 && s < shards).toBe(true);
        if (shards === 1) expect(s).toBe(0);
      }
    }
  });

  it("is stable: the same nonce gives the same shard, every call", () => {
    for (const n of NONCE_SETS["random 16 letters (seed 2)"]!.slice(0, 1000)) {
      expect(shardFor(n, 16)).toBe(shardFor(n, 16));
      expect(shardFor(String(n), 16)).toBe(shardFor(n.slice(), 16));
    }
  });

  // Pinned values: a change of hash would move nonces between objects on deploy, so a request and its
  // retry could be checked by different objects and both be taken as fresh. Changing these is a decision.
  it("is stable across deploys: pinned values", () => {
    const pinned: Array<[string, number[]]> = [
      ["abcdefghijklmnop", [2, 2, 34, 98]],
      ["0", [1, 13, 45, 109]],
      ["1700000000000", [1, 1, 33, 97]],
      ["nonce-ä-中", [2, 6, 6, 70]],
      ["QWERTYuiopASDFgh", [0, 0, 32, 160]],
    ];
    for (const [nonce, expected] of pinned) {
      expect([4, 16, 64, 256].map((n) => shardFor(nonce, n))).toEqual(expected);
    }
  });

  it("names objects by shard number", () => {
    expect(shardName(0)).toBe("replay-shard-0");
    expect(shardName(63)).toBe("replay-shard-63");
  });
});
