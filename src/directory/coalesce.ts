// Group commit for writes that are not part of an event's own batch (the audit rows of CHECK_URL and of
// refused payloads): under load, many requests each waiting on their own D1 round trip cost far more than
// one round trip carrying all their rows. Nothing is added at low load: a write with nothing before it
// goes out at once, alone.
//
// How: a write joins the open batch, which goes out as soon as the batch before it has settled; rows that
// arrive meanwhile join it (up to `maxItems`, then a new batch opens behind it). Each caller's promise
// settles when its own batch is written, so a caller that hands it to `waitUntil` keeps exactly the
// guarantee it had with its own insert. A batch is written in the request context of its first caller,
// which is alive for as long as its `waitUntil` waits on that batch.

export interface CoalescerOptions {
  /** Most items one write carries. */
  maxItems: number;
  /**
   * A batch waits this long at most for the one before it: should the request that runs a batch be torn
   * down mid-write (its promise then never settles), the batches behind it still go out.
   */
  maxWaitMs: number;
}

export type CoalescedWrite<T> = (item: T) => Promise<void>;

/** Wraps `write(items)` (one storage round trip for all of them) so that concurrent single writes share it. */
export function coalesceWrites<T>(write: (items: T[]) => Promise<void>, options: CoalescerOptions): CoalescedWrite<T> {
  let open: { items: T[]; written: Promise<void> } | null = null;
  let previous: Promise<unknown> = Promise.resolve();
  /** Batches started and not yet settled: with none, a write needs no timer to wait on. */
  let unsettled = 0;

  return (item: T) => {
    if (open !== null && open.items.length < options.maxItems) {
      open.items.push(item);
      return open.written;
    }
    const items = [item];
    const turn = unsettled > 0 ? settledOrTimeout(previous, options.maxWaitMs) : Promise.resolve();
    unsettled++;
    const batch: { items: T[]; written: Promise<void> } = { items, written: Promise.resolve() };
    batch.written = (async () => {
      try {
        await turn;
        // Closed from here on: later items open the next batch, which waits for this one.
        if (open === batch) open = null;
        await write(items);
      } finally {
        unsettled--;
      }
    })();
    open = batch;
    previous = batch.written.catch(() => undefined);
    return batch.written;
  };
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
