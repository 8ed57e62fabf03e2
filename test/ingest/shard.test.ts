// The shard function: stable (a nonce always lands on the same object, across isolates and deploys) and
// uniform (load spreads), checked by a chi-square test with a fixed bound.
import { describe, expect, it } from "vitest";
import { shardFor, shardName } from "../../src/ingest/shard";

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

const MASK32 = 0xffffffffn;

/** FNV-1a, 32 bits, over UTF-16 code units, in BigInt arithmetic (no Math.imul, no `>>> 0` tricks). */
function fnv1a32(text: string): bigint {
  let h = 0x811c9dc5n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x01000193n) & MASK32;
  }
  return h;
}

/** The documented avalanche after FNV-1a (xor-shift 16, multiply by 0x85ebca6b, xor-shift 13), then modulo. */
function referenceShard(nonce: string, shards: number): number {
  let h = fnv1a32(nonce);
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & MASK32;
  h ^= h >> 13n;
  return Number(h % BigInt(shards));
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

  it("matches an independent FNV-1a + avalanche (BigInt arithmetic) on 2 000 nonces and 8 shard counts", () => {
    // The reference is checked against FNV-1a's published 32-bit test vectors first, so it is not merely
    // a copy of whatever shardFor computes.
    expect(fnv1a32("")).toBe(0x811c9dc5n);
    expect(fnv1a32("a")).toBe(0xe40c292cn);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968n);
    const nonces = [
      ...NONCE_SETS["random 16 letters (seed 2)"]!.slice(0, 1000),
      ...NONCE_SETS["sequential 13-digit (millisecond-like)"]!.slice(0, 500),
      ...Array.from({ length: 500 }, (_, i) => `nonce-ä-中-😀-${i}`),
    ];
    const counts = [1, 2, 3, 4, 7, 16, 64, 1000];
    const mismatches: string[] = [];
    for (const n of nonces) {
      for (const shards of counts) {
        const want = referenceShard(n, shards);
        if (shardFor(n, shards) !== want) mismatches.push(`${JSON.stringify(n)} / ${shards}: want ${want}`);
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    // The reference is not trivially constant: the nonces spread over every one of 16 shards.
    expect(new Set(nonces.map((n) => referenceShard(n, 16))).size).toBe(16);
    // And it has teeth: plain FNV-1a (the avalanche left out) disagrees with shardFor on most nonces.
    const plain = nonces.filter((n) => Number(fnv1a32(n) % 16n) !== shardFor(n, 16));
    expect(plain.length).toBeGreaterThan(nonces.length / 2);
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
      // The pins are the documented hash's values, not just whatever shardFor gave when they were written.
      expect([4, 16, 64, 256].map((n) => referenceShard(nonce, n))).toEqual(expected);
    }
  });

  it("names objects by shard number", () => {
    expect(shardName(0)).toBe("replay-shard-0");
    expect(shardName(63)).toBe("replay-shard-63");
  });
});
