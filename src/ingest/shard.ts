// Spreads replay keys over REPLAY_SHARDS event ledger objects by a stable hash, so no single object is a
// bottleneck, and every copy of one signed request meets the same record.

/** FNV-1a over the key's UTF-16 code units: stable across isolates and deploys. */
export function shardFor(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // Final avalanche so similar keys still spread evenly.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return (hash >>> 0) % shards;
}

export function shardName(shard: number): string {
  return `replay-shard-${shard}`;
}
