// Issue #7, the chaos run: about 2 000 events of a company's life (sim/core/company.ts, a pure function of
// its seed: creates parents first, renames, attribute updates, moves, deletes) sent through the Worker with
// the timestamp window on, and, on top of them:
//   10% exact duplicates: the very same request again, anywhere later;
//    5% resends under a new nonce: the same event (same timestamp, same data), anywhere later;
//    5% reordered: an update, move or delete held back by 1-30 places (never past an event that needs it:
//       its dependants, or the delete of the organization it moves something out of);
//    2% delayed past the window: a copy stamped the window + 100 s earlier (400 s at the default size; the
//       window widens with RELIABILITY_RUNS, see WINDOW_SECONDS) arrives first and is refused 401; OneAccess
//       then retries the event under a new nonce with a fresh timestamp, which is its delivery in place.
// The expected directory is computed by hand from what was delivered, with the contract's rules (section 6:
// creates are idempotent, an event older than the entity's last one is acknowledged and ignored, deletes
// keep tombstones): never with src/directory. Every entity must match it; every entity no reordering
// touched must also match the plan's intended company.
import { describe, expect, it } from "vitest";
import { planCompany, type CompanyPlan, type Step } from "../../sim/core/company";
import { Rng } from "../../sim/core/random";
import { callWorker, CALLBACK_URL, envFor, profile } from "../helpers/worker";
import { buildEnvelope, openReply, randomNonce, toRequest } from "../sender/oneaccess-sender";
import { keyedDirectory, RUNS, summarize, type KeyedDirectory } from "./support";

const SEED = `chaos${RUNS}`;
/** The run's size relative to the default (RELIABILITY_RUNS 1 000): events, time and window scale with it. */
const SCALE = Math.max(1, RUNS / 1000);
/**
 * The timestamp window, wrangler.toml's 300 s at the default size (a run of about 2 400 requests takes
 * well under a minute on two cores). Every request, exact duplicates sent at the very end included, must
 * arrive within the window of its timestamp, so a larger run gets a proportionally wider window (at most
 * the 86 400 s the setting accepts); the delayed copies stay stamped 100 s beyond it.
 */
const WINDOW_SECONDS = Math.min(86_400, Math.round(300 * SCALE));
const WINDOW_MS = WINDOW_SECONDS * 1000;
/** The test's own timeout: 5 minutes at the default size, proportionally more for a longer run. */
const TIMEOUT_MS = Math.round(300_000 * SCALE);
const P = profile("sha1+gcm", "iv16-b64-prefix");
const ENV = { ...envFor(P), ...(WINDOW_SECONDS !== 300 ? { TIMESTAMP_TOLERANCE_SECONDS: String(WINDOW_SECONDS) } : {}) };

type Kind = "original" | "exact-duplicate" | "resend" | "delayed-copy";
interface Delivery {
  step: number;
  kind: Kind;
  nonce: string;
  ts: number;
}

/** Plan sizes that make about 2 000 events (and proportionally more with RELIABILITY_RUNS). */
function plan(): CompanyPlan {
  return planCompany({ orgs: Math.round(80 * SCALE), users: Math.round(1_270 * SCALE), seed: SEED });
}

const subject = (s: Step) =>
  s.type === "CREATE_ORGANIZATION" || s.type === "UPDATE_ORGANIZATION" ? s.org.code : s.type === "DELETE_ORGANIZATION" ? s.code : s.type === "CREATE_USER" ? s.user.username : s.username;

/**
 * For each step, what must not be overtaken by it if it is held back: the steps that list it as a
 * dependency, and the delete of the organization it moves a user or a child organization out of.
 */
function blockers(steps: Step[]): Array<Set<number>> {
  const byKey = new Map(steps.map((s, i) => [s.key, i]));
  const out = steps.map(() => new Set<number>());
  steps.forEach((s, i) => s.deps.forEach((d) => byKey.has(d) && out[byKey.get(d)!]!.add(i)));
  const orgOf = new Map<string, string>();
  const parentOf = new Map<string, string | null>();
  const deleteOf = new Map(steps.flatMap((s, i) => (s.type === "DELETE_ORGANIZATION" ? [[s.code, i] as const] : [])));
  steps.forEach((s, i) => {
    let leaving: string | null | undefined;
    if (s.type === "CREATE_USER") orgOf.set(s.user.username, s.user.orgCode);
    if (s.type === "CREATE_ORGANIZATION") parentOf.set(s.org.code, s.org.parentCode);
    if (s.type === "UPDATE_USER" && s.changes.orgCode !== undefined) {
      leaving = orgOf.get(s.username);
      orgOf.set(s.username, s.changes.orgCode);
    }
    if (s.type === "UPDATE_ORGANIZATION") {
      leaving = parentOf.get(s.org.code);
      parentOf.set(s.org.code, s.org.parentCode);
    }
    if (leaving && deleteOf.has(leaving)) out[i]!.add(deleteOf.get(leaving)!);
  });
  return out;
}

function schedule(p: CompanyPlan, rng: Rng, t0: number) {
  const steps = p.steps;
  const n = steps.length;
  const ts = steps.map((_, i) => t0 + i);
  const order: Delivery[] = steps.map((_, i) => ({ step: i, kind: "original", nonce: randomNonce(), ts: ts[i]! }));

  // 5% reordered: held back, never past what needs them.
  const block = blockers(steps);
  const candidates = rng.sample(
    steps.map((s, i) => (s.type.startsWith("CREATE") ? -1 : i)).filter((i) => i >= 0),
    Math.round(n * 0.05),
  );
  for (const i of candidates) {
    const from = order.findIndex((d) => d.step === i);
    let to = Math.min(order.length - 1, from + rng.int(1, 30));
    for (let j = from + 1; j <= to; j++) {
      if (block[i]!.has(order[j]!.step)) {
        to = j - 1;
        break;
      }
    }
    const [moved] = order.splice(from, 1);
    order.splice(to, 0, moved!);
  }
  const reordered = new Set(candidates);

  // 2% delayed past the window: a stale copy first (refused), then the retry in place.
  for (const i of rng.sample([...Array(n).keys()], Math.round(n * 0.02))) {
    const at = order.findIndex((d) => d.step === i && d.kind === "original");
    order.splice(at, 0, { step: i, kind: "delayed-copy", nonce: randomNonce(), ts: ts[i]! - WINDOW_MS - 100_000 });
  }
  // 10% exact duplicates and 5% resends under new nonces, each anywhere after its original.
  const copies: Array<[number, Kind]> = [
    ...rng.sample([...Array(n).keys()], Math.round(n * 0.1)).map((i) => [i, "exact-duplicate"] as [number, Kind]),
    ...rng.sample([...Array(n).keys()], Math.round(n * 0.05)).map((i) => [i, "resend"] as [number, Kind]),
  ];
  for (const [i, kind] of copies) {
    const original = order.find((d) => d.step === i && d.kind === "original")!;
    const at = rng.int(order.indexOf(original) + 1, order.length);
    order.splice(at, 0, { step: i, kind, nonce: kind === "exact-duplicate" ? original.nonce : randomNonce(), ts: original.ts });
  }
  return { order, reordered };
}

// --- sending ----------------------------------------------------------------------------------------

type Payload = Record<string, unknown>;

function payloadOf(step: Step, orgIds: Map<string, string>, userIds: Map<string, string>): Payload {
  const org = (code: string) => {
    const id = orgIds.get(code);
    if (id === undefined) throw new Error(`no id for ${code}`);
    return id;
  };
  const user = (username: string) => {
    const id = userIds.get(username);
    if (id === undefined) throw new Error(`no id for ${username}`);
    return id;
  };
  switch (step.type) {
    case "CREATE_ORGANIZATION":
      return { code: step.org.code, name: step.org.name, ...(step.org.parentCode !== null ? { parentId: org(step.org.parentCode) } : {}), ...step.org.extensions };
    case "UPDATE_ORGANIZATION":
      return { id: org(step.org.code), code: step.org.code, name: step.org.name, ...(step.org.parentCode !== null ? { parentId: org(step.org.parentCode) } : {}) };
    case "DELETE_ORGANIZATION":
      return { id: org(step.code) };
    case "CREATE_USER": {
      const u = step.user;
      return {
        username: u.username,
        name: u.name,
        organizationId: org(u.orgCode),
        password: step.password,
        disabled: u.disabled,
        firstName: u.firstName,
        ...(u.middleName ? { middleName: u.middleName } : {}),
        lastName: u.lastName,
        mobile: u.mobile,
        email: u.email,
        ...u.extensions,
      };
    }
    case "UPDATE_USER": {
      const { orgCode, extensions, ...attributes } = step.changes;
      return {
        id: user(step.username),
        username: step.username,
        disabled: step.disabled,
        ...attributes,
        ...(orgCode !== undefined ? { organizationId: org(orgCode) } : {}),
        ...extensions,
      };
    }
    case "DELETE_USER":
      return { id: user(step.username) };
  }
}

// --- the expected directory, by hand ------------------------------------------------------------------

interface Entity {
  ts: number;
  deleted: boolean;
  view: Record<string, unknown>;
}

/** Contract section 6, restated: applies `step` at `ts` to the reference, as an authenticated event would. */
function reference(entities: Map<string, Entity>, step: Step, ts: number): "applied" | "ignored" {
  const key = subject(step);
  const cur = entities.get(key);
  const older = cur !== undefined && ts < cur.ts;
  switch (step.type) {
    case "CREATE_ORGANIZATION":
    case "CREATE_USER": {
      if (older) return "ignored";
      const view =
        step.type === "CREATE_ORGANIZATION"
          ? { name: step.org.name, parent: step.org.parentCode, extensions: { ...step.org.extensions } }
          : {
              name: step.user.name,
              org: step.user.orgCode,
              disabled: step.user.disabled,
              firstName: step.user.firstName,
              middleName: step.user.middleName ?? null,
              lastName: step.user.lastName,
              mobile: step.user.mobile,
              email: step.user.email,
              extensions: { ...step.user.extensions },
            };
      entities.set(key, { ts, deleted: false, view });
      return "applied";
    }
    case "UPDATE_ORGANIZATION":
    case "UPDATE_USER": {
      if (cur === undefined || older || cur.deleted) return "ignored";
      const view: Record<string, unknown> = { ...cur.view, extensions: { ...(cur.view.extensions as object) } };
      if (step.type === "UPDATE_ORGANIZATION") {
        view.name = step.org.name;
        if (step.org.parentCode !== null) view.parent = step.org.parentCode;
      } else {
        const { orgCode, extensions, ...attributes } = step.changes;
        Object.assign(view, attributes, { disabled: step.disabled });
        if (orgCode !== undefined) view.org = orgCode;
        Object.assign(view.extensions as object, extensions ?? {});
      }
      entities.set(key, { ts, deleted: false, view });
      return "applied";
    }
    case "DELETE_ORGANIZATION":
    case "DELETE_USER":
      if (cur === undefined || cur.deleted || older) return "ignored";
      entities.set(key, { ...cur, ts, deleted: true });
      return "applied";
  }
}

function expectedDirectory(entities: Map<string, Entity>, tag: string): KeyedDirectory {
  const strip = (s: string) => s.slice(tag.length);
  const live = [...entities].filter(([, e]) => !e.deleted);
  const sortedExt = (e: unknown) => Object.fromEntries(Object.entries(e as object).sort(([a], [b]) => (a < b ? -1 : 1)));
  return {
    organizations: live
      .filter(([k]) => k.startsWith(`${tag}-org-`))
      .map(([k, e]) => ({ code: strip(k), name: e.view.name as string, parent: e.view.parent === null ? null : strip(e.view.parent as string), extensions: sortedExt(e.view.extensions) }))
      .sort((a, b) => (a.code < b.code ? -1 : 1)),
    users: live
      .filter(([k]) => k.startsWith(`${tag}.`))
      .map(([k, e]) => ({
        username: strip(k),
        name: e.view.name as string,
        org: strip(e.view.org as string),
        disabled: e.view.disabled as boolean,
        firstName: e.view.firstName as string,
        middleName: e.view.middleName as string | null,
        lastName: e.view.lastName as string,
        mobile: e.view.mobile as string,
        email: e.view.email as string,
        extensions: sortedExt(e.view.extensions),
      }))
      .sort((a, b) => (a.username < b.username ? -1 : 1)),
  };
}

function intendedDirectory(p: CompanyPlan): KeyedDirectory {
  const entities = new Map<string, Entity>();
  for (const o of p.intended.organizations) entities.set(o.code, { ts: 0, deleted: false, view: { name: o.name, parent: o.parentCode, extensions: o.extensions } });
  for (const u of p.intended.users) {
    entities.set(u.username, {
      ts: 0,
      deleted: false,
      view: { ...u, org: u.orgCode, middleName: u.middleName ?? null, extensions: u.extensions },
    });
  }
  return expectedDirectory(entities, p.tag);
}

// --- the run ----------------------------------------------------------------------------------------

describe("chaos: a company's life with duplicates, resends, reordering and late arrivals", () => {
  it("ends with the directory the contract's rules say, entity by entity", async (context) => {
    const company = plan();
    const rng = new Rng(`${SEED}-schedule`);
    const t0 = Date.now();
    const { order, reordered } = schedule(company, rng, t0);
    const steps = company.steps;

    const orgIds = new Map<string, string>();
    const userIds = new Map<string, string>();
    const bodies = new Map<string, string>();
    const entities = new Map<string, Entity>();
    const counts: Record<Kind, number> = { original: 0, "exact-duplicate": 0, resend: 0, "delayed-copy": 0 };
    const wrong: string[] = [];
    let refused401 = 0;
    let ignored = 0;

    for (const d of order) {
      const step = steps[d.step]!;
      counts[d.kind]++;
      let body = bodies.get(d.nonce);
      if (body === undefined) {
        const payload = payloadOf(step, orgIds, userIds);
        body = JSON.stringify(await buildEnvelope(P, step.type, JSON.stringify(payload), { nonce: d.nonce, timestamp: d.ts }));
        bodies.set(d.nonce, body);
      }
      const reply = await openReply(P, await callWorker(toRequest(CALLBACK_URL, P, body), ENV));
      if (d.kind === "delayed-copy") {
        if (reply.status === 401) refused401++;
        else wrong.push(`${step.key} delayed copy answered ${reply.status}`);
        continue;
      }
      if (reply.status !== 200) {
        wrong.push(`${step.key} (${d.kind}) answered ${reply.status} ${reply.message}`);
        continue;
      }
      const id = reply.plaintext.startsWith("{") ? (JSON.parse(reply.plaintext) as { id: string }).id : undefined;
      if (step.type === "CREATE_ORGANIZATION" || step.type === "CREATE_USER") {
        const ids = step.type === "CREATE_ORGANIZATION" ? orgIds : userIds;
        const key = subject(step);
        if (ids.has(key) && ids.get(key) !== id) wrong.push(`${step.key}: a twin (${id} besides ${ids.get(key)})`);
        ids.set(key, ids.get(key) ?? id!);
      }
      // Exact duplicates are answered from the replay store; everything else is an event for the rules.
      if (d.kind !== "exact-duplicate" && reference(entities, step, d.ts) === "ignored") ignored++;
    }
    expect(wrong).toEqual([]);

    const actual = await keyedDirectory(company.tag);
    const expected = expectedDirectory(entities, company.tag);
    // Entity by entity, so a difference names the entity.
    const byKey = <T extends { code?: string; username?: string }>(list: T[]) => new Map(list.map((x) => [x.code ?? x.username!, x]));
    const mismatched: string[] = [];
    for (const kind of ["organizations", "users"] as const) {
      const a = byKey(actual[kind] as Array<{ code?: string; username?: string }>);
      const e = byKey(expected[kind] as Array<{ code?: string; username?: string }>);
      for (const key of new Set([...a.keys(), ...e.keys()])) {
        if (JSON.stringify(a.get(key)) !== JSON.stringify(e.get(key))) mismatched.push(`${kind} ${key}: ${JSON.stringify(a.get(key))} ≠ ${JSON.stringify(e.get(key))}`);
      }
    }
    expect(mismatched.slice(0, 5)).toEqual([]);

    // Entities that no held-back event overtook are exactly the company the plan intended.
    const touched = new Set([...reordered].map((i) => subject(steps[i]!).slice(company.tag.length)));
    const intended = intendedDirectory(company);
    const differsFromIntent: string[] = [];
    for (const kind of ["organizations", "users"] as const) {
      const a = byKey(actual[kind] as Array<{ code?: string; username?: string }>);
      for (const [key, want] of byKey(intended[kind] as Array<{ code?: string; username?: string }>)) {
        if (JSON.stringify(a.get(key)) !== JSON.stringify(want)) differsFromIntent.push(key);
      }
    }
    const unexplained = differsFromIntent.filter((k) => !touched.has(k));
    expect(unexplained).toEqual([]);

    const entitiesChecked = new Set([...entities.keys()]).size;
    await summarize(context, "chaos", {
      events: steps.length,
      requests: order.length,
      "exact-duplicates": counts["exact-duplicate"],
      "resends-new-nonce": counts.resend,
      reordered: reordered.size,
      "delayed-refused-401": refused401,
      "acknowledged-ignored": ignored,
      entities: entitiesChecked,
      "entities-mismatched": mismatched.length,
      "differ-from-intent-by-overtaking": differsFromIntent.length,
      "lost-writes": mismatched.length,
    });
  }, TIMEOUT_MS);
});
