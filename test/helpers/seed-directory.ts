// A production-sized directory written straight into D1 (not through callbacks, which would take minutes):
// one `INSERT … SELECT` from a recursive CTE per table, binding one value each. The shape is a tenant's:
// organizations in a tree, users spread over them (a few without one), some disabled, a few tombstones, and
// an audit log with some failures. Ids follow ours ('org_' / 'usr_' + 12 characters), so cursors and path
// ids look like real ones.

export interface SeedShape {
  organizations: number;
  users: number;
  deliveries: number;
}

export const SEED_SHAPE: SeedShape = { organizations: 200, users: 20_000, deliveries: 4_000 };

const FANOUT = 6;
const DELETED_ORGS = 5;

export const seedOrgId = (i: number) => `org_seed${String(i).padStart(8, "0")}`;
export const seedUserId = (i: number) => `usr_seed${String(i).padStart(8, "0")}`;

/**
 * Writes the directory into empty tables (shown for the default shape). Organization i's parent is
 * (i - 2) / 6 + 1 (org 1 is the root) and the last 5 are tombstones (leaves); user i belongs to organization
 * i % 195 + 1 (none when i % 400 = 0), is disabled when i % 37 = 0 and a tombstone when i % 101 = 0; delivery
 * i (ids 1…n) was received n - i minutes before `nowMs`, and failed with 404 when i % 25 = 0, with 400 when
 * i % 40 = 3.
 */
export async function seedDirectory(db: D1Database, nowMs: number, shape: SeedShape = SEED_SHAPE): Promise<void> {
  const live = shape.organizations - DELETED_ORGS;
  await db.batch([
    db
      .prepare(
        `INSERT INTO organizations (id, code, name, parent_id, parent_missing, event_ts, created_at, updated_at, deleted_at)
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${shape.organizations})
         SELECT printf('org_seed%08d', i), printf('seed-org-%d', i), printf('Organization %d', i),
                CASE WHEN i = 1 THEN NULL ELSE printf('org_seed%08d', (i - 2) / ${FANOUT} + 1) END, 0,
                ?1, ?1, ?1, CASE WHEN i > ${live} THEN ?1 END
         FROM s`,
      )
      .bind(nowMs),
    db
      .prepare(
        `INSERT INTO users (id, username, name, organization_id, disabled, first_name, last_name, mobile, email,
                            event_ts, created_at, updated_at, deleted_at)
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${shape.users})
         SELECT printf('usr_seed%08d', i), printf('user%05d', i), printf('User %d', i),
                CASE WHEN i % 400 = 0 THEN NULL ELSE printf('org_seed%08d', i % ${live} + 1) END,
                CASE WHEN i % 37 = 0 THEN 1 ELSE 0 END, 'User', printf('%d', i), printf('+86 138%08d', i),
                printf('user%05d@example.test', i), ?1, ?1, ?1, CASE WHEN i % 101 = 0 THEN ?1 END
         FROM s`,
      )
      .bind(nowMs),
    db
      .prepare(
        `INSERT INTO deliveries (received_at, event_type, nonce, code, message, entity_id, duration_ms)
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${shape.deliveries})
         SELECT ?1 - (${shape.deliveries} - i) * 60000,
                CASE i % 3 WHEN 0 THEN 'CREATE_USER' WHEN 1 THEN 'UPDATE_USER' ELSE 'UPDATE_ORGANIZATION' END,
                printf('seed-nonce-%d', i),
                CASE WHEN i % 25 = 0 THEN '404' WHEN i % 40 = 3 THEN '400' ELSE '200' END,
                CASE WHEN i % 25 = 0 THEN 'user not found' WHEN i % 40 = 3 THEN 'invalid payload' ELSE 'success' END,
                printf('usr_seed%08d', i), 3
         FROM s`,
      )
      .bind(nowMs),
  ]);
}
