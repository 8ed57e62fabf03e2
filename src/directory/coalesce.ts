// Group commit: under load, many callers each waiting on their own D1 round trip cost far more than one
// round trip carrying all their work. Used for the audit rows of CHECK_URL, written after the reply
// (apply-event.ts), and for the event batches themselves (group-commit.ts). Unless asked to linger, it
// adds nothing at low load: a call with nothing in flight before it goes out at once, alone.
//
// How: a call joins the open batch, which goes out as soon as the batch `maxInFlight` places before it has
// settled; calls that arrive meanwhile join it (up to `maxItems`, then a new batch opens behind it). Each
// caller's promise settles when its own batch has, so a caller that hands it to `waitUntil` keeps exactly
// the guarantee it had with its own round trip. A batch is sent in the request context of its first
// caller, which is alive for as long as it waits on that batch.

export interface CoalescerOptions {
  /** Most items one write carries. */
  maxItems: number;
  /**
   * Writes in flight at once (default 1): a batch waits for the one this many places before it. With 1,
   * everything that arrives while a write is out goes in the next; with 2, one batch can wait at the store
   * while the other runs.
   */
  maxInFlight?: number;
  /**
   * A batch stays open at least this long (default 0) so that more calls join it: for work off the response
   * path (audit rows written under `waitUntil`), where the wait costs nothing a client sees.
   */
  lingerMs?: number;
  /**
   * Linger only under load: when another batch went out in the last `busyWindowMs`. An event that arrives
   * alone then goes at once, and on the response path only a busy isolate trades a little latency for
   * fewer round trips.
   */
  busyWindowMs?: number;
  /**
   * A batch waits this long at most for the one before it: should the request that runs a batch be torn
   * down mid-write (its promise then never settles), the batches behind it still go out.
   */
  maxWaitMs: number;
  /**
   * A call whose batch has not settled this long after it joined fails with `CoalescedTimeout` (default:
   * it waits as long as the batch does). Its batch is sent from another caller's request: should that
   * request be torn down mid-write, this caller still gets an answer, the same as a lost storage reply
   * (the event answers 500 and OneAccess's retry finds out what was written).
   */
  itemTimeoutMs?: number;
}

export class CoalescedTimeout extends Error {
  override name = "CoalescedTimeout";
}

/** What one item of a coalesced call came to. */
export type ItemOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Wraps `run(items)` (one storage round trip for all of them, answering each item) so that concurrent
 * single calls share it. Should `run` throw, every item of that call fails with its error.
 */
export function coalesce<T, R>(run: (items: T[]) => Promise<ItemOutcome<R>[]>, options: CoalescerOptions): (item: T) => Promise<R> {
  interface Batch {
    items: T[];
    outcomes: Promise<ItemOutcome<R>[]>;
  }
  const maxInFlight = options.maxInFlight ?? 1;
  let open: Batch | null = null;
  /** The most recent batches (settled or not, never rejecting), oldest first: at most `maxInFlight`. */
  const recent: Promise<unknown>[] = [];
  /** Batches started and not yet settled: with fewer than `maxInFlight`, a batch goes out at once. */
  let unsettled = 0;
  /** When the last batch went out (ms), for `busyWindowMs`. */
  let lastSentAt = -Infinity;

  const answer = async (batch: Batch, index: number): Promise<R> => {
    const outcomes = options.itemTimeoutMs === undefined ? batch.outcomes : withTimeout(batch.outcomes, options.itemTimeoutMs);
    const outcome = (await outcomes)[index];
    if (outcome === undefined) throw new Error("coalesced call answered no outcome for an item");
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  };

  return (item: T) => {
    if (open !== null && open.items.length < options.maxItems) {
      open.items.push(item);
      return answer(open, open.items.length - 1);
    }
    const previous = unsettled >= maxInFlight && recent.length > 0 ? settledOrTimeout(recent[0]!, options.maxWaitMs) : Promise.resolve();
    const busy = options.busyWindowMs === undefined || Date.now() - lastSentAt < options.busyWindowMs;
    const turn = options.lingerMs && busy ? Promise.all([previous, delay(options.lingerMs)]) : previous;
    unsettled++;
    const batch: Batch = { items: [item], outcomes: Promise.resolve([]) };
    batch.outcomes = (async () => {
      try {
        await turn;
        // Closed from here on: later items open the next batch, which waits for this one.
        if (open === batch) open = null;
        lastSentAt = Date.now();
        return await run(batch.items);
      } finally {
        unsettled--;
      }
    })();
    open = batch;
    recent.push(batch.outcomes.catch(() => undefined));
    if (recent.length > maxInFlight) recent.shift();
    return answer(batch, 0);
  };
}

export type CoalescedWrite<T> = (item: T) => Promise<void>;

/** `coalesce` for writes that answer nothing: all of a call's items are written, or none. */
export function coalesceWrites<T>(write: (items: T[]) => Promise<void>, options: CoalescerOptions): CoalescedWrite<T> {
  return coalesce<T, void>(async (items) => {
    await write(items);
    return items.map(() => ({ ok: true, value: undefined }));
  }, options);
}

async function settledOrTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise.then(() => undefined), timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout<V>(promise: Promise<V>, ms: number): Promise<V> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CoalescedTimeout(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
