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

/** A tombstone's event time moved forward (rules.ts, `retime`): nothing else about the row changes. */
function retime(db: DirectoryDb, table: "organizations" | "users", id: string, eventTs: number) {
  return db.prepare(`UPDATE ${table} SET event_ts = ?2, version = version + 1 WHERE id = ?1`).bind(id, eventTs);
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
  if (write.kind === "retime") return [retime(db, "organizations", write.id, write.eventTs)];
  const r = write.record;
  if (write.kind === "update") {
    const set = changedColumns(write, ORG_COLUMNS_WRITTEN);
    if (write.revives || r.parentId !== write.previous.parentId) set.push([`parent_missing = ${organizationMissing("?1")}`, [r.parentId]]);
    return [
      updateRow(db, "organizations", write, set, nowMs),
      ...(write.revives ? clearMissingFlags(db, r.id) : []),
      ...(write.releasedKey !== null ? [releaseKey(db, "organization", write.releasedKey, r.id, r.eventTs)] : []),
    ];
  }
  const { at, params } = named({
    id: r.id,
    code: r.code,
    name: r.name,
    parentId: r.parentId,
    extensions: JSON.stringify(r.extensions),
    eventTs: r.eventTs,
    now: nowMs,
  });
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

export function userWrites(
  db: DirectoryDb,
  write: Write<UserRecord>,
  password: PasswordWrite,
  nowMs: number,
  ifKeyFree = false,
): D1PreparedStatement[] {
  if (write.kind === "tombstone") return [tombstone(db, "users", write.id, write.eventTs, nowMs)];
  if (write.kind === "retime") return [retime(db, "users", write.id, write.eventTs)];
  const r = write.record;
  if (write.kind === "update") {
    const set = changedColumns(write, USER_COLUMNS_WRITTEN);
    if (write.revives || r.organizationId !== write.previous.organizationId) {
      set.push([`organization_missing = ${organizationMissing("?1")}`, [r.organizationId]]);
    }
    if (password.kind === "set") set.push(["password_hash = ?1", [password.hash]]);
    return [updateRow(db, "users", write, set, nowMs), ...(write.releasedKey !== null ? [releaseKey(db, "user", write.releasedKey, r.id, r.eventTs)] : [])];
  }
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

/** A record field as the column it is written to, and the value written. */
type ColumnOf<R> = [column: string, value: (record: R) => BindValue];

const ORG_COLUMNS_WRITTEN: Array<ColumnOf<OrgRecord>> = [
  ["code", (r) => r.code],
  ["name", (r) => r.name],
  ["parent_id", (r) => r.parentId],
  ["extensions", (r) => JSON.stringify(r.extensions)],
];

const USER_COLUMNS_WRITTEN: Array<ColumnOf<UserRecord>> = [
  ["username", (r) => r.username],
  ["name", (r) => r.name],
  ["organization_id", (r) => r.organizationId],
  ["disabled", (r) => (r.disabled ? 1 : 0)],
  ["first_name", (r) => r.firstName],
  ["middle_name", (r) => r.middleName],
  ["last_name", (r) => r.lastName],
  ["mobile", (r) => r.mobile],
  ["email", (r) => r.email],
  ["extensions", (r) => JSON.stringify(r.extensions)],
];

type Assignment = [sql: string, params: BindValue[]];

/**
 * `column = ?` for each column whose value differs from the row as read. Only those are set: D1 bills a
 * write to an indexed column (code, username, parent, organization) as a row written per index entry, even
 * when the value is the same.
 */
function changedColumns<R>(write: { record: R; previous: R }, columns: Array<ColumnOf<R>>): Assignment[] {
  return columns.filter(([, value]) => value(write.record) !== value(write.previous)).map(([column, value]) => [`${column} = ?1`, [value(write.record)]]);
}

/**
 * The update of an existing row: the changed columns, and the bookkeeping every write makes. Each assignment
 * numbers its own parameters from ?1; they are renumbered here, in order.
 */
function updateRow<R extends { id: string; eventTs: number }>(
  db: DirectoryDb,
  table: "organizations" | "users",
  write: { record: R; revives: boolean },
  set: Assignment[],
  nowMs: number,
): D1PreparedStatement {
  const assignments: Assignment[] = [
    ...set,
    ["event_ts = ?1", [write.record.eventTs]],
    ["updated_at = ?1", [nowMs]],
    ["version = version + 1", []],
    ...(write.revives ? ([["deleted_at = NULL", []]] as Assignment[]) : []),
  ];
  const params: BindValue[] = [];
  const sql = assignments.map(([text, values]) => {
    const base = params.length;
    params.push(...values);
    return text.replace(/\?([0-9]+)/g, (_, n: string) => `?${base + Number(n)}`);
  });
  params.push(write.record.id);
  return db.prepare(`UPDATE ${table} SET ${sql.join(", ")} WHERE id = ?${params.length}`).bind(...params);
}
