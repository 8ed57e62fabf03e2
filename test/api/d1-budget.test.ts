// D1's per-invocation limits, for every invocation this Worker serves but the callback (the event ledger's
// own tests cover that path): on the Free plan a Worker invocation may run at most 50 D1 queries (each
// statement of a batch is one; not enforced by the local D1), and D1 binds at most 100 parameters per
// statement. Each invocation gets its own counting binding (test/helpers/d1-counter.ts), on a
// production-sized directory, including a retention run that stops at its chunk cap.
import { createScheduledController } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { adminCookie, adminGet } from "../helpers/admin-session";
import { printCosts } from "../helpers/cost-report";
import { countD1, type D1Tally } from "../helpers/d1-counter";
import { seedDirectory, seedOrgId, seedUserId } from "../helpers/seed-directory";
import { callWorker, testEnv } from "../helpers/worker";
import { api } from "./support";

/** Workers Free plan: D1 queries per invocation. */
const MAX_QUERIES = 50;
/** D1: bound parameters per statement. */
const MAX_PARAMS = 100;

const NOW = Date.now();
const DAY_MS = 86_400_000;
/** Audit rows older than the 30-day retention: more than one run deletes (20 chunks of 1 000 rows). */
const OLD_DELIVERIES = 21_000;

const table: Array<{ route: string; figures: Record<string, number | string> }> = [];

function withinBudget(route: string, status: number | string, tally: D1Tally) {
  table.push({ route, figures: { status, queries: tally.queries, maxParams: tally.maxParams, rowsRead: tally.rowsRead, rowsWritten: tally.rowsWritten } });
  expect(tally.queries, `${route}: queries`).toBeLessThanOrEqual(MAX_QUERIES);
  expect(tally.maxParams, `${route}: bound parameters`).toBeLessThanOrEqual(MAX_PARAMS);
}

beforeAll(async () => {
  // The old audit rows first, so they have the lowest ids, as in a database that has been running.
  await testEnv.DB.prepare(
    `INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms)
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${OLD_DELIVERIES})
     SELECT ?1 + i, 'UPDATE_USER', printf('old-nonce-%d', i), '200', 'success', NULL, 2 FROM s`,
  )
    .bind(NOW - 60 * DAY_MS)
    .run();
  await seedDirectory(testEnv.DB, NOW);
});

describe("the read API", () => {
  const org = seedOrgId(50);
  const parent = seedOrgId(10);
  const user = seedUserId(12_345);
  const next: Record<string, string> = {};

  beforeAll(async () => {
    // Real cursors, from each list's first page.
    for (const [name, path] of [
      ["users", "/users"],
      ["members", `/users?organization=${org}`],
      ["search", "/users?q=user1&limit=20"],
      ["organizations", "/organizations"],
      ["children", `/organizations/${parent}/children?limit=2`],
      ["deliveries", "/deliveries"],
      ["failures", "/deliveries?code=404"],
    ] as const) {
      const res = await api(path);
      expect(res.body.next_cursor, path).toEqual(expect.any(String));
      next[name] = res.body.next_cursor;
    }
  });

  const routes = (): Array<[string, number]> => [
    ["/users", 200],
    ["/users?limit=200", 200],
    [`/users?cursor=${next.users}`, 200],
    ["/users?include_deleted=true&limit=200", 200],
    [`/users?organization=${org}`, 200],
    [`/users?organization=${org}&cursor=${next.members}`, 200],
    ["/users?q=user1&limit=20", 200],
    [`/users?q=user1&limit=20&cursor=${next.search}`, 200],
    [`/users?q=user1&organization=${org}&include_deleted=true&limit=200&cursor=${next.members}`, 200],
    [`/users/${user}`, 200],
    [`/users/${seedUserId(10_100)}?include_deleted=true`, 200],
    ["/users/usr_nosuchuser0", 404],
    ["/organizations", 200],
    [`/organizations?cursor=${next.organizations}`, 200],
    ["/organizations?include_deleted=true&limit=200", 200],
    [`/organizations/${org}`, 200],
    [`/organizations/${seedOrgId(200)}?include_deleted=true`, 200],
    ["/organizations/org_nosuchorg00", 404],
    [`/organizations/${parent}/children`, 200],
    [`/organizations/${parent}/children?limit=2&cursor=${next.children}`, 200],
    ["/organizations/org_nosuchorg00/children", 404],
    [`/organizations/${org}/members`, 200],
    [`/organizations/${org}/members?include_deleted=true&cursor=${next.members}`, 200],
    ["/organizations/org_nosuchorg00/members", 404],
    ["/deliveries", 200],
    ["/deliveries?limit=200", 200],
    [`/deliveries?cursor=${next.deliveries}`, 200],
    ["/deliveries?code=404", 200],
    [`/deliveries?code=404&cursor=${next.failures}`, 200],
    ["/deliveries?code=200&limit=200", 200],
  ];

  it("every route, GET and HEAD, with and without cursors and filters, stays within the budget", async () => {
    for (const [path, status] of routes()) {
      const tallies: D1Tally[] = [];
      for (const method of ["GET", "HEAD"]) {
        const { db, tally } = countD1(testEnv.DB);
        const res = await api(path, { method, env: { DB: db } });
        expect(res.status, `${method} ${path}`).toBe(status);
        // The counting binding was the one used (a route that never reached it would pass trivially).
        expect(tally.queries, `${method} ${path}`).toBeGreaterThan(0);
        expect(tally.queries, `${method} ${path}`).toBeLessThanOrEqual(MAX_QUERIES);
        expect(tally.maxParams, `${method} ${path}`).toBeLessThanOrEqual(MAX_PARAMS);
        tallies.push(tally);
      }
      // HEAD runs what GET runs (the table shows GET's figures).
      expect([tallies[1]!.queries, tallies[1]!.maxParams], `HEAD ${path}`).toEqual([tallies[0]!.queries, tallies[0]!.maxParams]);
      withinBudget(`GET|HEAD /api/v1${path.replace(/cursor=[^&]+/, "cursor=…")}`, status, tallies[0]!);
    }
  });

  it("a refused parameter runs no query at all", async () => {
    for (const path of ["/users?limit=0", `/users?q=${"a".repeat(49)}`, "/deliveries?code=abc", "/users?cursor=garbage"]) {
      const { db, tally } = countD1(testEnv.DB);
      const res = await api(path, { env: { DB: db } });
      expect(res.status, path).toBe(400);
      expect(tally.queries, path).toBe(0);
    }
  });
});

describe("/admin", () => {
  it("the dashboard, with and without a search and the failures filter, stays within the budget", async () => {
    const cookie = await adminCookie();
    for (const path of ["/admin", "/admin?q=user1", "/admin?failures=1", "/admin?q=user1&failures=1", `/admin?q=${"字".repeat(17)}`]) {
      const { db, tally } = countD1(testEnv.DB);
      const res = await adminGet(path, cookie, { DB: db });
      expect(res.status, path).toBe(200);
      expect(tally.queries, path).toBeGreaterThan(0);
      withinBudget(`GET ${path}`, res.status, tally);
    }
  });
});

describe("/healthz", () => {
  it("answers without D1, with and without the operator's token", async () => {
    for (const authorization of [null, `Bearer ${testEnv.DIRECTORY_API_TOKEN}`]) {
      const { db, tally } = countD1(testEnv.DB);
      const headers: Record<string, string> = authorization === null ? {} : { authorization };
      const res = await callWorker(new Request("https://receiver.test/healthz", { headers }), { DB: db });
      expect(res.status).toBe(200);
      withinBudget(`GET /healthz${authorization === null ? "" : " (with the token)"}`, res.status, tally);
      expect(tally.queries).toBe(0);
    }
  });
});

describe("the retention cron", () => {
  it("a run with more to delete than it may stops at its chunk cap, within the budget", async () => {
    const old = () => testEnv.DB.prepare("SELECT count(*) AS n FROM deliveries WHERE received_at < ?").bind(NOW - 30 * DAY_MS).first<{ n: number }>();
    expect((await old())!.n).toBe(OLD_DELIVERIES);
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      const { db, tally } = countD1(testEnv.DB);
      await worker.scheduled(createScheduledController({ scheduledTime: NOW, cron: "17 3 * * *" }), { ...testEnv, DB: db } as unknown as Env);
      const line = log.mock.calls.map((c) => JSON.parse(String(c[0]))).find((l) => l.msg === "retention");
      // It hit its cap: old rows are left for tomorrow's run, and every statement it ran was one chunk.
      expect(line).toMatchObject({ outcome: "trimmed", complete: false });
      expect((await old())!.n).toBeGreaterThan(0);
      expect(tally.queries).toBe(line.chunks);
      withinBudget(`scheduled (retention, ${OLD_DELIVERIES} rows to trim)`, "-", tally);
    } finally {
      log.mockRestore();
    }
  });
});

it("summary", async (context) => {
  expect(table.length).toBeGreaterThan(35);
  await printCosts(context, "d1 per invocation (Free plan: 50 queries; D1: 100 bound parameters per statement):", table);
});
