// coalesceWrites: the group commit of audit rows that are not part of an event's own batch.
import { describe, expect, it } from "vitest";
import { CoalescedTimeout, coalesceWrites } from "../../src/directory/coalesce";

/** A write function whose calls the test finishes by hand, in any order. */
function manualWriter() {
  const calls: Array<{ items: number[]; finish: () => void; fail: (e: Error) => void }> = [];
  const write = (items: number[]) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ items: [...items], finish: resolve, fail: reject });
    });
  return { calls, write };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("coalesceWrites", () => {
  it("a write with nothing in flight goes out at once, alone", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 10, maxWaitMs: 5_000 });
    const done = submit(1);
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([[1]]);
    w.calls[0]!.finish();
    await expect(done).resolves.toBeUndefined();
  });

  it("writes made while one is in flight share the next write, which waits for the first", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 10, maxWaitMs: 5_000 });
    const first = submit(1);
    await tick();
    const settled: number[] = [];
    const rest = [2, 3, 4].map((n) => submit(n).then(() => settled.push(n)));
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([[1]]); // still waiting for the first
    w.calls[0]!.finish();
    await first;
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([[1], [2, 3, 4]]);
    expect(settled).toEqual([]); // not durable yet: their write has not finished
    w.calls[1]!.finish();
    await Promise.all(rest);
    expect(settled.sort()).toEqual([2, 3, 4]);
  });

  it("a full batch closes: the next item opens another batch behind it", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 2, maxWaitMs: 5_000 });
    const all = [1, 2, 3, 4, 5].map((n) => submit(n));
    for (let i = 0; i < 3; i++) {
      await tick();
      w.calls[i]!.finish();
    }
    await Promise.all(all);
    expect(w.calls.map((c) => c.items)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("a failed write fails every item in it, and only those; the next batch still goes out", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 10, maxWaitMs: 5_000 });
    const first = submit(1);
    await tick();
    const second = [submit(2), submit(3)];
    w.calls[0]!.fail(new Error("D1_ERROR"));
    await expect(first).rejects.toThrow("D1_ERROR");
    await tick();
    const third = submit(4); // [2, 3] is being written (closed): 4 opens a third batch behind it
    w.calls[1]!.fail(new Error("D1_ERROR again"));
    for (const p of second) await expect(p).rejects.toThrow("D1_ERROR again");
    await tick();
    w.calls[2]!.finish();
    await expect(third).resolves.toBeUndefined();
    expect(w.calls.map((c) => c.items)).toEqual([[1], [2, 3], [4]]);
  });

  it("a batch whose predecessor never settles still goes out after maxWaitMs (50 ms here)", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 10, maxWaitMs: 50 });
    void submit(1); // never finished: its request was torn down mid-write
    await tick();
    const started = Date.now();
    const second = submit(2);
    await new Promise((r) => setTimeout(r, 20));
    expect(w.calls).toHaveLength(1); // 20 ms: still waiting its turn
    await new Promise((r) => setTimeout(r, 60));
    expect(w.calls.map((c) => c.items)).toEqual([[1], [2]]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    w.calls[1]!.finish();
    await expect(second).resolves.toBeUndefined();
  });

  it("lingerMs keeps a batch open that long, even with nothing in flight, so later calls join it", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 10, maxWaitMs: 5_000, lingerMs: 40 });
    const first = submit(1);
    await new Promise((r) => setTimeout(r, 10));
    const second = submit(2);
    expect(w.calls).toHaveLength(0); // 10 ms: still open
    await new Promise((r) => setTimeout(r, 60));
    expect(w.calls.map((c) => c.items)).toEqual([[1, 2]]);
    w.calls[0]!.finish();
    await Promise.all([first, second]);
  });

  it("itemTimeoutMs: a call whose batch never settles fails with CoalescedTimeout instead of waiting for ever", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 10, maxWaitMs: 5_000, itemTimeoutMs: 30 });
    const first = submit(1); // never finished: its request was torn down mid-write
    await tick();
    const joined = submit(2);
    await expect(first).rejects.toBeInstanceOf(CoalescedTimeout);
    await expect(joined).rejects.toThrow(/no answer within 30 ms/);
  });

  it("busyWindowMs: a call arriving alone goes at once; one arriving just after another batch lingers", async () => {
    const w = manualWriter();
    const submit = coalesceWrites(w.write, { maxItems: 10, maxWaitMs: 5_000, lingerMs: 40, busyWindowMs: 200 });
    const alone = submit(1);
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([[1]]); // nothing went out before: no lingering
    w.calls[0]!.finish();
    await alone;
    const busy = submit(2); // a batch went out just now: this one lingers
    await tick();
    expect(w.calls).toHaveLength(1);
    const joined = submit(3);
    await new Promise((r) => setTimeout(r, 60));
    expect(w.calls.map((c) => c.items)).toEqual([[1], [2, 3]]);
    w.calls[1]!.finish();
    await Promise.all([busy, joined]);
  });
});
