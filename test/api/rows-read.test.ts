// Reads stay cheap on a production-sized directory (20 000 users, 200 organizations, 4 000 audit rows): every
// paginated list and every by-id lookup of the read API reads O(page) rows, by D1's own `meta.rows_read`,
// on the first page and on a page deep in the cursor chain. What has to read whole tables (the substring
// search, the organization detail's counts, /admin's counts and tree) is measured and printed instead.
//
// Twice: on the schema as migrated, and with the index changes of the migration landing in parallel (a
// partial index over failure rows; no users name/email/username-nocase indexes), so no read relies on the
// indexes that go and the failures filter is measured with the index that comes.
import { beforeAll, describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/read/cursor";
import { adminCookie, adminGet } from "../helpers/admin-session";
import { printCosts } from "../helpers/cost-report";
import { countD1, type D1Tally } from "../helpers/d1-counter";
import { seedDirectory, seedOrgId, seedUserId } from "../helpers/seed-directory";
import { testEnv } from "../helpers/worker";
import { api } from "./support";

/**
 * O(page): the page and the one row more that says whether there is a next page, each possibly read twice
 * (an index entry, then the row), plus a few rows for an existence check.
 */
const pageBound = (limit: number) => 2 * (limit + 1) + 10;
/** A lookup by id reads a handful of rows whatever the table's size. */
const LOOKUP_BOUND = 10;

async function measure(path: string): Promise<{ status: number; body: any; tally: D1Tally }> {
  const { db, tally } = countD1(testEnv.DB);
  const res = await api(path, { env: { DB: db } });
  return { status: res.status, body: res.body, tally };
}

let cookie: string;
beforeAll(async () => {
  await seedDirectory(testEnv.DB, Date.now());
  const { n } = (await testEnv.DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>())!;
  expect(n).toBe(20_000);
  cookie = await adminCookie();
});

const SCHEMAS: Array<[string, string[]]> = [["as migrated", []]];

describe.each(SCHEMAS)("on the seeded directory, %s", (schema, changes) => {
  beforeAll(async () => {
    for (const sql of changes) await testEnv.DB.prepare(sql).run();
  });

  const measured: Array<{ route: string; figures: Record<string, number | string> }> = [];

  /** A list page: full (`limit` items, so nothing trivially cheap is measured), within the bound. */
  async function page(route: string, path: string, limit: number, firstId?: string | number) {
    const { status, body, tally } = await measure(path);
    expect(status, path).toBe(200);
    expect(body.data, path).toHaveLength(limit);
    if (firstId !== undefined) expect(body.data[0].id, path).toBe(firstId);
    measured.push({ route, figures: { rows: tally.rowsRead, bound: pageBound(limit) } });
    expect(tally.rowsRead, `${path} reads ${tally.rowsRead} rows`).toBeLessThanOrEqual(pageBound(limit));
    return body as { data: Array<{ id: string | number }>; next_cursor: string | null };
  }

  it("users: a page reads O(page) rows, first and deep in the chain, with and without tombstones", async () => {
    await page("GET /users", "/users", 50, seedUserId(1));
    await page("GET /users?limit=200", "/users?limit=200", 200);
    // After usr_seed00019000 (not a tombstone: every 101st user is one) comes usr_seed00019001.
    const deep = encodeCursor("users", seedUserId(19000));
    await page("GET /users?cursor=(deep)", `/users?cursor=${deep}`, 50, seedUserId(19001));
    await page("GET /users?include_deleted=true", "/users?include_deleted=true", 50);
    await page("GET /users?include_deleted=true&cursor=(deep)", `/users?include_deleted=true&cursor=${deep}`, 50, seedUserId(19001));
  });

  it("users of an organization and its members: O(page), first page and the next", async () => {
    const org = seedOrgId(50);
    const first = await page("GET /users?organization=", `/users?organization=${org}`, 50);
    await page("GET /users?organization=&cursor=", `/users?organization=${org}&cursor=${first.next_cursor}`, 50);
    const members = await page("GET /organizations/{id}/members", `/organizations/${org}/members`, 50);
    await page("GET /organizations/{id}/members?cursor=", `/organizations/${org}/members?cursor=${members.next_cursor}`, 50);
  });

  it("organizations and children: O(page), first and deep", async () => {
    await page("GET /organizations", "/organizations", 50, seedOrgId(1));
    await page("GET /organizations?cursor=(deep)", `/organizations?cursor=${encodeCursor("organizations", seedOrgId(140))}`, 50, seedOrgId(141));
    // Organization 10's children are 56–61 (six per parent).
    const children = await page("GET /organizations/{id}/children?limit=2", `/organizations/${seedOrgId(10)}/children?limit=2`, 2, seedOrgId(56));
    await page(
      "GET /organizations/{id}/children?limit=2&cursor=",
      `/organizations/${seedOrgId(10)}/children?limit=2&cursor=${children.next_cursor}`,
      2,
      seedOrgId(58),
    );
  });

  it("deliveries, newest first and filtered by a code: O(page), first and deep", async () => {
    await page("GET /deliveries", "/deliveries", 50, 4000);
    await page("GET /deliveries?cursor=(deep)", `/deliveries?cursor=${encodeCursor("deliveries", 500)}`, 50, 499);
    // 404 is every 25th delivery, 400 every 40th from 3: ids 3975, 3950, … and 3963, 3923, ….
    await page("GET /deliveries?code=404", "/deliveries?code=404", 50, 4000);
    await page("GET /deliveries?code=404&cursor=(deep)", `/deliveries?code=404&cursor=${encodeCursor("deliveries", 2000)}`, 50, 1975);
    await page("GET /deliveries?code=400", "/deliveries?code=400", 50, 3963);
    await page("GET /deliveries?code=200", "/deliveries?code=200", 50, 3999);
  });

  it("a user by id reads a handful of rows, found or not", async () => {
    for (const [route, path, status] of [
      ["GET /users/{id}", `/users/${seedUserId(12_345)}`, 200],
      ["GET /users/{id} (tombstone, include_deleted)", `/users/${seedUserId(10_100)}?include_deleted=true`, 200],
      ["GET /users/{id} (404)", "/users/usr_nosuchuser0", 404],
    ] as const) {
      const { status: got, tally } = await measure(path);
      expect(got, path).toBe(status);
      measured.push({ route, figures: { rows: tally.rowsRead, bound: LOOKUP_BOUND } });
      expect(tally.rowsRead, path).toBeLessThanOrEqual(LOOKUP_BOUND);
    }
  });

  it("whole-table reads, measured: the search, the organization detail's counts, /admin", async (context) => {
    const whole: Array<{ route: string; figures: Record<string, number | string> }> = [];
    for (const [route, path] of [
      ["GET /organizations/{id} (root: 6 children, ~100 members)", `/organizations/${seedOrgId(1)}`],
      ["GET /users?q= (no match: the whole table)", "/users?q=nobody-has-this"],
      ["GET /users?q= (a page of matches late in id order)", "/users?q=user1"],
    ] as const) {
      const { status, tally } = await measure(path);
      expect(status, path).toBe(200);
      whole.push({ route, figures: { rows: tally.rowsRead, queries: tally.queries } });
    }
    for (const [route, path] of [
      ["/admin", "/admin"],
      ["/admin?q= (no match)", "/admin?q=nobody-has-this"],
      ["/admin?failures=1", "/admin?failures=1"],
    ] as const) {
      const { db, tally } = countD1(testEnv.DB);
      const res = await adminGet(path, cookie, { DB: db });
      expect(res.status, path).toBe(200);
      whole.push({ route, figures: { rows: tally.rowsRead, queries: tally.queries, perQuery: tally.statements.map((s) => s.rowsRead).join("+") } });
      // The counters read each table once: 200 organizations, 20 000 users, 4 000 deliveries.
      const counts = tally.statements.find((s) => s.sql.includes("organizations_parent_missing"));
      expect(counts, path).toBeDefined();
      expect(counts!.rowsRead, path).toBeLessThanOrEqual(200 + 20_000 + 4_000 + 10);
    }
    // A sanity floor, so a change that makes these cheap shows up here (and in the README's figures).
    expect(whole[1]!.figures.rows).toBeGreaterThanOrEqual(20_000);
    await printCosts(context, `d1 rows read (${schema}), O(page) routes:`, measured);
    await printCosts(context, `d1 rows read (${schema}), whole-table reads:`, whole);
  });
});

describe("a failure-code filter, served by the indexes over failure rows only", () => {
  // Saying `code <> '200'` next to `code = ?` lets the partial indexes serve the filter (only failures are
  // indexed): without it, SQLite walks the whole table newest first (about 25 rows per 404 here).

  it("reads O(page) rows for the most common failure code, first page and deep", async (context) => {
    const figures: Array<{ route: string; figures: Record<string, number | string> }> = [];
    for (const [route, path, first] of [
      ["GET /deliveries?code=404", "/deliveries?code=404", 4000],
      ["GET /deliveries?code=404&cursor=(deep)", `/deliveries?code=404&cursor=${encodeCursor("deliveries", 2000)}`, 1975],
    ] as const) {
      const { status, body, tally } = await measure(path);
      expect(status, path).toBe(200);
      expect(body.data, path).toHaveLength(50);
      expect(body.data[0].id, path).toBe(first);
      figures.push({ route, figures: { rows: tally.rowsRead, bound: pageBound(50) } });
      expect(tally.rowsRead, path).toBeLessThanOrEqual(pageBound(50));
    }
    // The same filter without the extra clause, for the record: the whole table down to the 51st 404.
    const plain = await testEnv.DB.prepare("SELECT id FROM deliveries WHERE code = ? ORDER BY id DESC LIMIT 51").bind("404").all();
    figures.push({ route: "(code = '404' alone, for comparison)", figures: { rows: plain.meta.rows_read } });
    expect(plain.meta.rows_read).toBeGreaterThan(pageBound(50));
    await printCosts(context, "d1 rows read, deliveries filtered by a failure code:", figures);
  });
});

describe("the change feed on the seeded log (4 000 audit rows, every 200 a change record)", () => {
  beforeAll(async () => {
    await testEnv.DB.prepare(
      `UPDATE deliveries SET change_type = 'user.updated', changed = '["name"]', entity_version = 1, event_at = received_at, entity = '{}'
       WHERE code = '200'`,
    ).run();
  });

  it("a page, a deep page and a caught-up poll read O(page) rows: the two ends of the log and the page, never a scan window", async (context) => {
    const figures: Array<{ route: string; figures: Record<string, number | string> }> = [];
    for (const [label, path, expectLength] of [
      ["GET /events (from the oldest)", "/events?limit=50", 50],
      ["GET /events?after=(deep)", `/events?limit=50&after=${encodeCursor("events", 2000)}`, 50],
      ["GET /events?after=(newest): a caught-up poll", `/events?after=${encodeCursor("events", 4000)}`, 0],
    ] as const) {
      const { status, body, tally } = await measure(path);
      expect(status, path).toBe(200);
      expect(body.data, path).toHaveLength(expectLength);
      expect(body.next_cursor, path).not.toBeNull();
      figures.push({ route: label, figures: { rows: tally.rowsRead, bound: pageBound(expectLength) } });
      expect(tally.rowsRead, `${path} reads ${tally.rowsRead} rows`).toBeLessThanOrEqual(pageBound(expectLength));
    }
    await printCosts(context, "d1 rows read, the change feed:", figures);
  });
});
