// The generated company and the plan of events that builds it, then changes it, the way OneAccess would:
// creates parents first, then updates, moves and deletes. Everything is a pure function of the seed, and
// the plan also says what the receiver's directory should hold at the end (`intended`).
import { Rng } from "./random";
import {
  asciiSlug,
  COMPANIES,
  DEPARTMENTS,
  GIVEN_NAMES,
  LATIN_FIRST,
  LATIN_LAST,
  LATIN_MIDDLE,
  LOCATIONS,
  SURNAMES,
  TEAMS,
  TITLES,
  type BilingualName,
} from "./names";

export type ExtensionValue = string | number | boolean;

export interface OrgState {
  code: string;
  name: string;
  /** `null` for the company (the root). */
  parentCode: string | null;
  extensions: Record<string, ExtensionValue>;
}

export interface UserState {
  username: string;
  name: string;
  firstName: string;
  middleName?: string;
  lastName: string;
  email: string;
  mobile: string;
  disabled: boolean;
  orgCode: string;
  /** The tenant's extension attributes: employeeNo, hireDate, title, location. */
  extensions: Record<string, ExtensionValue>;
}

/** Attributes an UPDATE_USER changes; `orgCode` is sent as `organizationId` once resolved. */
export interface UserChanges {
  name?: string;
  mobile?: string;
  email?: string;
  orgCode?: string;
  extensions?: Record<string, ExtensionValue>;
}

export type Phase = "create" | "update" | "move" | "delete";
export const PHASES: readonly Phase[] = ["create", "update", "move", "delete"];

interface StepBase {
  /** Unique within the plan; `deps` name other steps' keys. */
  key: string;
  phase: Phase;
  deps: string[];
}

export type Step =
  | (StepBase & { type: "CREATE_ORGANIZATION"; org: OrgState })
  | (StepBase & { type: "UPDATE_ORGANIZATION"; org: OrgState })
  | (StepBase & { type: "DELETE_ORGANIZATION"; code: string })
  | (StepBase & { type: "CREATE_USER"; user: UserState; password: string })
  | (StepBase & { type: "UPDATE_USER"; username: string; disabled: boolean; changes: UserChanges })
  | (StepBase & { type: "DELETE_USER"; username: string });

export interface IntendedDirectory {
  organizations: OrgState[];
  users: UserState[];
}

export interface CompanyPlan {
  seed: string;
  /** Prefix of every code and username of this seed, so two seeds never collide in one directory. */
  tag: string;
  company: BilingualName;
  steps: Step[];
  intended: IntendedDirectory;
  /** How many of each change the plan makes, for the summary. */
  counts: {
    orgs: number;
    users: number;
    orgRenames: number;
    userUpdates: number;
    orgMoves: number;
    userMoves: number;
    userDeletes: number;
    orgDeletes: number;
  };
}

export interface PlanOptions {
  orgs: number;
  users: number;
  seed: string;
  /** Share of entities changed in each later phase (defaults are those of a busy day). */
  rates?: Partial<Record<"orgRename" | "userUpdate" | "orgMove" | "userMove" | "orgDelete" | "userDelete", number>>;
}

const DEFAULT_RATES = { orgRename: 0.15, userUpdate: 0.25, orgMove: 0.1, userMove: 0.1, orgDelete: 0.1, userDelete: 0.08 };
const MAX_DEPTH = 4;

/** Code-safe tag of a seed: "s" + the seed's letters and digits (at most 24). */
export function seedTag(seed: string): string {
  const safe = seed.replace(/[^A-Za-z0-9]/g, "").toLowerCase().slice(0, 24);
  return `s${safe || "0"}`;
}

function styled(rng: Rng, n: BilingualName): string {
  const r = rng.next();
  if (r < 0.5) return `${n.zh} ${n.en}`;
  return r < 0.8 ? n.zh : n.en;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function count(total: number, rate: number): number {
  if (total <= 0 || rate <= 0) return 0;
  return Math.max(1, Math.round(total * rate));
}

export function planCompany(options: PlanOptions): CompanyPlan {
  const { seed } = options;
  const rates = { ...DEFAULT_RATES, ...options.rates };
  if (!Number.isInteger(options.orgs) || options.orgs < 1) throw new Error("--orgs must be an integer of at least 1");
  if (!Number.isInteger(options.users) || options.users < 0) throw new Error("--users must be a non-negative integer");
  const rng = new Rng(seed);
  const tag = seedTag(seed);
  const company = rng.pick(COMPANIES);

  // --- organizations: the company, departments under it, teams under those (at most MAX_DEPTH deep) ---
  const orgs = new Map<string, OrgState>();
  const depth = new Map<string, number>();
  const children = new Map<string, string[]>();
  const orgOrder: string[] = [];
  const addOrg = (org: OrgState) => {
    orgs.set(org.code, org);
    orgOrder.push(org.code);
    children.set(org.code, []);
    depth.set(org.code, org.parentCode === null ? 0 : depth.get(org.parentCode)! + 1);
    if (org.parentCode !== null) children.get(org.parentCode)!.push(org.code);
  };
  const uniqueAmongSiblings = (parentCode: string, name: string) => {
    const taken = new Set(children.get(parentCode)!.map((c) => orgs.get(c)!.name));
    let candidate = name;
    for (let i = 2; taken.has(candidate); i++) candidate = `${name} ${i}`;
    return candidate;
  };
  const orgCode = (i: number) => `${tag}-org-${pad(i, 4)}`;
  const costCenter = () => `CC-${rng.digits(4)}`;

  const rootCode = orgCode(0);
  addOrg({ code: rootCode, name: `${company.zh} ${company.en}`, parentCode: null, extensions: { costCenter: costCenter() } });
  const departments = rng.sample(DEPARTMENTS, DEPARTMENTS.length);
  const departmentCount = Math.min(options.orgs - 1, Math.max(3, Math.round(Math.sqrt(options.orgs) * 1.5)));
  for (let i = 1; i < options.orgs; i++) {
    let parentCode: string;
    let base: BilingualName;
    if (i <= departmentCount) {
      parentCode = rootCode;
      base = departments[(i - 1) % departments.length]!;
    } else {
      const eligible = orgOrder.filter((c) => c !== rootCode && depth.get(c)! < MAX_DEPTH - 1);
      // Shallower units get more children, as in a real company.
      const weighted = eligible.flatMap((c) => (depth.get(c) === 1 ? [c, c, c] : depth.get(c) === 2 ? [c, c] : [c]));
      parentCode = rng.pick(weighted);
      base = rng.pick(TEAMS);
    }
    addOrg({
      code: orgCode(i),
      name: uniqueAmongSiblings(parentCode, styled(rng, base)),
      parentCode,
      extensions: { costCenter: costCenter() },
    });
  }

  // --- users ---
  const users = new Map<string, UserState>();
  const userOrder: string[] = [];
  const passwords = new Map<string, string>();
  const slugs = new Map<string, number>();
  const memberOrgs = orgOrder.length > 1 ? orgOrder.filter((c) => c !== rootCode) : orgOrder;
  for (let i = 0; i < options.users; i++) {
    let name: string;
    let firstName: string;
    let lastName: string;
    let middleName: string | undefined;
    let slug: string;
    let mobile: string;
    if (rng.chance(0.8)) {
      const [sz, sp] = rng.pick(SURNAMES);
      const [gz, gp] = rng.pick(GIVEN_NAMES);
      name = `${sz}${gz}`;
      lastName = sz;
      firstName = gz;
      slug = `${sp}${gp}`;
      mobile = `+86-1${rng.pick(["3", "5", "7", "8", "9"])}${rng.digits(9)}`;
    } else {
      firstName = rng.pick(LATIN_FIRST);
      lastName = rng.pick(LATIN_LAST);
      middleName = rng.chance(0.2) ? rng.pick(LATIN_MIDDLE) : undefined;
      name = middleName ? `${firstName} ${middleName} ${lastName}` : `${firstName} ${lastName}`;
      slug = `${asciiSlug(firstName)}.${asciiSlug(lastName)}`;
      mobile = `+44-7700-9${rng.digits(5)}`;
    }
    const seen = (slugs.get(slug) ?? 0) + 1;
    slugs.set(slug, seen);
    if (seen > 1) slug = `${slug}${seen}`;
    const title = rng.pick(TITLES);
    const year = rng.int(2008, 2025);
    const user: UserState = {
      username: `${tag}.${slug}`,
      name,
      firstName,
      ...(middleName ? { middleName } : {}),
      lastName,
      email: `${slug}@${tag}.example.com`,
      mobile,
      disabled: rng.chance(0.03),
      orgCode: i === 0 || memberOrgs.length === 0 ? rootCode : rng.pick(memberOrgs),
      extensions: {
        employeeNo: `E${pad(100001 + i, 6)}`,
        hireDate: `${year}-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)}`,
        title: rng.chance(0.5) ? title.zh : title.en,
        location: rng.pick(LOCATIONS),
      },
    };
    users.set(user.username, user);
    userOrder.push(user.username);
    passwords.set(user.username, `${rng.letters(12)}#${rng.digits(2)}`);
  }

  const steps: Step[] = [];
  const createKey = (kind: "org" | "user", id: string) => `create:${kind}:${id}`;
  for (const code of orgOrder) {
    const org = orgs.get(code)!;
    steps.push({
      key: createKey("org", code),
      phase: "create",
      deps: org.parentCode === null ? [] : [createKey("org", org.parentCode)],
      type: "CREATE_ORGANIZATION",
      org: structuredClone(org),
    });
  }
  for (const username of userOrder) {
    const user = users.get(username)!;
    steps.push({
      key: createKey("user", username),
      phase: "create",
      deps: [createKey("org", user.orgCode)],
      type: "CREATE_USER",
      user: structuredClone(user),
      password: passwords.get(username)!,
    });
  }

  const nonRoot = orgOrder.filter((c) => c !== rootCode);

  // --- update: renames, user attribute changes (one event per entity) ---
  const renamed = rng.sample(nonRoot, count(nonRoot.length, rates.orgRename));
  for (const code of renamed) {
    const org = orgs.get(code)!;
    const parent = org.parentCode!;
    let name = org.name;
    for (let attempt = 0; attempt < 8 && name === org.name; attempt++) {
      name = uniqueAmongSiblings(parent, styled(rng, rng.pick(depth.get(code) === 1 ? DEPARTMENTS : TEAMS)));
    }
    if (name === org.name) name = `${org.name} II`.slice(0, 40);
    org.name = name;
    steps.push({ key: `update:org:${code}`, phase: "update", deps: [], type: "UPDATE_ORGANIZATION", org: structuredClone(org) });
  }
  const updated = rng.sample(userOrder, count(userOrder.length, rates.userUpdate));
  for (const username of updated) {
    const user = users.get(username)!;
    const changes: UserChanges = {};
    const title = rng.pick(TITLES);
    changes.extensions = { title: rng.chance(0.5) ? title.zh : title.en };
    if (rng.chance(0.5)) changes.mobile = user.mobile.startsWith("+86") ? `+86-1${rng.pick(["3", "8"])}${rng.digits(9)}` : `+44-7700-9${rng.digits(5)}`;
    if (rng.chance(0.2)) changes.email = user.email.replace("@", ".new@");
    if (rng.chance(0.1)) user.disabled = !user.disabled;
    Object.assign(user.extensions, changes.extensions);
    if (changes.mobile) user.mobile = changes.mobile;
    if (changes.email) user.email = changes.email;
    steps.push({ key: `update:user:${username}`, phase: "update", deps: [], type: "UPDATE_USER", username, disabled: user.disabled, changes });
  }

  // --- move: organizations to a new parent (never into their own subtree), users to another unit ---
  const subtree = (code: string): Set<string> => {
    const out = new Set<string>([code]);
    const stack = [code];
    while (stack.length > 0) for (const c of children.get(stack.pop()!)!) if (!out.has(c)) (out.add(c), stack.push(c));
    return out;
  };
  const reparent = (code: string, parentCode: string) => {
    const org = orgs.get(code)!;
    const old = children.get(org.parentCode!)!;
    old.splice(old.indexOf(code), 1);
    children.get(parentCode)!.push(code);
    org.parentCode = parentCode;
  };
  let previousMove: string | null = null;
  let orgMoves = 0;
  for (const code of rng.sample(nonRoot, count(nonRoot.length, rates.orgMove))) {
    const inside = subtree(code);
    const org = orgs.get(code)!;
    const targets = orgOrder.filter((c) => !inside.has(c) && c !== org.parentCode);
    if (targets.length === 0) continue;
    reparent(code, rng.pick(targets));
    const key: string = `move:org:${code}`;
    // Org moves are chained: each was checked against the tree the previous ones left, so applying them
    // in another order could make a (refused) cycle on the way.
    steps.push({ key, phase: "move", deps: previousMove ? [previousMove] : [], type: "UPDATE_ORGANIZATION", org: structuredClone(org) });
    previousMove = key;
    orgMoves++;
  }

  // Deletions are chosen now (leaves of the moved tree) so moves can evacuate their members first.
  const leaves = nonRoot.filter((c) => children.get(c)!.length === 0);
  const deletedOrgs = new Set(rng.sample(leaves, Math.min(leaves.length, count(nonRoot.length, rates.orgDelete))));
  const deletedUsers = new Set(rng.sample(userOrder, count(userOrder.length, rates.userDelete)));
  const liveOrgs = orgOrder.filter((c) => !deletedOrgs.has(c));
  let userMoves = 0;
  const moveUser = (username: string, target: string) => {
    const user = users.get(username)!;
    user.orgCode = target;
    steps.push({
      key: `move:user:${username}`,
      phase: "move",
      deps: [],
      type: "UPDATE_USER",
      username,
      disabled: user.disabled,
      changes: { orgCode: target },
    });
    userMoves++;
  };
  const moved = new Set<string>();
  for (const username of rng.sample(userOrder, count(userOrder.length, rates.userMove))) {
    const targets = liveOrgs.filter((c) => c !== users.get(username)!.orgCode);
    if (targets.length === 0) continue;
    moveUser(username, rng.pick(targets));
    moved.add(username);
  }
  // Evacuation: members of a unit about to be deleted move up to its parent (unless they leave the company).
  for (const username of userOrder) {
    const user = users.get(username)!;
    if (deletedOrgs.has(user.orgCode) && !deletedUsers.has(username) && !moved.has(username)) {
      moveUser(username, orgs.get(user.orgCode)!.parentCode!);
    }
  }

  // --- delete: users, then the emptied units (after their leaving members) ---
  for (const username of userOrder) {
    if (deletedUsers.has(username)) {
      steps.push({ key: `delete:user:${username}`, phase: "delete", deps: [], type: "DELETE_USER", username });
    }
  }
  for (const code of orgOrder) {
    if (!deletedOrgs.has(code)) continue;
    const leaving = userOrder.filter((u) => deletedUsers.has(u) && users.get(u)!.orgCode === code);
    steps.push({ key: `delete:org:${code}`, phase: "delete", deps: leaving.map((u) => `delete:user:${u}`), type: "DELETE_ORGANIZATION", code });
  }

  const intended: IntendedDirectory = {
    organizations: orgOrder.filter((c) => !deletedOrgs.has(c)).map((c) => structuredClone(orgs.get(c)!)),
    users: userOrder.filter((u) => !deletedUsers.has(u)).map((u) => structuredClone(users.get(u)!)),
  };
  return {
    seed,
    tag,
    company,
    steps,
    intended,
    counts: {
      orgs: orgOrder.length,
      users: userOrder.length,
      orgRenames: renamed.length,
      userUpdates: updated.length,
      orgMoves,
      userMoves,
      userDeletes: deletedUsers.size,
      orgDeletes: deletedOrgs.size,
    },
  };
}
