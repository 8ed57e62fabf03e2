// Users as this isolate last read or wrote them, with their row version: an update of a user found here is
// decided without reading it first, so the event is one D1 round trip instead of two. The cache is only
// ever a guess: the event's batch checks that the row still has the remembered version (the snapshot check
// every decision carries), and when another isolate or event wrote the row meanwhile, the batch is rolled
// back, the entry dropped and the event decided again from a fresh read. So a stale entry costs a round
// trip, never a wrong write.
import type { UserRecord } from "./rules";

/** Entries kept (least recently used dropped first): about 1 KiB each at most. */
export const ROW_CACHE_MAX = 10_000;

export interface KnownUser {
  record: UserRecord;
  version: number;
}

export class UserRowCache {
  private readonly entries = new Map<string, KnownUser>();

  constructor(private readonly max: number = ROW_CACHE_MAX) {}

  get(id: string): KnownUser | undefined {
    const known = this.entries.get(id);
    if (known) {
      // Most recently used last.
      this.entries.delete(id);
      this.entries.set(id, known);
    }
    return known;
  }

  /** Remembers a live row; a tombstone is forgotten (an update of it is decided from a read). */
  remember(record: UserRecord, version: number): void {
    this.entries.delete(record.id);
    if (record.deletedAt !== null) return;
    this.entries.set(record.id, { record, version });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  forget(id: string): void {
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }
}

const caches = new WeakMap<object, UserRowCache>();

/** The cache of one D1 binding, shared by everything in this isolate that writes through it. */
export function userRowCache(binding: object): UserRowCache {
  let cache = caches.get(binding);
  if (!cache) {
    cache = new UserRowCache();
    caches.set(binding, cache);
  }
  return cache;
}
