// Spreads nonces over REPLAY_SHARDS Durable Objects by a stable hash, so no single object is a bottleneck.

/** FNV-1a over the nonce's UTF-16 code units: stable across isolates and deploys. */
export function shardFor(nonce: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < nonce.length; i++) {
    hash ^= nonce.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // Final avalanche so short, similar nonces (digits) still spread evenly.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return (hash >>> 0) % shards;
}

export function shardName(shard: number): string {
  return `replay-shard-${shard}`;
}
