// Group commit of event batches (src/directory/group-commit.ts), against the real local D1: batches sent at
// the same moment go as one D1 batch, each caller still gets its own results, and a shared batch that fails
// fails only the batch that fails on its own.
import { describe, expect, it } from "vitest";
import { groupCommitting } from "../../src/directory/group-commit";
import { withDirectoryDb } from "../helpers/directory-db";
import { callWorker, CALLBACK_URL, profile } from "../helpers/worker";
import { buildRequest, openReply } from "../sender/oneaccess-sender";
import { countingBinding, db, deliveriesFor, workerEnv } from "./support";

/** An event-shaped batch: one audit row, then a read of how many rows that nonce has. */
function rowAndCount(d: Pick<D1Database, "prepare">, nonce: string): D1PreparedStatement[] {
  return [
    d.prepare("INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms) VALUES (?, 'TEST', ?, '200', 'ok', NULL, 0)").bind(Date.now(), nonce),
    d.prepare("SELECT count(*) AS n, ? AS nonce FROM deliveries WHERE nonce = ?").bind(nonce, nonce),
  ];
}

describe("groupCommitting", () => {
  it("batches sent together reach D1 as one batch; each caller gets exactly its own results", async () => {
    const { binding, sizes } = countingBinding();
    const shared = groupCommitting(binding);
    const nonces = Array.from({ length: 5 }, (_, i) => `group-commit-together-${i}`);
    const results = await Promise.all(nonces.map((n) => shared.batch(rowAndCount(shared, n))));
    expect(sizes).toEqual([10]);
    results.forEach((r, i) => {
      expect(r).toHaveLength(2);
      expect(r[0]!.meta.changes).toBe(1);
      expect(r[1]!.results).toEqual([{ n: 1, nonce: nonces[i] }]);
    });
  });

  it("a shared batch that fails is sent again apart: only the broken batch fails, the others are written", async () => {
    const { binding, sizes } = countingBinding();
    const shared = groupCommitting(binding);
    const nonces = Array.from({ length: 4 }, (_, i) => `group-commit-broken-${i}`);
    const outcomes = await Promise.allSettled(
      nonces.map((n, i) =>
        shared.batch(i === 2 ? [...rowAndCount(shared, n), shared.prepare("INSERT INTO no_such_table (x) VALUES (1)")] : rowAndCount(shared, n)),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    for (const [i, n] of nonces.entries()) expect(await deliveriesFor(n)).toHaveLength(i === 2 ? 0 : 1);
    expect(sizes).toEqual([9, 2, 2, 3, 2]); // the shared batch, rolled back; then each alone
  });

  it("a batch sent while one is in flight waits for it, and carries everything that arrived meanwhile", async () => {
    const { binding, sizes } = countingBinding();
    const shared = groupCommitting(binding);
    const first = shared.batch(rowAndCount(shared, "group-commit-wave-a"));
    await Promise.resolve().then(() => undefined); // the first batch closes and goes out
    const later = ["b", "c", "d", "e"].map((x) => shared.batch(rowAndCount(shared, `group-commit-wave-${x}`)));
    await Promise.all([first, ...later]);
    expect(sizes).toEqual([2, 8]);
  });

  it("through the Worker: concurrent creates share D1 round trips, and each user exists exactly once", async () => {
    const { binding, sizes } = countingBinding();
    const p = profile("sha1+gcm");
    const built = await Promise.all(
      Array.from({ length: 24 }, (_, i) => buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: `group-commit-user-${i}`, name: `User ${i}` })),
    );
    const replies = await withDirectoryDb(binding, () =>
      Promise.all(built.map(({ request }) => callWorker(request, workerEnv(p, { DB: binding })).then((res) => openReply(p, res)))),
    );
    expect(replies.map((r) => r.code)).toEqual(built.map(() => "200"));
    const ids = replies.map((r) => (JSON.parse(r.plaintext) as { id: string }).id);
    expect(new Set(ids).size).toBe(24);
    const { results } = await db()
      .prepare("SELECT username, count(*) AS n FROM users WHERE username LIKE 'group-commit-user-%' GROUP BY username")
      .all<{ username: string; n: number }>();
    expect(results).toHaveLength(24);
    expect(results.every((r) => r.n === 1)).toBe(true);
    for (const { envelope } of built) expect(await deliveriesFor(envelope.nonce)).toHaveLength(1);
    // One event alone would make one D1 call (its speculative create); shared, far fewer.
    expect(sizes.length).toBeLessThan(24);
  });
});
