// The read side's SQL (read API and operator page). Columns are listed explicitly: `users.password_hash`
// is never selected, so no read can return it. Every value from a request is a bound parameter; the only
// text joined into SQL is the fixed fragments below. User text in LIKE patterns has `\`, `%` and `_`
// escaped and every LIKE carries `ESCAPE '\'`.
//
// Reads run on a D1 session (`withSession`), so a replicated database may answer them from a replica.
import { apiOrganization, apiUser, isoTime, ORG_COLUMNS, USER_COLUMNS, type ApiOrganization, type ApiUser, type OrgRow, type UserRow } from "../directory/rows";
import type { CursorKey } from "./cursor";
import { containsPattern } from "./like";

export type { ApiOrganization, ApiUser } from "../directory/rows";

/** A D1 session, or the database itself (both prepare and batch the same way). */
export type Reader = Pick<D1DatabaseSession, "prepare" | "batch">;

type Bind = string | number | null;

// --- shapes the API returns (snake_case, times as ISO 8601 UTC; users and organizations: directory/rows.ts) --

export interface ApiOrganizationDetail extends ApiOrganization {
  /** Live child organizations and live members (users whose organization this is). */
  child_count: number;
  member_count: number;
}

export interface ApiDelivery {
  id: number;
  received_at: string | null;
  event_type: string;
  nonce: string;
  code: string;
  message: string;
  entity_id: string | null;
  duration_ms: number;
}

const DELIVERY_SELECT = "id, received_at, event_type, nonce, code, message, entity_id, duration_ms";

type DeliveryRow = Omit<ApiDelivery, "received_at"> & { received_at: number };

function apiDelivery(r: DeliveryRow): ApiDelivery {
  return { ...r, received_at: isoTime(r.received_at) };
}

// --- building statements ------------------------------------------------------------------------------

/** Fixed SQL fragments joined with AND; values are only ever pushed to `params`. */
class Where {
  private readonly clauses: string[] = [];
  readonly params: Bind[] = [];

  add(clause: string, ...values: Bind[]): this {
    this.clauses.push(clause);
    this.params.push(...values);
    return this;
  }

  toString(): string {
    return this.clauses.length === 0 ? "" : `WHERE ${this.clauses.join(" AND ")}`;
  }
}

export interface PageRequest {
  limit: number;
  /** The last key of the previous page (exclusive), or null for the first page. */
  after: CursorKey | null;
}

export interface Page<T> {
  items: T[];
  /** The key to continue after, or null on the last page. */
  next: CursorKey | null;
}

/** Pages fetch one row more than asked: its presence says whether there is a next page. */
function pageOf<R, T>(rows: R[], limit: number, map: (row: R) => T, key: (item: T) => CursorKey): Page<T> {
  const items = rows.slice(0, limit).map(map);
  const last = items[items.length - 1];
  return { items, next: rows.length > limit && last !== undefined ? key(last) : null };
}

// --- users --------------------------------------------------------------------------------------------

export interface UserFilter {
  organizationId: string | null;
  search: string | null;
  includeDeleted: boolean;
}

/** Users in id order (the `users_by_organization (organization_id, id)` index serves members). */
function usersStatement(db: Reader, filter: UserFilter, page: PageRequest): D1PreparedStatement {
  const where = new Where();
  if (!filter.includeDeleted) where.add("deleted_at IS NULL");
  if (filter.organizationId !== null) where.add("organization_id = ?", filter.organizationId);
  if (filter.search !== null) {
    const pattern = containsPattern(filter.search);
    where.add("(username LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\')", pattern, pattern, pattern);
  }
  if (page.after !== null) where.add("id > ?", String(page.after));
  return db
    .prepare(`SELECT ${USER_COLUMNS} FROM users ${where} ORDER BY id LIMIT ?`)
    .bind(...where.params, page.limit + 1);
}

export async function listUsers(db: Reader, filter: UserFilter, page: PageRequest): Promise<Page<ApiUser>> {
  const { results } = await usersStatement(db, filter, page).all<UserRow>();
  return pageOf(results, page.limit, apiUser, (u) => u.id);
}

export async function getUser(db: Reader, id: string, includeDeleted: boolean): Promise<ApiUser | null> {
  const row = await db
    .prepare(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?${includeDeleted ? "" : " AND deleted_at IS NULL"}`)
    .bind(id)
    .first<UserRow>();
  return row ? apiUser(row) : null;
}

function organizationExists(db: Reader, id: string, includeDeleted: boolean): D1PreparedStatement {
  return db
    .prepare(`SELECT count(*) AS n FROM organizations WHERE id = ?${includeDeleted ? "" : " AND deleted_at IS NULL"}`)
    .bind(id);
}

/** Members of an organization, or null when it does not exist (read in one batch: the same moment). */
export async function listMembers(
  db: Reader,
  orgId: string,
  includeDeleted: boolean,
  page: PageRequest,
): Promise<Page<ApiUser> | null> {
  const [exists, users] = await db.batch([
    organizationExists(db, orgId, includeDeleted),
    usersStatement(db, { organizationId: orgId, search: null, includeDeleted }, page),
  ]);
  if ((exists!.results[0] as { n: number }).n === 0) return null;
  return pageOf(users!.results as UserRow[], page.limit, apiUser, (u) => u.id);
}

// --- organizations ------------------------------------------------------------------------------------

function organizationsStatement(db: Reader, parentId: string | null, includeDeleted: boolean, page: PageRequest) {
  const where = new Where();
  if (!includeDeleted) where.add("deleted_at IS NULL");
  if (parentId !== null) where.add("parent_id = ?", parentId);
  if (page.after !== null) where.add("id > ?", String(page.after));
  return db
    .prepare(`SELECT ${ORG_COLUMNS} FROM organizations ${where} ORDER BY id LIMIT ?`)
    .bind(...where.params, page.limit + 1);
}

export async function listOrganizations(db: Reader, includeDeleted: boolean, page: PageRequest): Promise<Page<ApiOrganization>> {
  const { results } = await organizationsStatement(db, null, includeDeleted, page).all<OrgRow>();
  return pageOf(results, page.limit, apiOrganization, (o) => o.id);
}

export async function listChildren(
  db: Reader,
  orgId: string,
  includeDeleted: boolean,
  page: PageRequest,
): Promise<Page<ApiOrganization> | null> {
  const [exists, children] = await db.batch([
    organizationExists(db, orgId, includeDeleted),
    organizationsStatement(db, orgId, includeDeleted, page),
  ]);
  if ((exists!.results[0] as { n: number }).n === 0) return null;
  return pageOf(children!.results as OrgRow[], page.limit, apiOrganization, (o) => o.id);
}

export async function getOrganization(db: Reader, id: string, includeDeleted: boolean): Promise<ApiOrganizationDetail | null> {
  const row = await db
    .prepare(
      `SELECT ${ORG_COLUMNS},
         (SELECT count(*) FROM organizations c WHERE c.parent_id = o.id AND c.deleted_at IS NULL) AS child_count,
         (SELECT count(*) FROM users u WHERE u.organization_id = o.id AND u.deleted_at IS NULL) AS member_count
       FROM organizations o WHERE o.id = ?${includeDeleted ? "" : " AND o.deleted_at IS NULL"}`,
    )
    .bind(id)
    .first<OrgRow & { child_count: number; member_count: number }>();
  if (!row) return null;
  return { ...apiOrganization(row), child_count: row.child_count, member_count: row.member_count };
}

// --- deliveries (the audit log) -----------------------------------------------------------------------

export interface DeliveryFilter {
  /** Only this reply code. */
  code: string | null;
  /** Only failures (any code but 200); the operator page's filter. */
  failuresOnly?: boolean;
}

/** Newest first: ids only grow (AUTOINCREMENT), so the cursor is the last id seen and the next page is below it. */
export async function listDeliveries(db: Reader, filter: DeliveryFilter, page: PageRequest): Promise<Page<ApiDelivery>> {
  const where = new Where();
  if (filter.code !== null) where.add("code = ?", filter.code);
  // A failure code says it is one too, so an index over failure rows only (`WHERE code <> '200'`) can serve it.
  if (filter.failuresOnly || (filter.code !== null && filter.code !== "200")) where.add("code <> '200'");
  if (page.after !== null) where.add("id < ?", Number(page.after));
  const { results } = await db
    .prepare(`SELECT ${DELIVERY_SELECT} FROM deliveries ${where} ORDER BY id DESC LIMIT ?`)
    .bind(...where.params, page.limit + 1)
    .all<DeliveryRow>();
  return pageOf(results, page.limit, apiDelivery, (d) => d.id);
}

// --- operator page ------------------------------------------------------------------------------------

export interface DirectoryCounts {
  organizations: number;
  organizations_deleted: number;
  organizations_parent_missing: number;
  users: number;
  users_disabled: number;
  users_deleted: number;
  users_without_organization: number;
  users_organization_missing: number;
  deliveries: number;
  deliveries_failed: number;
}

/**
 * One pass over each table (conditional counts), not one query per counter: nearly every counter needs a
 * full scan anyway, so each row is read once instead of up to five times (D1 bills rows read).
 */
export async function directoryCounts(db: Reader): Promise<DirectoryCounts> {
  const row = await db
    .prepare(
      `SELECT o.*, u.*, d.* FROM
         (SELECT
            count(CASE WHEN deleted_at IS NULL THEN 1 END) AS organizations,
            count(CASE WHEN deleted_at IS NOT NULL THEN 1 END) AS organizations_deleted,
            count(CASE WHEN deleted_at IS NULL AND parent_missing = 1 THEN 1 END) AS organizations_parent_missing
          FROM organizations) AS o,
         (SELECT
            count(CASE WHEN deleted_at IS NULL THEN 1 END) AS users,
            count(CASE WHEN deleted_at IS NULL AND disabled = 1 THEN 1 END) AS users_disabled,
            count(CASE WHEN deleted_at IS NOT NULL THEN 1 END) AS users_deleted,
            count(CASE WHEN deleted_at IS NULL AND organization_id IS NULL THEN 1 END) AS users_without_organization,
            count(CASE WHEN deleted_at IS NULL AND organization_missing = 1 THEN 1 END) AS users_organization_missing
          FROM users) AS u,
         (SELECT count(*) AS deliveries, count(CASE WHEN code <> '200' THEN 1 END) AS deliveries_failed FROM deliveries) AS d`,
    )
    .first<DirectoryCounts>();
  return row!;
}

export interface TreeOrganization {
  id: string;
  code: string;
  name: string;
  parent_id: string | null;
  parent_missing: boolean;
  /** Live users whose organization this is (not counting sub-organizations). */
  members: number;
}

/** Live organizations with their direct member counts, by name; at most `max` (the page says when cut). */
export async function organizationTree(db: Reader, max: number): Promise<{ organizations: TreeOrganization[]; truncated: boolean }> {
  const { results } = await db
    .prepare(
      `SELECT o.id, o.code, o.name, o.parent_id, o.parent_missing, count(u.id) AS members
       FROM organizations o
       LEFT JOIN users u ON u.organization_id = o.id AND u.deleted_at IS NULL
       WHERE o.deleted_at IS NULL
       GROUP BY o.id
       ORDER BY o.name COLLATE NOCASE, o.id
       LIMIT ?`,
    )
    .bind(max + 1)
    .all<Omit<TreeOrganization, "parent_missing"> & { parent_missing: number }>();
  return {
    organizations: results.slice(0, max).map((r) => ({ ...r, parent_missing: r.parent_missing === 1 })),
    truncated: results.length > max,
  };
}
