// The directory rules of the contract (section 6), restated from the contract alone for the stream
// properties: what each event must answer and what the directory must hold after it. Never imports src/:
// the properties compare the Worker (D1) and the model (src/directory/rules.ts in memory) against this.
//
// Entities are named by handle, the generator's name for one entity: a handle keeps its id across renames
// and revivals, so "revives the same id" and "a reused key makes a new entity" are checked by id.
// Timestamps are milliseconds relative to the stream's start (the drivers add the start).

export type ExtValue = string | number | boolean | null;
export type Ext = Record<string, ExtValue>;

/** A parent or organization reference: one of the stream's organizations, an id nobody ever created, or none. */
export type OrgRef = { handle: string } | { ghost: string } | null;

/** How the timestamp travels: 10 digits (seconds) or 13 (milliseconds), as a JSON number or a digit string. */
export type Wire = "s" | "ms" | "s-text" | "ms-text";

/**
 * Fail closed (section 6): a create of an existing user that does not say `disabled` keeps the stored
 * value, a revived tombstone's included. (src/ made such a create enable the user before this rule landed.)
 */
export const CREATE_KEEPS_DISABLED = true;

interface Stamp {
  /** Unique in the stream, in generation order. */
  seq: number;
  /** Milliseconds since the stream's start; non-decreasing in generation order, often equal. */
  ts: number;
  wire: Wire;
  /** A key rename (or an attempt at one): held back, it could hand a key to another entity than meant. */
  pinned?: true;
}

export type OrgEvent =
  | { kind: "org"; op: "create"; handle: string; code: string; name: string; parent: OrgRef; ext: Ext }
  /** `parent` undefined: the payload has no parentId (unchanged); null: moved to the root. */
  | { kind: "org"; op: "update"; handle: string; code: string; name: string; parent?: OrgRef; ext: Ext }
  | { kind: "org"; op: "delete"; handle: string };

export interface UserChanges {
  name?: string;
  org?: OrgRef;
  disabled?: boolean;
  email?: string | null;
  mobile?: string | null;
}

export type UserEvent =
  /** `disabled` undefined: the create does not say (fail closed for an existing user). */
  | { kind: "user"; op: "create"; handle: string; username: string; name: string; org: OrgRef; disabled?: boolean; email: string | null; mobile: string | null; ext: Ext }
  | ({ kind: "user"; op: "update"; handle: string; username: string; ext: Ext } & UserChanges)
  | { kind: "user"; op: "delete"; handle: string };

export type SymEvent = Stamp & (OrgEvent | UserEvent);

export interface OrgRow {
  handle: string;
  code: string;
  name: string;
  parent: OrgRef;
  ext: Ext;
  ts: number;
  deleted: boolean;
}

export interface UserRow {
  handle: string;
  username: string;
  name: string;
  org: OrgRef;
  disabled: boolean;
  email: string | null;
  mobile: string | null;
  ext: Ext;
  ts: number;
  deleted: boolean;
}

export type Effect =
  | "created"
  | "revived"
  | "updated"
  | "deleted"
  /** Applied, but the row already said exactly this. */
  | "unchanged"
  /** Older than the entity's last event, or than the rename that gave its key away: acknowledged, ignored. */
  | "stale"
  | "nothing-to-delete"
  | "already-deleted"
  | "cycle"
  | "not-empty"
  | "key-taken"
  | "not-found";

export interface Outcome {
  code: "200" | "400" | "404";
  /** The entity whose id the reply's data carries (creates and updates answered 200); null: empty data. */
  replyHandle: string | null;
  effect: Effect;
  /** A refused delete: the live children and members its message must name. */
  counts?: { children: number; members: number };
  /** Whether the directory differs afterwards (a row, or a key given up). */
  changed: boolean;
  /** For the figures. */
  notes: {
    moved?: boolean;
    renamed?: boolean;
    keyRenamed?: boolean;
    /** The written row points to an organization that is not live (unknown yet, deleted, or never created). */
    missingRef?: boolean;
    /** Live rows whose missing flag this event cleared (an organization created or revived). */
    flagsCleared?: number;
    /** A create that did not say `disabled` left a disabled user disabled. */
    keptDisabled?: boolean;
    /** A create made a new entity with a key its own entity gave up in a rename of the same instant. */
    twin?: boolean;
  };
}

export interface Decision {
  outcome: Outcome;
  /** Makes the decision's change; nothing for an event that changes nothing. */
  commit: () => void;
}

/** The rows as the contract says they must be; views compare them with D1 and the model. */
export interface OrgView {
  handle: string;
  code: string;
  name: string;
  /** The parent's handle, `ghost:<name>`, or null. */
  parent: string | null;
  /** Only for live rows (reads hide tombstones, and a tombstone's flag is not kept up to date). */
  parentMissing: boolean | null;
  extensions: Ext;
  ts: number;
  deleted: boolean;
}

export interface UserView {
  handle: string;
  username: string;
  name: string;
  org: string | null;
  organizationMissing: boolean | null;
  disabled: boolean;
  firstName: null;
  middleName: null;
  lastName: null;
  mobile: string | null;
  email: string | null;
  extensions: Ext;
  ts: number;
  deleted: boolean;
}

export interface DirectoryView {
  organizations: OrgView[];
  users: UserView[];
  /** Keys given up by renames: `organization:<code>` / `user:<username>` → the handle and the rename's ts. */
  released: Record<string, string>;
}

export const refName = (ref: OrgRef): string | null => (ref === null ? null : "handle" in ref ? ref.handle : `ghost:${ref.ghost}`);

/** A create states the whole record: a null extension value only means "no value". */
export function extOfCreate(ext: Ext): Ext {
  return Object.fromEntries(Object.entries(ext).filter(([, v]) => v !== null));
}

/** An update names what changed: null removes the key. */
export function extMerged(stored: Ext, patch: Ext): Ext {
  const out = { ...stored };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function sameRow(a: object, b: object): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

export class Reference {
  readonly orgs = new Map<string, OrgRow>();
  readonly users = new Map<string, UserRow>();
  /** `organization:<code>` / `user:<username>` → who gave the key up in a rename, and when. */
  readonly released = new Map<string, { handle: string; ts: number }>();

  orgByCode(code: string): OrgRow | null {
    for (const o of this.orgs.values()) if (o.code === code) return o;
    return null;
  }

  userByName(username: string): UserRow | null {
    for (const u of this.users.values()) if (u.username === username) return u;
    return null;
  }

  isLive(ref: OrgRef): boolean {
    return ref !== null && "handle" in ref && this.orgs.get(ref.handle)?.deleted === false;
  }

  /** Whether `handle` is `start` or one of its ancestors; tombstones keep their links, so they count too. */
  chainContains(start: OrgRef, handle: string): boolean {
    const seen = new Set<string>();
    for (let ref = start; ref !== null && "handle" in ref && !seen.has(ref.handle); ref = this.orgs.get(ref.handle)?.parent ?? null) {
      if (ref.handle === handle) return true;
      seen.add(ref.handle);
    }
    return false;
  }

  depth(handle: string): number {
    let d = 0;
    for (let ref: OrgRef = { handle }; ref !== null && "handle" in ref && d <= this.orgs.size; ref = this.orgs.get(ref.handle)?.parent ?? null) d++;
    return d;
  }

  liveChildren(handle: string): number {
    return [...this.orgs.values()].filter((o) => !o.deleted && refName(o.parent) === handle).length;
  }

  liveMembers(handle: string): number {
    return [...this.users.values()].filter((u) => !u.deleted && refName(u.org) === handle).length;
  }

  /** Live rows that point to `handle` while it is not live: the flags its creation or revival clears. */
  private waiting(handle: string): number {
    return this.liveChildren(handle) + this.liveMembers(handle);
  }

  /**
   * The handle of a new entity: the event's, unless that entity exists under another key. (A create resent
   * after a rename in the same instant is not older than the rename, so its key makes a new entity.)
   */
  private fresh(handle: string, rows: Map<string, unknown>): string {
    if (!rows.has(handle)) return handle;
    let n = 1;
    while (rows.has(`${handle}+${n}`)) n++;
    return `${handle}+${n}`;
  }

  private release(key: string, handle: string, ts: number) {
    const held = this.released.get(key);
    if (!held || held.ts < ts) this.released.set(key, { handle, ts });
  }

  decide(e: SymEvent): Decision {
    return e.kind === "org" ? this.decideOrg(e) : this.decideUser(e);
  }

  apply(e: SymEvent): Outcome {
    const d = this.decide(e);
    d.commit();
    return d.outcome;
  }

  /** A delete of a tombstone: "already deleted"; a newer one moves the tombstone's time (nothing else). */
  private deletedAgain(existing: { ts: number }, ts: number, retime: () => void): Decision {
    const newer = ts > existing.ts;
    return { outcome: { code: "200", replyHandle: null, effect: "already-deleted", changed: newer, notes: {} }, commit: newer ? retime : () => {} };
  }

  private decideOrg(e: Stamp & OrgEvent): Decision {
    const none = () => {};
    const answer = (code: Outcome["code"], replyHandle: string | null, effect: Effect, extra: Partial<Outcome> = {}): Decision => ({
      outcome: { code, replyHandle, effect, changed: false, notes: {}, ...extra },
      commit: none,
    });
    switch (e.op) {
      case "create": {
        const released = this.released.get(`organization:${e.code}`);
        if (released && e.ts < released.ts) return answer("200", released.handle, "stale");
        const existing = this.orgByCode(e.code);
        if (existing && e.ts < existing.ts) return answer("200", existing.handle, "stale");
        const handle = existing?.handle ?? this.fresh(e.handle, this.orgs);
        if (this.chainContains(e.parent, handle)) return answer("400", null, "cycle");
        const row: OrgRow = { handle, code: e.code, name: e.name, parent: e.parent, ext: extOfCreate(e.ext), ts: e.ts, deleted: false };
        return this.writeOrg(existing, row, { twin: handle !== e.handle });
      }
      case "update": {
        const existing = this.orgs.get(e.handle);
        if (!existing) return answer("404", null, "not-found");
        if (e.ts < existing.ts) return answer("200", e.handle, "stale");
        if (existing.deleted) return answer("404", null, "not-found");
        if (e.parent !== undefined && this.chainContains(e.parent, e.handle)) return answer("400", null, "cycle");
        if (e.code !== existing.code && this.orgByCode(e.code) !== null) return answer("400", null, "key-taken");
        const parent = e.parent === undefined ? existing.parent : e.parent;
        const row: OrgRow = { ...existing, code: e.code, name: e.name, parent, ext: extMerged(existing.ext, e.ext), ts: e.ts };
        return this.writeOrg(existing, row, {
          moved: refName(parent) !== refName(existing.parent),
          renamed: e.name !== existing.name || e.code !== existing.code,
          keyRenamed: e.code !== existing.code,
        });
      }
      case "delete": {
        const existing = this.orgs.get(e.handle);
        if (!existing) return answer("200", null, "nothing-to-delete");
        // A newer delete of a tombstone moves its time: an older create must not revive it.
        if (existing.deleted) return this.deletedAgain(existing, e.ts, () => this.orgs.set(e.handle, { ...existing, ts: e.ts }));
        if (e.ts < existing.ts) return answer("200", null, "stale");
        const counts = { children: this.liveChildren(e.handle), members: this.liveMembers(e.handle) };
        if (counts.children > 0 || counts.members > 0) return answer("400", null, "not-empty", { counts });
        return {
          outcome: { code: "200", replyHandle: null, effect: "deleted", changed: true, notes: {} },
          commit: () => this.orgs.set(e.handle, { ...existing, ts: e.ts, deleted: true }),
        };
      }
    }
  }

  private writeOrg(existing: OrgRow | null, row: OrgRow, notes: Outcome["notes"]): Decision {
    const changed = existing === null || !sameRow(existing, row);
    const effect: Effect = !changed ? "unchanged" : existing === null ? "created" : existing.deleted ? "revived" : "updated";
    const becomesLive = existing === null || existing.deleted;
    const outcome: Outcome = {
      code: "200",
      replyHandle: row.handle,
      effect,
      changed,
      notes: { ...notes, missingRef: row.parent !== null && !this.isLive(row.parent) },
    };
    return {
      outcome,
      commit: () => {
        if (!changed) return;
        if (becomesLive) outcome.notes.flagsCleared = this.waiting(row.handle);
        if (existing && existing.code !== row.code) this.release(`organization:${existing.code}`, row.handle, row.ts);
        this.orgs.set(row.handle, row);
      },
    };
  }

  private decideUser(e: Stamp & UserEvent): Decision {
    const none = () => {};
    const answer = (code: Outcome["code"], replyHandle: string | null, effect: Effect): Decision => ({
      outcome: { code, replyHandle, effect, changed: false, notes: {} },
      commit: none,
    });
    switch (e.op) {
      case "create": {
        const released = this.released.get(`user:${e.username}`);
        if (released && e.ts < released.ts) return answer("200", released.handle, "stale");
        const existing = this.userByName(e.username);
        if (existing && e.ts < existing.ts) return answer("200", existing.handle, "stale");
        const disabled = e.disabled ?? (CREATE_KEEPS_DISABLED && existing !== null ? existing.disabled : false);
        const row: UserRow = {
          handle: existing?.handle ?? this.fresh(e.handle, this.users),
          username: e.username,
          name: e.name,
          org: e.org,
          disabled,
          email: e.email,
          mobile: e.mobile,
          ext: extOfCreate(e.ext),
          ts: e.ts,
          deleted: false,
        };
        const notes = {
          twin: row.handle !== e.handle,
          moved: existing !== null && !existing.deleted && refName(existing.org) !== refName(e.org),
          keptDisabled: e.disabled === undefined && existing?.disabled === true,
        };
        return this.writeUser(existing, row, notes);
      }
      case "update": {
        const existing = this.users.get(e.handle);
        if (!existing) return answer("404", null, "not-found");
        if (e.ts < existing.ts) return answer("200", e.handle, "stale");
        if (existing.deleted) return answer("404", null, "not-found");
        if (e.username !== existing.username && this.userByName(e.username) !== null) return answer("400", null, "key-taken");
        const row: UserRow = {
          ...existing,
          username: e.username,
          name: e.name ?? existing.name,
          org: e.org === undefined ? existing.org : e.org,
          disabled: e.disabled ?? existing.disabled,
          email: e.email === undefined ? existing.email : e.email,
          mobile: e.mobile === undefined ? existing.mobile : e.mobile,
          ext: extMerged(existing.ext, e.ext),
          ts: e.ts,
        };
        return this.writeUser(existing, row, {
          moved: refName(row.org) !== refName(existing.org),
          renamed: row.name !== existing.name || row.username !== existing.username,
          keyRenamed: row.username !== existing.username,
        });
      }
      case "delete": {
        const existing = this.users.get(e.handle);
        if (!existing) return answer("200", null, "nothing-to-delete");
        if (existing.deleted) return this.deletedAgain(existing, e.ts, () => this.users.set(e.handle, { ...existing, ts: e.ts }));
        if (e.ts < existing.ts) return answer("200", null, "stale");
        return {
          outcome: { code: "200", replyHandle: null, effect: "deleted", changed: true, notes: {} },
          commit: () => this.users.set(e.handle, { ...existing, ts: e.ts, deleted: true }),
        };
      }
    }
  }

  private writeUser(existing: UserRow | null, row: UserRow, notes: Outcome["notes"]): Decision {
    const changed = existing === null || !sameRow(existing, row);
    const effect: Effect = !changed ? "unchanged" : existing === null ? "created" : existing.deleted ? "revived" : "updated";
    const outcome: Outcome = {
      code: "200",
      replyHandle: row.handle,
      effect,
      changed,
      notes: { ...notes, keptDisabled: changed ? notes.keptDisabled : false, missingRef: row.org !== null && !this.isLive(row.org) },
    };
    return {
      outcome,
      commit: () => {
        if (!changed) return;
        if (existing && existing.username !== row.username) this.release(`user:${existing.username}`, row.handle, row.ts);
        this.users.set(row.handle, row);
      },
    };
  }

  /** The directory as D1 must hold it: live rows and tombstones, sorted by handle. */
  view(): DirectoryView {
    const byHandle = <T extends { handle: string }>(a: T, b: T) => (a.handle < b.handle ? -1 : a.handle > b.handle ? 1 : 0);
    return {
      organizations: [...this.orgs.values()]
        .map((o) => ({
          handle: o.handle,
          code: o.code,
          name: o.name,
          parent: refName(o.parent),
          parentMissing: o.deleted ? null : o.parent !== null && !this.isLive(o.parent),
          extensions: o.ext,
          ts: o.ts,
          deleted: o.deleted,
        }))
        .sort(byHandle),
      users: [...this.users.values()]
        .map((u) => ({
          handle: u.handle,
          username: u.username,
          name: u.name,
          org: refName(u.org),
          organizationMissing: u.deleted ? null : u.org !== null && !this.isLive(u.org),
          disabled: u.disabled,
          firstName: null,
          middleName: null,
          lastName: null,
          mobile: u.mobile,
          email: u.email,
          extensions: u.ext,
          ts: u.ts,
          deleted: u.deleted,
        }))
        .sort(byHandle),
      released: Object.fromEntries([...this.released].map(([k, v]) => [k, `${v.handle}@${v.ts}`]).sort(([a], [b]) => (a! < b! ? -1 : 1))),
    };
  }
}
