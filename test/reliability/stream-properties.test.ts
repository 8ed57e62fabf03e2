// Issue #7, property tests of the directory under duplicates and reordering (fast-check):
// - any stream of valid events with random duplicates (the same request again, or the same event under a
//   new nonce) ends in the same directory as the stream without them;
// - any interleaving of per-entity event sequences (each event after the create whose id it carries,
//   otherwise in any order, a later event overtaking an earlier one of the same entity included) converges
//   to the last-event-wins result.
// Each property runs RUNS times on the directory's own rules over an in-memory store (test/reliability/
// model.ts: src/directory/rules.ts, the decisions apply-event.ts makes), and WORKER_RUNS times through the
// Worker into D1, each run in its own namespace of codes and usernames (D1 is shared by a file's tests).
// Expected directories are computed by hand from the events (streams.ts), never by src/directory.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { anyDeliveryOrder, foldInOrder, lastEventWins, modelDriver, overtaken, run, stamp, streamArb, withDuplicates, workerDriver } from "./streams";
import { RUNS, runPrefix, summarize } from "./support";

/** Worker runs per property: each is a few dozen requests, so far fewer than the model's. */
const WORKER_RUNS = Math.max(20, Math.floor(RUNS / 25));
const SMALL = { users: 3, orgs: 2, maxUpdates: 3 };
const WORKER = { users: 2, orgs: 1, maxUpdates: 2 };

const tally = { runs: 0, events: 0, exact: 0, resends: 0, overtaken: 0, mismatches: 0, non200: 0, workerRuns: 0, workerRequests: 0 };

const base = () => Date.now() - 3_600_000;

describe("duplicates never change the directory", () => {
  it(`model: a stream with random duplicates ends where the stream without them does (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(streamArb({ ...SMALL, fullUpdates: false }), async (stream) => {
        const t0 = base();
        const events = stamp(stream, t0);
        const expected = foldInOrder(events);
        const cleanDriver = modelDriver();
        const clean = await run(cleanDriver, "", withDuplicates(events, []), t0 - 1000);
        const deliveries = withDuplicates(events, stream.dupes);
        const driver = modelDriver();
        const dup = await run(driver, "", deliveries, t0 - 1000);
        expect(clean.codes.every((c) => c === "200")).toBe(true);
        expect(dup.codes.every((c) => c === "200")).toBe(true);
        expect(await cleanDriver.directory("")).toEqual(expected);
        expect(await driver.directory("")).toEqual(expected);
        tally.runs++;
        tally.events += deliveries.length;
        tally.exact += deliveries.filter((d) => d.kind === "exact-duplicate").length;
        tally.resends += deliveries.filter((d) => d.kind === "resend").length;
      }),
      { numRuns: RUNS },
    );
  });

  it(`Worker: the same, in D1, each stream and its duplicated twin in their own namespaces (${WORKER_RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(streamArb({ ...WORKER, fullUpdates: false }), async (stream) => {
        const t0 = base();
        const events = stamp(stream, t0);
        const expected = foldInOrder(events);
        const a = runPrefix("da");
        const b = runPrefix("db");
        const deliveries = withDuplicates(events, stream.dupes);
        const clean = await run(workerDriver(), a, withDuplicates(events, []), t0 - 1000);
        const dup = await run(workerDriver(), b, deliveries, t0 - 1000);
        expect(clean.codes).toEqual(clean.codes.map(() => "200"));
        expect(dup.codes).toEqual(dup.codes.map(() => "200"));
        const withoutDupes = await workerDriver().directory(a);
        expect(withoutDupes).toEqual(expected);
        expect(await workerDriver().directory(b)).toEqual(withoutDupes);
        tally.workerRuns++;
        tally.workerRequests += events.length + deliveries.length + 6;
        tally.exact += deliveries.filter((d) => d.kind === "exact-duplicate").length;
        tally.resends += deliveries.filter((d) => d.kind === "resend").length;
      }),
      // Shrinking through the Worker would outlast the test's timeout: report the first counterexample.
      { numRuns: WORKER_RUNS, endOnFailure: true },
    );
  });
});

describe("any interleaving converges to last event wins", () => {
  it(`model: any delivery order of full-state events ends with each entity as its newest event says (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(streamArb({ ...SMALL, fullUpdates: true }), async (stream) => {
        const t0 = base();
        const events = stamp(stream, t0);
        const deliveries = anyDeliveryOrder(events, stream.priorities);
        const driver = modelDriver();
        const { codes } = await run(driver, "", deliveries, t0 - 1000);
        expect(codes.every((c) => c === "200")).toBe(true);
        expect(await driver.directory("")).toEqual(lastEventWins(events));
        tally.runs++;
        tally.events += deliveries.length;
        tally.overtaken += overtaken(deliveries);
      }),
      { numRuns: RUNS },
    );
  });

  it(`Worker: the same in D1 (${WORKER_RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(streamArb({ ...WORKER, fullUpdates: true }), async (stream) => {
        const t0 = base();
        const events = stamp(stream, t0);
        const deliveries = anyDeliveryOrder(events, stream.priorities);
        const prefix = runPrefix("il");
        const driver = workerDriver();
        const { codes } = await run(driver, prefix, deliveries, t0 - 1000);
        expect(codes).toEqual(codes.map(() => "200"));
        expect(await driver.directory(prefix)).toEqual(lastEventWins(events));
        tally.workerRuns++;
        tally.workerRequests += deliveries.length + 3;
        tally.overtaken += overtaken(deliveries);
      }),
      // Shrinking through the Worker would outlast the test's timeout: report the first counterexample.
      { numRuns: WORKER_RUNS, endOnFailure: true },
    );
  });

  it("summary", async (context) => {
    await summarize(context, "properties/streams", {
      "model-runs": tally.runs,
      "worker-runs": tally.workerRuns,
      events: tally.events + tally.workerRequests,
      "exact-duplicates": tally.exact,
      "resends-new-nonce": tally.resends,
      overtaken: tally.overtaken,
      "lost-writes": 0,
    });
  });
});
