// A scripted sync of a small company, end to end through the Worker (sha1 + aes-gcm): a tree three levels
// deep, 30 users, moves, renames, disables, deletes and a resent full sync. The script keeps a plain model
// of what it told OneAccess's side to send; the directory must end up exactly like it, and sending the same
// script again (new nonces) must change nothing.
import { describe, expect, it } from "vitest";
import { readDirectory, type DirectorySnapshot } from "../../src/directory/snapshot";
import { db, send } from "./support";

interface OrgModel {
  code: string;
  name: string;
  parent: string | null; // parent code
}

interface UserModel {
  username: string;
  name: string;
  org: string; // organization code
  disabled: boolean;
  email: string;
  extensions: Record<string, string>;
  deleted: boolean;
}

const TREE: OrgModel[] = [
  { code: "acme", name: "ACME", parent: null },
  { code: "eng", name: "Engineering", parent: "acme" },
  { code: "sales", name: "Sales", parent: "acme" },
  { code: "ops", name: "Operations", parent: "acme" },
  { code: "eng-platform", name: "Platform", parent: "eng" },
  { code: "eng-apps", name: "Apps", parent: "eng" },
  { code: "sales-emea", name: "EMEA", parent: "sales" },
  { code: "sales-apac", name: "APAC", parent: "sales" },
  { code: "ops-it", name: "IT", parent: "ops" },
];
const HOMES = ["eng-platform", "eng-apps", "sales-emea", "sales-apac", "ops-it", "acme"];
const KEYS = Array.from({ length: 30 }, (_, i) => `u${String(i + 1).padStart(2, "0")}`);

/** One run of the script: the same events in the same order, with timestamps from `base`, fresh nonces. */
class Script {
  readonly orgs = new Map<string, OrgModel>();
  readonly users = new Map<string, UserModel>(); // by the user's first username (its stable key)
  readonly orgIds = new Map<string, string>();
  readonly userIds = new Map<string, string>();
  private step = 0;

  constructor(private readonly base: number) {}

  private async event(eventType: string, payload: Record<string, unknown>): Promise<string | undefined> {
    const sent = await send(eventType, payload, { timestamp: this.base + this.step++ });
    if (sent.code !== "200") throw new Error(`${eventType} ${JSON.stringify(payload)}: ${sent.code} ${sent.message}`);
    return sent.id;
  }

  private orgPayload(o: OrgModel) {
    return { code: o.code, name: o.name, ...(o.parent ? { parentId: this.orgIds.get(o.parent) } : {}) };
  }

  private userPayload(u: UserModel) {
    return {
      username: u.username,
      name: u.name,
      organizationId: this.orgIds.get(u.org),
      password: `pw-${u.username}`,
      disabled: u.disabled,
      email: u.email,
      ...u.extensions,
    };
  }

  async createOrg(o: OrgModel) {
    this.orgs.set(o.code, { ...o });
    this.orgIds.set(o.code, (await this.event("CREATE_ORGANIZATION", this.orgPayload(o)))!);
  }

  async updateOrg(code: string, change: Partial<OrgModel>) {
    const o = Object.assign(this.orgs.get(code)!, change);
    // UPDATE_ORGANIZATION always carries code, name and parentId.
    await this.event("UPDATE_ORGANIZATION", { id: this.orgIds.get(code), ...this.orgPayload(o) });
  }

  async deleteOrg(code: string) {
    this.orgs.delete(code);
    await this.event("DELETE_ORGANIZATION", { id: this.orgIds.get(code) });
  }

  async createUser(key: string, u: Omit<UserModel, "deleted">) {
    this.users.set(key, { ...u, deleted: false });
    this.userIds.set(key, (await this.event("CREATE_USER", this.userPayload({ ...u, deleted: false })))!);
  }

  /** Sends only what changed, as OneAccess does (plus the fixed id and username). */
  async updateUser(key: string, change: Partial<UserModel>) {
    const u = Object.assign(this.users.get(key)!, change);
    const payload: Record<string, unknown> = { id: this.userIds.get(key), username: u.username };
    if (change.name !== undefined) payload.name = change.name;
    if (change.org !== undefined) payload.organizationId = this.orgIds.get(change.org);
    if (change.disabled !== undefined) payload.disabled = change.disabled;
    if (change.extensions !== undefined) Object.assign(payload, change.extensions);
    await this.event("UPDATE_USER", payload);
  }

  async deleteUser(key: string) {
    this.users.get(key)!.deleted = true;
    await this.event("DELETE_USER", { id: this.userIds.get(key) });
  }

  /** The initial load and a working day of changes. */
  async history() {
    for (const o of TREE) await this.createOrg(o);
    for (const [i, key] of KEYS.entries()) {
      await this.createUser(key, {
        username: key,
        name: `User ${key}`,
        org: HOMES[i % HOMES.length]!,
        disabled: false,
        email: `${key}@acme.example`,
        extensions: { employeeNo: `E-${key}` },
      });
    }
    // Moves: a team changes department, two people change team.
    await this.updateOrg("eng-apps", { parent: "ops" });
    await this.updateUser("u05", { org: "sales-emea" });
    await this.updateUser("u06", { org: "eng-apps" });
    // Renames: an organization (with the `&` the GCM plaintext uses as separator), a name, a username.
    await this.updateOrg("sales", { name: "Sales & Marketing" });
    await this.updateUser("u10", { name: "Renamed Ten" });
    await this.updateUser("u11", { username: "u11.new" });
    await this.updateUser("u15", { extensions: { title: "Lead" } });
    // Disables and deletes.
    for (const key of ["u12", "u13", "u14"]) await this.updateUser(key, { disabled: true });
    for (const key of ["u20", "u21", "u22"]) await this.deleteUser(key);
    // APAC closes: its remaining people move to EMEA, then it is deleted.
    for (const [key, u] of this.users) if (u.org === "sales-apac" && !u.deleted) await this.updateUser(key, { org: "sales-emea" });
    await this.deleteOrg("sales-apac");
  }

  /** OneAccess's full sync: creates of every live organization (parents first) and user, with current values. */
  async fullSync() {
    for (const o of TREE) if (this.orgs.has(o.code)) await this.createOrg(this.orgs.get(o.code)!);
    for (const [key, u] of this.users) if (!u.deleted) await this.createUser(key, u);
  }

  async run() {
    await this.history();
    this.step = 10_000;
    await this.fullSync();
  }

  expected() {
    return {
      organizations: [...this.orgs.values()]
        .map((o) => ({ code: o.code, name: o.name, parent: o.parent }))
        .sort((a, b) => a.code.localeCompare(b.code)),
      users: [...this.users.values()]
        .filter((u) => !u.deleted)
        .map((u) => ({ username: u.username, name: u.name, org: u.org, disabled: u.disabled, email: u.email, extensions: u.extensions }))
        .sort((a, b) => a.username.localeCompare(b.username)),
    };
  }
}

/** The directory in the model's terms: ids replaced by codes, no times. */
function asModel(d: DirectorySnapshot) {
  const codeOf = new Map(d.organizations.map((o) => [o.id, o.code]));
  return {
    organizations: d.organizations
      .map((o) => ({ code: o.code, name: o.name, parent: o.parentId === null ? null : (codeOf.get(o.parentId) ?? `missing:${o.parentId}`) }))
      .sort((a, b) => a.code.localeCompare(b.code)),
    users: d.users
      .map((u) => ({
        username: u.username,
        name: u.name,
        org: u.organizationId === null ? null : (codeOf.get(u.organizationId) ?? `missing:${u.organizationId}`),
        disabled: u.disabled,
        email: u.email,
        extensions: u.extensions,
      }))
      .sort((a, b) => a.username.localeCompare(b.username)),
  };
}

describe("scripted company sync", () => {
  it("ends with exactly the expected directory; the same script again changes nothing", async () => {
    const base = Date.now() - 3_600_000;
    const first = new Script(base);
    await first.run();

    const after = await readDirectory(db(), { includeDeleted: true });
    const live = await readDirectory(db());
    expect(asModel(live)).toEqual(first.expected());
    expect(live.organizations).toHaveLength(8);
    expect(live.users).toHaveLength(27);
    expect(live.organizations.every((o) => !o.parentMissing)).toBe(true);
    expect(live.users.every((u) => !u.organizationMissing)).toBe(true);
    // No twins: every row is one the script created, under the id it was first given.
    expect(after.organizations.map((o) => o.id).sort()).toEqual([...first.orgIds.values()].sort());
    expect(after.users.map((u) => u.id).sort()).toEqual([...first.userIds.values()].sort());
    expect(after.organizations.filter((o) => o.deletedAt !== null).map((o) => o.code)).toEqual(["sales-apac"]);
    expect(after.users.filter((u) => u.deletedAt !== null).map((u) => u.username)).toEqual(["u20", "u21", "u22"]);
    expect(live.users.find((u) => u.username === "u11.new")!.id).toBe(first.userIds.get("u11"));
    expect(await db().prepare("SELECT count(*) AS n FROM users WHERE password_hash IS NOT NULL").first("n")).toBe(0);

    // The same script again, same timestamps, new nonces: every event is acknowledged, nothing changes.
    const again = new Script(base);
    await again.run();
    expect(again.orgIds).toEqual(first.orgIds);
    expect(again.userIds).toEqual(first.userIds);
    expect(await readDirectory(db(), { includeDeleted: true })).toEqual(after);

    // Another full sync later on: applied (newer events), yet the directory's content is the same.
    const resync = new Script(base + 60_000);
    for (const [k, v] of first.orgIds) resync.orgIds.set(k, v);
    for (const [k, v] of first.users) resync.users.set(k, { ...v, extensions: { ...v.extensions } });
    for (const o of first.orgs.values()) resync.orgs.set(o.code, { ...o });
    await resync.fullSync();
    expect(resync.userIds).toEqual(new Map([...first.userIds].filter(([k]) => !first.users.get(k)!.deleted)));
    const later = await readDirectory(db(), { includeDeleted: true });
    expect(asModel(later)).toEqual(asModel(after));
    expect(later.users.map((u) => u.id)).toEqual(after.users.map((u) => u.id));
  });
});
