// The directory's own rules (src/directory/rules.ts, pure) over an in-memory store instead of D1: the same
// reads and the same decisions as src/directory/apply.ts, so a property can run a thousand event
// streams in a second. The Worker runs of the same properties check that D1 behaves like this. There is no
// replay guard here: every event, a duplicate included, goes through the rules.
import {
  decideCreateOrganization,
  decideCreateUser,
  decideDeleteOrganization,
  decideDeleteUser,
  decideUpdateOrganization,
  decideUpdateUser,
  needsCycleCheck,
  type ApplyOutcome,
  type OrgRecord,
  type ReleasedKey,
  type UserRecord,
  type Write,
} from "../../src/directory/rules";
import type { DirectoryEvent } from "../../src/protocol/events";

export class MemoryDirectory {
  readonly orgs = new Map<string, OrgRecord>();
  readonly users = new Map<string, UserRecord>();
  /** Keys given up by renames, as the released_keys table holds them. */
  readonly released = new Map<string, ReleasedKey>();
  private seq = 0;

  private fresh(prefix: "org" | "usr"): string {
    this.seq += 1;
    return `${prefix}_m${String(this.seq).padStart(10, "0")}`;
  }

  private orgBy(key: "id" | "code", value: string): OrgRecord | null {
    if (key === "id") return this.orgs.get(value) ?? null;
    for (const o of this.orgs.values()) if (o.code === value) return o;
    return null;
  }

  private userBy(key: "id" | "username", value: string): UserRecord | null {
    if (key === "id") return this.users.get(value) ?? null;
    for (const u of this.users.values()) if (u.username === value) return u;
    return null;
  }

  /** Whether `orgId` is `startId` or one of its ancestors (tombstones' links followed too, as in store.ts). */
  private chainContains(startId: string, orgId: string): boolean {
    const seen = new Set<string>();
    for (let id: string | null = startId; id !== null && !seen.has(id); id = this.orgs.get(id)?.parentId ?? null) {
      if (id === orgId) return true;
      seen.add(id);
    }
    return false;
  }

  private closesCycle(existing: OrgRecord | null, parentId: string | null | undefined): boolean {
    if (existing === null || parentId === null || parentId === undefined || !needsCycleCheck(existing, parentId)) return false;
    return this.chainContains(parentId, existing.id);
  }

  private releaseKey(entity: "organization" | "user", key: string, entityId: string, ts: number) {
    const k = `${entity}:${key}`;
    const held = this.released.get(k);
    if (!held || held.releasedTs < ts) this.released.set(k, { entityId, releasedTs: ts });
  }

  private writeOrg(write: Write<OrgRecord> | null, ts: number) {
    if (!write) return;
    if (write.kind === "tombstone" || write.kind === "retime") {
      const o = this.orgs.get(write.id)!;
      this.orgs.set(write.id, { ...o, eventTs: write.eventTs, deletedAt: write.kind === "retime" ? o.deletedAt : ts });
      return;
    }
    this.orgs.set(write.record.id, structuredClone(write.record));
    if (write.kind === "update" && write.releasedKey !== null) this.releaseKey("organization", write.releasedKey, write.record.id, write.record.eventTs);
  }

  private writeUser(write: Write<UserRecord> | null, ts: number) {
    if (!write) return;
    if (write.kind === "tombstone" || write.kind === "retime") {
      const u = this.users.get(write.id)!;
      this.users.set(write.id, { ...u, eventTs: write.eventTs, deletedAt: write.kind === "retime" ? u.deletedAt : ts });
      return;
    }
    this.users.set(write.record.id, structuredClone(write.record));
    if (write.kind === "update" && write.releasedKey !== null) this.releaseKey("user", write.releasedKey, write.record.id, write.record.eventTs);
  }

  /** Applies one event the way applyEvent does (drop password policy), returning the reply it would give. */
  apply(event: DirectoryEvent, ts: number): ApplyOutcome {
    switch (event.type) {
      case "CREATE_ORGANIZATION": {
        const existing = this.orgBy("code", event.org.code);
        const released = this.released.get(`organization:${event.org.code}`) ?? null;
        const parentIsDescendant = this.closesCycle(existing, event.org.parentId);
        const d = decideCreateOrganization(event.org, { existing, released, parentIsDescendant }, ts, this.fresh("org"));
        this.writeOrg(d.write, ts);
        return d.outcome;
      }
      case "UPDATE_ORGANIZATION": {
        const existing = this.orgBy("id", event.id);
        const codeHolder = existing && existing.code !== event.org.code ? (this.orgBy("code", event.org.code)?.id ?? null) : null;
        const parentIsDescendant = this.closesCycle(existing, event.org.parentId);
        const d = decideUpdateOrganization(event.id, event.org, { existing, codeHolder, parentIsDescendant }, ts);
        this.writeOrg(d.write, ts);
        return d.outcome;
      }
      case "DELETE_ORGANIZATION": {
        const existing = this.orgBy("id", event.id);
        const live = existing !== null && existing.deletedAt === null;
        const liveChildren = live ? [...this.orgs.values()].filter((o) => o.parentId === event.id && o.deletedAt === null).length : 0;
        const liveMembers = live ? [...this.users.values()].filter((u) => u.organizationId === event.id && u.deletedAt === null).length : 0;
        const d = decideDeleteOrganization(event.id, { existing, liveChildren, liveMembers }, ts);
        this.writeOrg(d.write, ts);
        return d.outcome;
      }
      case "CREATE_USER": {
        const existing = this.userBy("username", event.username);
        const released = this.released.get(`user:${event.username}`) ?? null;
        const d = decideCreateUser(event.username, event.user, { existing, released, hashesPassword: false }, ts, this.fresh("usr"));
        this.writeUser(d.write, ts);
        return d.outcome;
      }
      case "UPDATE_USER": {
        const existing = this.userBy("id", event.id);
        const usernameHolder = existing && existing.username !== event.username ? (this.userBy("username", event.username)?.id ?? null) : null;
        const d = decideUpdateUser(event.id, event.username, event.user, { existing, usernameHolder, hashesPassword: false }, ts);
        this.writeUser(d.write, ts);
        return d.outcome;
      }
      case "DELETE_USER": {
        const d = decideDeleteUser(event.id, this.userBy("id", event.id), ts);
        this.writeUser(d.write, ts);
        return d.outcome;
      }
    }
  }

  /**
   * Everything the store holds, bookkeeping (event timestamps, tombstones, released keys) included, as one
   * text: equal before and after an event means the event changed nothing.
   */
  dump(): string {
    return JSON.stringify([[...this.orgs], [...this.users], [...this.released]]);
  }

  /** The live entities, in the shape `keyed()` reads. */
  live(): { organizations: OrgRecord[]; users: UserRecord[] } {
    return {
      organizations: [...this.orgs.values()].filter((o) => o.deletedAt === null),
      users: [...this.users.values()].filter((u) => u.deletedAt === null),
    };
  }
}
