// The directory is written by the replay guard's Durable Object (EventLedger.process applies each event to
// D1 from inside the object), so a test that hands the Worker a faulty or recording D1 binding must hand it
// to those objects too. Swapped in place on every shard's object for the duration of `fn`, then restored.
import { runInDurableObject } from "cloudflare:test";
import { shardName } from "../../src/ingest/shard";
import { testEnv } from "./worker";

type WithEnv = { env: Env };

/** Runs `fn` with `db` as the D1 binding of the first `shards` replay objects (REPLAY_SHARDS, default 4). */
export async function withDirectoryDb<T>(db: D1Database, fn: () => Promise<T>, shards = 4): Promise<T> {
  const stubs = Array.from({ length: shards }, (_, s) => testEnv.EVENT_LEDGER.get(testEnv.EVENT_LEDGER.idFromName(shardName(s))));
  const saved: Array<Env | undefined> = [];
  for (const [i, stub] of stubs.entries()) {
    await runInDurableObject(stub, (instance) => {
      saved[i] = (instance as unknown as WithEnv).env;
      (instance as unknown as WithEnv).env = { ...saved[i]!, DB: db };
    });
  }
  try {
    return await fn();
  } finally {
    for (const [i, stub] of stubs.entries()) {
      await runInDurableObject(stub, (instance) => {
        if (saved[i]) (instance as unknown as WithEnv).env = saved[i]!;
      });
    }
  }
}

/** The shard count a set of Worker env overrides configures (REPLAY_SHARDS, or wrangler.toml's 4). */
export function shardsOf(overrides: Record<string, unknown>): number {
  const n = Number(overrides.REPLAY_SHARDS ?? testEnv.REPLAY_SHARDS ?? 4);
  return Number.isInteger(n) && n > 0 ? n : 4;
}
