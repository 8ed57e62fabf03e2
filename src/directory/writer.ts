// A decision (rules.ts) as the statements of its batch. Column and table names are fixed here; everything
// from a payload is a bound value (extension names included: they live inside a JSON text, never in SQL).
import type { DirectoryDb } from "./audit";
import type { PasswordWrite } from "./passwords";
import type { OrgRecord, UserRecord, Write } from "./rules";

type BindValue = string | number | null;
type KeyedEntity = "organization" | "user";

/** Numbered placeholders (?1, ?2 …) by name, so a statement can use one value twice. */
function named<K extends string>(values: Record<K, BindValue>): { at: Record<K, string>; params: BindValue[] } {
  const names = Object.keys(values) as K[];
  const at = Object.fromEntries(names.map((name, i) => [name, `?${i + 1}`])) as Record<K, string>;
  return { at, params: names.map((name) => values[name]) };
}

/** 1 when `idSql` names an organization that is not live (unknown yet, or deleted); 0 otherwise. */
function organizationMissing(idSql: string): string {
  return `(${idSql} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM organizations WHERE id = ${idSql} AND deleted_at IS NULL))`;
}

/** An organization became live: rows that point to it no longer miss it. */
function clearMissingFlags(db: DirectoryDb, orgId: string): D1PreparedStatement[] {
  return [
    db.prepare("UPDATE organizations SET parent_missing = 0 WHERE parent_id = ? AND parent_missing = 1").bind(orgId),
    db.prepare("UPDATE users SET organization_missing = 0 WHERE organization_id = ? AND organization_missing = 1").bind(orgId),
  ];
}

/** Remembers the key a rename gave up; a later rename that gives up the same key replaces it. */
function releaseKey(db: DirectoryDb, entity: KeyedEntity, key: string, entityId: string, eventTs: number) {
  return db
    .prepare(
      `INSERT INTO released_keys (entity, key, entity_id, released_ts) VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT (entity, key) DO UPDATE SET entity_id = ?3, released_ts = ?4 WHERE released_ts < ?4`,
    )
    .bind(entity, key, entityId, eventTs);
}

function tombstone(db: DirectoryDb, table: "organizations" | "users", id: string, eventTs: number, nowMs: number) {
  return db
    .prepare(`UPDATE ${table} SET deleted_at = ?3, updated_at = ?3, event_ts = ?2, version = version + 1 WHERE id = ?1`)
    .bind(id, eventTs, nowMs);
}

/**
 * `INSERT … VALUES (values)`, or with `ifKeyFree` an insert that only happens while no row holds the key
 * (code / username) and no rename gave it up: the facts under which the rules decide to insert. The create
 * shortcut (apply.ts) sends it before anything is read; when the facts do not hold it changes nothing and
 * the event is decided from a read instead.
 */
function insertInto(table: "organizations" | "users", columns: string, values: string, key: { column: string; entity: KeyedEntity; at: string } | null) {
  if (key === null) return `INSERT INTO ${table} (${columns}) VALUES (${values})`;
  return `INSERT INTO ${table} (${columns}) SELECT ${values}
    WHERE NOT EXISTS (SELECT 1 FROM ${table} WHERE ${key.column} = ${key.at})
      AND NOT EXISTS (SELECT 1 FROM released_keys WHERE entity = '${key.entity}' AND key = ${key.at})`;
}

export function organizationWrites(db: DirectoryDb, write: Write<OrgRecord>, nowMs: number, ifKeyFree = false): D1PreparedStatement[] {
  if (write.kind === "tombstone") return [tombstone(db, "organizations", write.id, write.eventTs, nowMs)];
  const r = write.record;
  const { at, params } = named({
    id: r.id,
    code: r.code,
    name: r.name,
    parentId: r.parentId,
    extensions: JSON.stringify(r.extensions),
    eventTs: r.eventTs,
    now: nowMs,
  });
  if (write.kind === "insert") {
    const insert = db
      .prepare(
        insertInto(
          "organizations",
          "id, code, name, parent_id, parent_missing, extensions, event_ts, created_at, updated_at",
          `${at.id}, ${at.code}, ${at.name}, ${at.parentId}, ${organizationMissing(at.parentId)},
           ${at.extensions}, ${at.eventTs}, ${at.now}, ${at.now}`,
          ifKeyFree ? { column: "code", entity: "organization", at: at.code } : null,
        ),
      )
      .bind(...params);
    return [insert, ...clearMissingFlags(db, r.id)];
  }
  const update = db
    .prepare(
      `UPDATE organizations SET code = ${at.code}, name = ${at.name}, parent_id = ${at.parentId},
         parent_missing = ${organizationMissing(at.parentId)}, extensions = ${at.extensions},
         event_ts = ${at.eventTs}, updated_at = ${at.now}, deleted_at = NULL, version = version + 1
       WHERE id = ${at.id}`,
    )
    .bind(...params);
  return [
    update,
    ...(write.revives ? clearMissingFlags(db, r.id) : []),
    ...(write.releasedKey !== null ? [releaseKey(db, "organization", write.releasedKey, r.id, r.eventTs)] : []),
  ];
}

export function userWrites(
  db: DirectoryDb,
  write: Write<UserRecord>,
  password: PasswordWrite,
  nowMs: number,
  ifKeyFree = false,
): D1PreparedStatement[] {
  if (write.kind === "tombstone") return [tombstone(db, "users", write.id, write.eventTs, nowMs)];
  const r = write.record;
  const { at, params } = named({
    id: r.id,
    username: r.username,
    name: r.name,
    organizationId: r.organizationId,
    disabled: r.disabled ? 1 : 0,
    firstName: r.firstName,
    middleName: r.middleName,
    lastName: r.lastName,
    mobile: r.mobile,
    email: r.email,
    extensions: JSON.stringify(r.extensions),
    keepPassword: password.kind === "keep" ? 1 : 0,
    passwordHash: password.kind === "set" ? password.hash : null,
    eventTs: r.eventTs,
    now: nowMs,
  });
  if (write.kind === "insert") {
    return [
      db
        .prepare(
          insertInto(
            "users",
            `id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name,
             mobile, email, extensions, password_hash, event_ts, created_at, updated_at`,
            `${at.id}, ${at.username}, ${at.name}, ${at.organizationId}, ${organizationMissing(at.organizationId)},
             ${at.disabled}, ${at.firstName}, ${at.middleName}, ${at.lastName}, ${at.mobile}, ${at.email},
             ${at.extensions}, IIF(${at.keepPassword}, NULL, ${at.passwordHash}), ${at.eventTs}, ${at.now}, ${at.now}`,
            ifKeyFree ? { column: "username", entity: "user", at: at.username } : null,
          ),
        )
        .bind(...params),
    ];
  }
  const update = db
    .prepare(
      `UPDATE users SET username = ${at.username}, name = ${at.name}, organization_id = ${at.organizationId},
         organization_missing = ${organizationMissing(at.organizationId)}, disabled = ${at.disabled},
         first_name = ${at.firstName}, middle_name = ${at.middleName}, last_name = ${at.lastName},
         mobile = ${at.mobile}, email = ${at.email}, extensions = ${at.extensions},
         password_hash = IIF(${at.keepPassword}, password_hash, ${at.passwordHash}),
         event_ts = ${at.eventTs}, updated_at = ${at.now}, deleted_at = NULL, version = version + 1
       WHERE id = ${at.id}`,
    )
    .bind(...params);
  return [update, ...(write.releasedKey !== null ? [releaseKey(db, "user", write.releasedKey, r.id, r.eventTs)] : [])];
}

