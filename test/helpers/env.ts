import type { D1Migration } from "cloudflare:test";

export interface VectorKeys {
  signingKey: string;
  gcmKey: string;
  gcmKey256: string;
  cbcKey: string;
  receiveId: string;
}

export interface VectorEnvelope {
  nonce: string;
  timestamp: number | string;
  eventType: string;
  data: string;
  signature: string;
}

export interface Vectors {
  keys: VectorKeys;
  signature: Array<{
    algorithm: "sha1" | "hmac-sha256";
    key: string;
    nonce: string;
    timestamp: number;
    eventType: string;
    data: string;
    signature: string;
    note?: string;
    source?: string;
  }>;
  gcm: Array<{ key: string; layout: "iv16-b64-prefix" | "iv12" | "iv16"; random: string; msg: string; data: string }>;
  cbc: Array<{ aesKey: string; receiveId: string; msg: string; data: string; source?: string }>;
  envelopes: Array<{ profile: { signature: string; encryption: string }; body: VectorEnvelope; msg: string }>;
  negative: Array<{
    why: string;
    profile?: { signature: string; encryption: string };
    body?: VectorEnvelope;
    key?: string;
    layout?: string;
    data?: string;
  }>;
}

/** The Worker's Env plus the bindings only tests get (vitest.config.ts). */
export type TestEnv = Env & {
  TEST_MIGRATIONS: D1Migration[];
  /** An empty database of its own (test/upgrade.test.ts migrates it step by step). */
  UPGRADE_DB: D1Database;
  VECTORS: Vectors;
  DEV_VARS_EXAMPLE: string;
  /** Every .ts / .tsx file under src/, sim/, emulator/ and bench/, by path (test/architecture.test.ts). */
  SOURCES: Record<string, string>;
};
