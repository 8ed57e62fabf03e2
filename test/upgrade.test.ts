// Upgrading a populated database across migration 0003 (the tables reshaped for fewer rows written): a
// database at 0002 is filled through the Worker with every kind of row (a tree, members, renames and the keys
// they gave up, tombstones, revivals, flags, extensions, password hashes, audit rows of every code), then
// migrated; every row, id and tombstone must be as before, ids must keep growing, and the Worker must go on
// working. The migration's own rows written are printed: what the upgrade costs (README, "Upgrading").
import { applyD1Migrations } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { withDirectoryDb } from "./helpers/directory-db";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "./helpers/worker";
import { buildRequest, openReply, randomNonce } from "./sender/oneaccess-sender";

const db = () => testEnv.UPGRADE_DB;
const p = profile("sha1+gcm");
let clock = Date.now() - 100_000;

async function send(eventType: string, payload: unknown, env: Record<string, unknown> = {}) {
  const { request } = await buildRequest(CALLBACK_URL, p, eventType, payload, { timestamp: ++clock });
  const reply = await openReply(p, await withDirectoryDb(db(), () => callWorker(request, { ...envFor(p), DB: db(), ...env })));
  const id = reply.plaintext.startsWith("{") ? (JSON.parse(reply.plaintext) as { id: string }).id : "";
  return { code: reply.code, id };
}

const TABLES = {
  organizations: "SELECT * FROM organizations ORDER BY id",
  users: "SELECT * FROM users ORDER BY id",
  released_keys: "SELECT * FROM released_keys ORDER BY entity, key",
  deliveries: "SELECT * FROM deliveries ORDER BY id",
};

async function everyRow(): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [table, sql] of Object.entries(TABLES)) out[table] = (await db().prepare(sql).all()).results;
  return out;
}

async function schema(): Promise<string[]> {
  const { results } = await db().prepare("SELECT type || ' ' || name AS o FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name").all<{ o: string }>();
  return results.map((r) => r.o);
}

describe("upgrading a populated 0002 database across 0003", () => {
  it("keeps every row, id and tombstone, and the Worker goes on with ids that keep growing", async () => {
    const migrations = testEnv.TEST_MIGRATIONS;
    const upTo0002 = migrations.filter((m) => /^000[12]_/.test(m.name));
    const m0003 = migrations.find((m) => m.name.startsWith("0003_"))!;
    expect(upTo0002).toHaveLength(2);
    await applyD1Migrations(db(), upTo0002);

    // Fill it through the Worker, as a deployment running 0002 would have been.
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

    const before = await everyRow();
    expect(before.organizations!.length).toBe(3);
    expect(before.users!.length).toBe(14);
    expect(before.released_keys!.length).toBe(2);
    expect(new Set((before.deliveries as Array<{ code: string }>).map((d) => d.code))).toEqual(new Set(["200", "400", "404"]));
    expect(before.users!.some((u) => (u as { password_hash: string | null }).password_hash?.startsWith("pbkdf2-sha256$"))).toBe(true);
    expect((before.users as Array<{ id: string; organization_missing: number }>).find((u) => u.id === waiting)!.organization_missing).toBe(1);
    const maxId = Math.max(...(before.deliveries as Array<{ id: number }>).map((d) => d.id));

    // The migration, statement by statement as wrangler applies it, with what it writes.
    const results = await db().batch(m0003.queries.map((q) => db().prepare(q)));
    const written = results.reduce((n, r) => n + (r.meta.rows_written ?? 0), 0);
    const rows = Object.values(before).reduce((n, t) => n + t.length, 0);
    const perStatement = m0003.queries.map((q, i) => `${q.replace(/\s+/g, " ").slice(0, 40)}…=${results[i]!.meta.rows_written}`).join("; ");
    console.info(`upgrade 0003: ${rows} rows copied (${before.users!.length} users, ${before.organizations!.length} organizations, ${before.deliveries!.length} audit rows), ${written} rows written: ${perStatement}`);

    expect(await everyRow()).toEqual(before);
    expect(await schema()).toEqual([
      "table d1_migrations",
      "table deliveries",
      "index deliveries_failed",
      "table organizations",
      "index organizations_by_parent",
      "table released_keys",
      "view snapshot_checks",
      "trigger snapshot_checks_abort",
      "table users",
      "index users_by_organization",
    ]);

    // After the upgrade: new audit rows continue above every id given before, creates of known keys still
    // find their rows, and a rename's released key still answers a late create.
    await db().prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(m0003.name).run();
    const again = await send("CREATE_USER", { username: "u-user-4", name: "User 4", organizationId: child });
    expect(again).toEqual({ code: "200", id: ids[4] });
    const fresh = await send("CREATE_USER", { username: "u-after", name: "After" });
    expect(fresh.code).toBe("200");
    const newest = await db().prepare("SELECT min(id) AS lo FROM deliveries WHERE id > ?").bind(maxId).first<{ lo: number }>();
    expect(newest!.lo).toBe(maxId + 1);
    expect(await db().prepare("SELECT count(*) AS n FROM users").first("n")).toBe(15);
  });
});
