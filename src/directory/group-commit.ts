// Group commit of event batches: the batches that concurrent events send to D1 at the same moment go as
// ONE D1 batch, one round trip instead of one each. On the local runtime a D1 round trip costs far more
// than the statements in it, so under load this is most of the full path's cost.
//
// Why it is safe: a D1 batch runs its statements in order, in one transaction. Batches [A] and [B] sent as
// [A, B] run exactly as if A had committed just before B started, which is one of the orders the two could
// have run in anyway (every event's decision is guarded by its snapshot check, so B still sees, or refuses
// to build on, whatever A changed). Each event stays inside one transaction: never half-written.
//
// The one difference is that [A, B] fails as a whole: when A's snapshot check aborts it (another event got
// in between A's read and write), B is rolled back with it. So a shared batch that fails is sent again as
// separate batches, each of which then succeeds or fails on its own, exactly as it would have alone.
import { coalesce, type ItemOutcome } from "./coalesce";
import type { DirectoryDb } from "./store";

/** Most event batches sent as one D1 batch (an event's batch is a handful of statements). */
export const GROUP_MAX_BATCHES = 16;

const handles = new WeakMap<D1Database, DirectoryDb>();

/**
 * A handle on `db` whose `batch` is shared by every concurrent caller in this isolate (see the top of this
 * file): the replay objects of all shards that run here, so the more events arrive at once, the fewer
 * round trips. `prepare` as is.
 */
export function groupCommitting(db: D1Database): DirectoryDb {
  let handle = handles.get(db);
  if (!handle) {
    handle = createHandle(db);
    handles.set(db, handle);
  }
  return handle;
}

function createHandle(db: D1Database): DirectoryDb {
  const shared = coalesce<D1PreparedStatement[], D1Result[]>((batches) => runTogether(db, batches), {
    maxItems: GROUP_MAX_BATCHES,
    // One in flight: everything that arrives meanwhile goes in the next (the fewer round trips, the more
    // events a second; a local D1 round trip costs far more CPU than the statements in it).
    maxInFlight: 1,
    maxWaitMs: 5_000,
    // A batch is sent from the request of its first caller, which may belong to another shard's object:
    // should that object be reset mid-write, the others' events answer 500 (retried) rather than hang.
    itemTimeoutMs: 15_000,
    // Under load (a batch went out in the last 10 ms), a batch waits 2 ms for more events to join it: each
    // round trip saved is worth far more CPU than the wait costs latency. An event arriving alone goes at once.
    lingerMs: 2,
    busyWindowMs: 10,
  });
  return {
    prepare: (query: string) => db.prepare(query),
    batch: <T = unknown>(statements: D1PreparedStatement[]) =>
      (statements.length === 0 ? db.batch<T>(statements) : shared(statements)) as Promise<D1Result<T>[]>,
  };
}

async function runTogether(db: D1Database, batches: D1PreparedStatement[][]): Promise<ItemOutcome<D1Result[]>[]> {
  if (batches.length === 1) return [await settle(db.batch(batches[0]!))];
  let results: D1Result[];
  try {
    results = await db.batch(batches.flat());
  } catch {
    // Rolled back as a whole: each on its own, so that only the batch that fails alone fails.
    return Promise.all(batches.map((statements) => settle(db.batch(statements))));
  }
  let at = 0;
  return batches.map((statements) => {
    const mine = results.slice(at, at + statements.length);
    at += statements.length;
    return { ok: true, value: mine };
  });
}

async function settle<R>(promise: Promise<R>): Promise<ItemOutcome<R>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}
