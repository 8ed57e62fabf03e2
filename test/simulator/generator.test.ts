// The simulator's pure parts: the seeded company and its plan, settings files, the graph runner, stats.
import { describe, expect, it } from "vitest";
import { parseDotenv, parseWranglerVars } from "../../sim/core/settings-files";
import { planCompany, type CompanyPlan, type Step } from "../../sim/core/company";
import { flipChar } from "../../sim/core/modes";
import { mergeSettings, profileFromSettings } from "../../sim/core/profile";
import { latencyStats, percentile } from "../../sim/core/stats";
import { runGraph } from "../../sim/core/sync";

/** Applies a plan to an in-memory directory with the receiver's rules, failing on anything it would refuse. */
function replayPlan(plan: CompanyPlan) {
  const orgs = new Map<string, { name: string; parent: string | null; deleted: boolean }>();
  const users = new Map<string, { org: string; deleted: boolean }>();
  const live = (code: string) => orgs.has(code) && !orgs.get(code)!.deleted;
  const ancestors = (code: string) => {
    const out: string[] = [];
    for (let c = orgs.get(code)?.parent ?? null; c !== null; c = orgs.get(c)!.parent) out.push(c);
    return out;
  };
  const done = new Set<string>();
  const apply = (s: Step) => {
    for (const d of s.deps) expect(done.has(d), `${s.key} before ${d}`).toBe(true);
    switch (s.type) {
      case "CREATE_ORGANIZATION":
        if (s.org.parentCode !== null) expect(live(s.org.parentCode)).toBe(true);
        orgs.set(s.org.code, { name: s.org.name, parent: s.org.parentCode, deleted: false });
        break;
      case "UPDATE_ORGANIZATION":
        expect(live(s.org.code)).toBe(true);
        if (s.org.parentCode !== null) {
          expect(live(s.org.parentCode)).toBe(true);
          expect([s.org.parentCode, ...ancestors(s.org.parentCode)]).not.toContain(s.org.code);
        }
        orgs.set(s.org.code, { name: s.org.name, parent: s.org.parentCode, deleted: false });
        break;
      case "DELETE_ORGANIZATION":
        expect([...orgs.values()].some((o) => !o.deleted && o.parent === s.code)).toBe(false);
        expect([...users.values()].some((u) => !u.deleted && u.org === s.code)).toBe(false);
        orgs.get(s.code)!.deleted = true;
        break;
      case "CREATE_USER":
        expect(live(s.user.orgCode)).toBe(true);
        users.set(s.user.username, { org: s.user.orgCode, deleted: false });
        break;
      case "UPDATE_USER":
        expect(users.get(s.username)?.deleted).toBe(false);
        if (s.changes.orgCode !== undefined) {
          expect(live(s.changes.orgCode)).toBe(true);
          users.get(s.username)!.org = s.changes.orgCode;
        }
        break;
      case "DELETE_USER":
        users.get(s.username)!.deleted = true;
        break;
    }
    done.add(s.key);
  };
  // Phase by phase; within a phase, in reverse order wherever dependencies allow (the worst legal order).
  for (const phase of ["create", "update", "move", "delete"] as const) {
    const pending = plan.steps.filter((s) => s.phase === phase).reverse();
    while (pending.length > 0) {
      const i = pending.findIndex((s) => s.deps.every((d) => done.has(d)));
      expect(i).toBeGreaterThanOrEqual(0);
      apply(pending.splice(i, 1)[0]!);
    }
  }
  return { orgs, users };
}

describe("planCompany", () => {
  it("is a pure function of the seed", () => {
    const a = planCompany({ orgs: 20, users: 200, seed: "42" });
    const b = planCompany({ orgs: 20, users: 200, seed: "42" });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const c = planCompany({ orgs: 20, users: 200, seed: "43" });
    expect(c.tag).not.toBe(a.tag);
    const codes = new Set(a.steps.map((s) => s.key));
    expect(c.steps.some((s) => codes.has(s.key))).toBe(false);
  });

  it.each([
    [1, 0],
    [1, 5],
    [2, 3],
    [8, 30],
    [20, 200],
    [60, 400],
  ])("%i organizations / %i users: legal in any order the dependencies allow, ends as intended", (o, u) => {
    for (const seed of ["1", "x", "2026"]) {
      const plan = planCompany({ orgs: o, users: u, seed });
      expect(plan.steps.filter((s) => s.type === "CREATE_ORGANIZATION")).toHaveLength(o);
      expect(plan.steps.filter((s) => s.type === "CREATE_USER")).toHaveLength(u);
      const { orgs, users } = replayPlan(plan);
      const liveOrgs = [...orgs].filter(([, v]) => !v.deleted);
      expect(liveOrgs.map(([c]) => c).sort()).toEqual(plan.intended.organizations.map((x) => x.code).sort());
      for (const org of plan.intended.organizations) expect(orgs.get(org.code)).toMatchObject({ name: org.name, parent: org.parentCode });
      const liveUsers = [...users].filter(([, v]) => !v.deleted);
      expect(liveUsers.map(([n]) => n).sort()).toEqual(plan.intended.users.map((x) => x.username).sort());
      for (const user of plan.intended.users) expect(users.get(user.username)?.org).toBe(user.orgCode);
    }
  });

  it("makes realistic, valid data: Chinese and Latin names within the contract's limits, emails, mobiles, extension attributes", () => {
    const plan = planCompany({ orgs: 40, users: 300, seed: "realistic" });
    const users = plan.steps.flatMap((s) => (s.type === "CREATE_USER" ? [s.user] : []));
    const orgs = plan.steps.flatMap((s) => (s.type === "CREATE_ORGANIZATION" || s.type === "UPDATE_ORGANIZATION" ? [s.org] : []));
    expect(users.some((x) => /\p{Script=Han}/u.test(x.name))).toBe(true);
    expect(users.some((x) => /^[\p{Script=Latin} ']+$/u.test(x.name))).toBe(true);
    expect(orgs.some((x) => /\p{Script=Han}/u.test(x.name))).toBe(true);
    expect(orgs.some((x) => /[A-Za-z]/.test(x.name))).toBe(true);
    expect(new Set(users.map((x) => x.username)).size).toBe(users.length);
    expect(new Set(orgs.filter((_, i) => i < 40).map((x) => x.code)).size).toBe(40);
    for (const x of orgs) expect([...x.name].length).toBeLessThanOrEqual(40);
    for (const x of users) {
      expect([...x.name].length).toBeLessThanOrEqual(40);
      expect([...x.firstName].length).toBeLessThanOrEqual(20);
      expect([...x.lastName].length).toBeLessThanOrEqual(20);
      expect(x.username).toMatch(/^[a-z0-9.]+$/);
      expect(x.email).toMatch(/^[a-z0-9.]+@[a-z0-9]+\.example\.com$/);
      expect(x.mobile).toMatch(/^\+(86-1[0-9]{10}|44-7700-9[0-9]{5})$/);
      expect(x.extensions).toMatchObject({ employeeNo: expect.stringMatching(/^E[0-9]{6}$/), hireDate: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
    }
  });

  it("refuses sizes that make no company", () => {
    expect(() => planCompany({ orgs: 0, users: 1, seed: "1" })).toThrow(/--orgs/);
    expect(() => planCompany({ orgs: 1, users: -1, seed: "1" })).toThrow(/--users/);
  });
});

describe("runGraph", () => {
  it("never exceeds the concurrency, respects dependencies, skips the dependents of a failure", async () => {
    const tasks = [
      { key: "a", deps: [] },
      { key: "b", deps: ["a"] },
      { key: "c", deps: ["a"] },
      { key: "d", deps: ["b", "c"] },
      { key: "e", deps: [] },
      { key: "f", deps: ["e"] },
      { key: "g", deps: ["f"] },
      { key: "h", deps: [] },
    ];
    let inFlight = 0;
    let peak = 0;
    const order: string[] = [];
    const skipped: string[] = [];
    await runGraph(
      tasks,
      2,
      async (t) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        order.push(t.key);
        return t.key !== "e";
      },
      (t, because) => skipped.push(`${t.key}<${because}`),
    );
    expect(peak).toBe(2);
    expect(order.indexOf("a")).toBeLessThan(order.indexOf("b"));
    expect(order.indexOf("c")).toBeLessThan(order.indexOf("d"));
    expect(order.sort()).toEqual(["a", "b", "c", "d", "e", "h"]);
    expect(skipped).toEqual(["f<e", "g<f"]);
  });
});

describe("settings files", () => {
  it("reads .dev.vars like dotenv and wrangler.toml's top-level [vars] only", () => {
    expect(parseDotenv(`# c\nA="x \\"q\\" # not a comment"\nexport B=plain # comment\nC='lit$eral'\nD=\nbad line\n`)).toEqual({
      A: 'x "q" # not a comment',
      B: "plain",
      C: "lit$eral",
      D: "",
    });
    const toml = `name = "w"\nX = "top"\n[vars]\nA = "1" # c\nB = 'two'\nC = 300\n[env.prod.vars]\nA = "prod"\n[[d1_databases]]\nbinding = "DB"\n`;
    expect(parseWranglerVars(toml)).toEqual({ A: "1", B: "two", C: "300" });
  });

  it("merges like wrangler dev (later wins) and validates with the receiver's own rules", () => {
    const merged = mergeSettings(
      { ONEACCESS_SIGNATURE: "sha1", ONEACCESS_GCM_LAYOUT: "auto", ONEACCESS_RECEIVE_ID: "r" },
      { ONEACCESS_BEARER_TOKEN: "t".repeat(32), ONEACCESS_SIGNING_KEY: "k", ONEACCESS_ENCRYPTION_KEY: "0123456789abcdef", ONEACCESS_RECEIVE_ID: "" },
      { ONEACCESS_GCM_LAYOUT: "iv12" },
    );
    const result = profileFromSettings(merged);
    expect(result).toMatchObject({ ok: true, profile: { signature: "sha1", encryption: "aes-gcm", layout: "iv12", receiveId: "", toleranceSeconds: 300 } });
    expect(profileFromSettings({ ...merged, ONEACCESS_SIGNATURE: "md5" })).toMatchObject({
      ok: false,
      problems: [{ setting: "ONEACCESS_SIGNATURE" }],
    });
  });
});

describe("helpers", () => {
  it("flipChar changes exactly one character, keeping its kind", () => {
    expect(flipChar("abc123", 4)).toBe("abc173");
    expect(flipChar("0123456789abcdef", 15)).toBe("0123456789abcde0");
    expect(flipChar("QUJD+/==", 4)).toBe("QUJD//==");
    expect(flipChar("dev-token", 3)).toBe("devxtoken");
  });

  it("percentiles by nearest rank", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(xs, 50), percentile(xs, 95), percentile(xs, 99), percentile(xs, 100)]).toEqual([50, 95, 99, 100]);
    expect(latencyStats([3, 1, 2])).toMatchObject({ p50: 2, max: 3, mean: 2 });
    expect(latencyStats([])).toMatchObject({ count: 0, p99: 0 });
  });
});
