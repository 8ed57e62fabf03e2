// Upgrading a populated database across migration 0003 (the tables reshaped for fewer rows written) and 0004
// (the change log's columns): the Worker writes every kind of row (a tree, members, renames and the keys they
// gave up, tombstones, revivals, flags, extensions, password hashes, audit rows of every code); those rows, in
// the columns a 0002 database has, fill a database at 0002, which is then migrated. Every row, id and
// tombstone must be as before, ids must keep growing, and the Worker must go on working on it. The
// migration's own rows written are printed: what the upgrade costs (README, "Upgrading").
import { applyD1Migrations } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { withDirectoryDb } from "./helpers/directory-db";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "./helpers/worker";
import { buildRequest, openReply, randomNonce } from "./sender/oneaccess-sender";

const db = () => testEnv.UPGRADE_DB;
const p = profile("sha1+gcm");
let clock = Date.now() - 100_000;

/** An event through the Worker, into `target` (the test's own database while filling, the upgraded one after). */
async function send(eventType: string, payload: unknown, env: Record<string, unknown> = {}, target: D1Database = testEnv.DB) {
  const { request } = await buildRequest(CALLBACK_URL, p, eventType, payload, { timestamp: ++clock });
  const reply = await openReply(p, await withDirectoryDb(target, () => callWorker(request, { ...envFor(p), DB: target, ...env })));
  const id = reply.plaintext.startsWith("{") ? (JSON.parse(reply.plaintext) as { id: string }).id : "";
  return { code: reply.code, id };
}

/** Each table's columns as a 0002 database has them, and its order. */
const TABLES: Record<string, { columns: string; order: string }> = {
  organizations: { columns: "id, code, name, parent_id, parent_missing, extensions, event_ts, created_at, updated_at, deleted_at, version", order: "id" },
  users: {
    columns:
      "id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name, mobile, email, extensions, password_hash, event_ts, created_at, updated_at, deleted_at, version",
    order: "id",
  },
  released_keys: { columns: "entity, key, entity_id, released_ts", order: "entity, key" },
  deliveries: { columns: "id, received_at, event_type, nonce, code, message, entity_id, duration_ms", order: "id" },
};

async function everyRow(from: D1Database): Promise<Record<string, Array<Record<string, unknown>>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const [table, { columns, order }] of Object.entries(TABLES)) {
    out[table] = (await from.prepare(`SELECT ${columns} FROM ${table} ORDER BY ${order}`).all<Record<string, unknown>>()).results;
  }
  return out;
}

/** Writes rows into a 0002 database as they are (ids included), a few rows per statement (100 parameters at most). */
async function copyInto(target: D1Database, rows: Record<string, Array<Record<string, unknown>>>) {
  for (const [table, { columns }] of Object.entries(TABLES)) {
    const names = columns.split(", ");
    const perStatement = Math.floor(100 / names.length);
    const list = rows[table]!;
    for (let i = 0; i < list.length; i += perStatement) {
      const chunk = list.slice(i, i + perStatement);
      const values = chunk.map(() => `(${names.map(() => "?").join(", ")})`).join(", ");
      await target.prepare(`INSERT INTO ${table} (${columns}) VALUES ${values}`).bind(...chunk.flatMap((r) => names.map((n) => r[n] as SqlStorageValue))).run();
    }
  }
}

async function schema(): Promise<string[]> {
  const { results } = await db().prepare("SELECT type || ' ' || name AS o FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name").all<{ o: string }>();
  return results.map((r) => r.o);
}

describe("upgrading a populated 0002 database across 0003", () => {
  it("keeps every row, id and tombstone, and the Worker goes on with ids that keep growing", async () => {
    const migrations = testEnv.TEST_MIGRATIONS;
    const upTo0002 = migrations.filter((m) => /^000[12]_/.test(m.name));
    const after0002 = migrations.filter((m) => !upTo0002.includes(m));
    expect(upTo0002).toHaveLength(2);
    expect(after0002.map((m) => m.name)).toEqual(["0003_rows_written.sql", "0004_change_log.sql"]);
    await applyD1Migrations(db(), upTo0002);

    // What a deployment's Worker writes.
    const first = await send("CREATE_ORGANIZATION", { code: "u-root", name: "Root", region: "north" });
    const root = first.id;
    const child = (await send("CREATE_ORGANIZATION", { code: "u-child", name: "Child", parentId: root })).id;
    const gone = (await send("CREATE_ORGANIZATION", { code: "u-gone", name: "Gone" })).id;
    await send("DELETE_ORGANIZATION", { id: gone });
    const waiting = (await send("CREATE_USER", { username: "u-waiting", name: "Waiting", organizationId: gone })).id;
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      ids.push((await send("CREATE_USER", { username: `u-user-${i}`, name: `User ${i}`, organizationId: i % 2 ? root : child, email: `u${i}@example.test`, employeeNo: i })).id);
    }
    await send("UPDATE_USER", { id: ids[0], username: "u-user-0-renamed", name: "Renamed" });
    await send("UPDATE_ORGANIZATION", { id: child, code: "u-child-renamed", name: "Child renamed", parentId: root });
    await send("UPDATE_USER", { id: ids[1], username: "u-user-1", disabled: true, mobile: "+86 1" });
    await send("DELETE_USER", { id: ids[2] });
    await send("DELETE_USER", { id: ids[3] });
    await send("CREATE_USER", { username: "u-user-3", name: "Revived" });
    await send("CREATE_USER", { username: "u-hashed", name: "Hashed", password: "Secret-1" }, { PASSWORD_POLICY: "pbkdf2" });
    await send("UPDATE_USER", { id: "usr_doesnotexist", username: "nobody" });
    await send("DELETE_ORGANIZATION", { id: root });
    await send("CHECK_URL", randomNonce(16));
    await send("CREATE_USER", { username: "u-bad" });

    const before = await everyRow(testEnv.DB);
    await copyInto(db(), before);
    expect(await everyRow(db())).toEqual(before);
    expect(before.organizations!.length).toBe(3);
    expect(before.users!.length).toBe(14);
    expect(before.released_keys!.length).toBe(2);
    expect(new Set((before.deliveries as Array<{ code: string }>).map((d) => d.code))).toEqual(new Set(["200", "400", "404"]));
    expect(before.users!.some((u) => (u as { password_hash: string | null }).password_hash?.startsWith("pbkdf2-sha256$"))).toBe(true);
    expect((before.users as Array<{ id: string; organization_missing: number }>).find((u) => u.id === waiting)!.organization_missing).toBe(1);
    const maxId = Math.max(...(before.deliveries as Array<{ id: number }>).map((d) => d.id));

    // The migrations, statement by statement as wrangler applies them, with what they write.
    const queries = after0002.flatMap((m) => m.queries);
    const results = await db().batch(queries.map((q) => db().prepare(q)));
    const written = results.reduce((n, r) => n + (r.meta.rows_written ?? 0), 0);
    const rows = Object.values(before).reduce((n, t) => n + t.length, 0);
    const perStatement = queries.map((q, i) => `${q.replace(/\s+/g, " ").slice(0, 40)}…=${results[i]!.meta.rows_written}`).join("; ");
    console.info(`upgrade 0003+0004: ${rows} rows copied (${before.users!.length} users, ${before.organizations!.length} organizations, ${before.deliveries!.length} audit rows), ${written} rows written: ${perStatement}`);

    expect(await everyRow(db())).toEqual(before);
    expect(await schema()).toEqual([
      "table d1_migrations",
      "table deliveries",
      "index deliveries_failed",
      "index deliveries_failed_by_code",
      "table organizations",
      "index organizations_by_parent",
      "table released_keys",
      "view snapshot_checks",
      "trigger snapshot_checks_abort",
      "table users",
      "index users_by_organization",
    ]);
    // The audit rows from before carry no change record.
    expect(await db().prepare("SELECT count(*) AS n FROM deliveries WHERE change_type IS NOT NULL").first("n")).toBe(0);

    // After the upgrade the Worker goes on with it: new audit rows continue above every id given before,
    // creates of known keys still find their rows, and a change records itself.
    const again = await send("CREATE_USER", { username: "u-user-4", name: "User 4", organizationId: child, mobile: "9" }, {}, db());
    expect(again).toEqual({ code: "200", id: ids[4] });
    const fresh = await send("CREATE_USER", { username: "u-after", name: "After" }, {}, db());
    expect(fresh.code).toBe("200");
    const newest = await db().prepare("SELECT min(id) AS lo FROM deliveries WHERE id > ?").bind(maxId).first<{ lo: number }>();
    expect(newest!.lo).toBe(maxId + 1);
    expect(await db().prepare("SELECT count(*) AS n FROM users").first("n")).toBe(15);
  });
});
