// "What does the directory look like?": every organization and user (tombstones on request), in a
// deterministic order (code, username), without password columns. For tests and tools that compare a
// whole directory; the read API pages instead (read/queries.ts).
import type { OrgRecord, UserRecord } from "./rules";
import { ORG_COLUMNS, USER_COLUMNS, orgRecord, userRecord, type OrgRow, type UserRow } from "./rows";

export interface OrganizationView extends OrgRecord {
  /** The parent id names no live organization (unknown yet, or deleted). */
  parentMissing: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface UserView extends UserRecord {
  /** The organization id names no live organization (unknown yet, or deleted). */
  organizationMissing: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface DirectorySnapshot {
  organizations: OrganizationView[];
  users: UserView[];
}

/** Organizations and users read in one batch, so both lists are of the same moment. */
export async function readDirectory(db: D1Database, options: { includeDeleted?: boolean } = {}): Promise<DirectorySnapshot> {
  const where = options.includeDeleted ? "" : "WHERE deleted_at IS NULL";
  const [orgs, users] = await db.batch([
    db.prepare(`SELECT ${ORG_COLUMNS} FROM organizations ${where} ORDER BY code`),
    db.prepare(`SELECT ${USER_COLUMNS} FROM users ${where} ORDER BY username`),
  ]);
  return {
    organizations: (orgs!.results as OrgRow[]).map((r) => ({
      ...orgRecord(r),
      parentMissing: r.parent_missing === 1,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    })),
    users: (users!.results as UserRow[]).map((r) => ({
      ...userRecord(r),
      organizationMissing: r.organization_missing === 1,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    })),
  };
}
