// What a write changed, as the change log records it: the most specific type, and the API names of the
// attributes that changed. Pure: the record written and the row it replaces are all it needs.
//
// Types: user.created, user.updated, user.disabled, user.enabled, user.deleted, user.restored;
// organization.created, organization.updated, organization.moved, organization.deleted,
// organization.restored. A restore (a create of a deleted key, same id) wins over the rest; a user whose
// `disabled` flips is disabled or enabled (other attributes may change with it: `changed` lists them all);
// an organization whose parent changes is moved. A user who moves to another organization is updated, with
// `organization_id` in `changed`.
import type { ChangeRecord } from "./audit";
import { ORG_API_NAMES, USER_API_NAMES } from "./rows";
import type { OrgRecord, UserRecord, Write } from "./rules";

export const CHANGE_TYPES = [
  "user.created",
  "user.updated",
  "user.disabled",
  "user.enabled",
  "user.deleted",
  "user.restored",
  "organization.created",
  "organization.updated",
  "organization.moved",
  "organization.deleted",
  "organization.restored",
] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

export function userChange(write: Write<UserRecord>, eventAtMs: number): ChangeRecord | null {
  switch (write.kind) {
    case "retime":
      return null;
    case "tombstone":
      return { table: "users", id: write.id, type: "user.deleted", changed: ["deleted_at"], eventAtMs, withEntity: false };
    case "insert":
      return { table: "users", id: write.record.id, type: "user.created", changed: present(write.record, USER_API_NAMES), eventAtMs, withEntity: true };
    case "update": {
      const changed = differing(write.previous, write.record, USER_API_NAMES);
      if (changed.length === 0 && !write.revives) return null;
      const type: ChangeType = write.revives
        ? "user.restored"
        : write.record.disabled !== write.previous.disabled
          ? write.record.disabled
            ? "user.disabled"
            : "user.enabled"
          : "user.updated";
      return { table: "users", id: write.record.id, type, changed: write.revives ? [...changed, "deleted_at"] : changed, eventAtMs, withEntity: true };
    }
  }
}

export function organizationChange(write: Write<OrgRecord>, eventAtMs: number): ChangeRecord | null {
  switch (write.kind) {
    case "retime":
      return null;
    case "tombstone":
      return { table: "organizations", id: write.id, type: "organization.deleted", changed: ["deleted_at"], eventAtMs, withEntity: false };
    case "insert":
      return { table: "organizations", id: write.record.id, type: "organization.created", changed: present(write.record, ORG_API_NAMES), eventAtMs, withEntity: true };
    case "update": {
      const changed = differing(write.previous, write.record, ORG_API_NAMES);
      if (changed.length === 0 && !write.revives) return null;
      const type: ChangeType = write.revives ? "organization.restored" : write.record.parentId !== write.previous.parentId ? "organization.moved" : "organization.updated";
      return { table: "organizations", id: write.record.id, type, changed: write.revives ? [...changed, "deleted_at"] : changed, eventAtMs, withEntity: true };
    }
  }
}

/** A created entity's attributes that have a value (a boolean always has one; no extensions is none). */
function present(record: object, names: Readonly<Record<string, string>>): string[] {
  const r = record as Record<string, unknown>;
  return Object.entries(names)
    .filter(([field]) => r[field] !== null && r[field] !== undefined && !(field === "extensions" && Object.keys(r[field] as object).length === 0))
    .map(([, api]) => api);
}

function differing(previous: object, record: object, names: Readonly<Record<string, string>>): string[] {
  const before = previous as Record<string, unknown>;
  const after = record as Record<string, unknown>;
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return Object.entries(names)
    .filter(([field]) => !same(before[field], after[field]))
    .map(([, api]) => api);
}
