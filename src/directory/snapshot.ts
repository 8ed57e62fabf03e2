// "What does the directory look like?": live organizations and users (tombstones on request), in a
// deterministic order (code, username), without password columns. Used by tests and the read API.
import { selectDirectory, type OrganizationView, type UserView } from "./store";

export type { OrganizationView, UserView } from "./store";

export interface DirectorySnapshot {
  organizations: OrganizationView[];
  users: UserView[];
}

export async function readDirectory(db: D1Database, options: { includeDeleted?: boolean } = {}): Promise<DirectorySnapshot> {
  return selectDirectory(db, options.includeDeleted ?? false);
}
