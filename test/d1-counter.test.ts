// The counting D1 wrapper (test/helpers/d1-counter.ts) counts what the Workers limits count, so the budget
// tests built on it can fail: each statement of a batch is a query, bound values are per statement, rows
// come from D1's meta, and sessions count into the same tally. Results pass through unchanged.
import { beforeAll, describe, expect, it } from "vitest";
import { countD1 } from "./helpers/d1-counter";
import { testEnv } from "./helpers/worker";

beforeAll(async () => {
  await testEnv.DB.exec("CREATE TABLE IF NOT EXISTS counter_probe (n INTEGER PRIMARY KEY, label TEXT NOT NULL)");
  await testEnv.DB.prepare(
    "INSERT INTO counter_probe (n, label) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 30) SELECT i, 'row ' || i FROM s",
  ).run();
});

describe("countD1", () => {
  it("counts each run, first, all and raw as one query, with its bound values and rows", async () => {
    const { db, tally } = countD1(testEnv.DB);
    const all = await db.prepare("SELECT n FROM counter_probe WHERE n <= ?").bind(10).all<{ n: number }>();
    expect(all.results).toHaveLength(10);
    expect(await db.prepare("SELECT label FROM counter_probe WHERE n = ?").bind(7).first("label")).toBe("row 7");
    expect(await db.prepare("SELECT label FROM counter_probe WHERE n = ?").bind(99).first()).toBeNull();
    expect(await db.prepare("SELECT n FROM counter_probe WHERE n IN (?, ?, ?)").bind(1, 2, 3).raw()).toEqual([[1], [2], [3]]);
    expect(tally.queries).toBe(4);
    expect(tally.maxParams).toBe(3);
    expect(tally.statements.map((s) => s.params)).toEqual([1, 1, 1, 3]);
    expect(tally.statements[0]!.rowsRead).toBe(11); // D1 also counts the row that ends the range
    expect(tally.statements[1]!.rowsRead).toBe(1);
    expect(tally.statements[3]!.rowsRead).toBeNaN(); // raw() has no meta
  });

  it("counts every statement of a batch, on the database and on a session", async () => {
    const { db, tally } = countD1(testEnv.DB);
    const results = await db.batch([db.prepare("SELECT count(*) AS c FROM counter_probe"), db.prepare("SELECT 1 AS one")]);
    expect(results.map((r) => r.results[0])).toEqual([{ c: 30 }, { one: 1 }]);
    const session = db.withSession("first-unconstrained");
    await session.batch([session.prepare("SELECT n FROM counter_probe WHERE n > ?").bind(25), session.prepare("SELECT 2")]);
    await session.prepare("SELECT * FROM counter_probe").all();
    expect(tally.queries).toBe(5);
    expect(tally.rowsRead).toBe(30 + 0 + 5 + 0 + 30);
    expect(session.getBookmark()).not.toBeUndefined();
  });

  it("sees the parameter count of the bind a statement ran with, and counts writes", async () => {
    const { db, tally } = countD1(testEnv.DB);
    const insert = db.prepare("INSERT INTO counter_probe (n, label) VALUES (?, ?)");
    await insert.bind(100, "a").run();
    await db.batch([insert.bind(101, "b"), db.prepare(`SELECT ${Array(100).fill("?").join(", ")}`).bind(...Array(100).fill(0))]);
    expect(tally.statements.map((s) => s.params)).toEqual([2, 2, 100]);
    expect(tally.maxParams).toBe(100);
    expect(tally.rowsWritten).toBeGreaterThanOrEqual(2);
  });

  it("refuses a batch holding a statement it did not prepare (it could not count it)", async () => {
    const { db } = countD1(testEnv.DB);
    await expect(db.batch([testEnv.DB.prepare("SELECT 1")])).rejects.toThrow(/did not prepare/);
  });
});
