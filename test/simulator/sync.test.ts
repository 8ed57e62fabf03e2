// A small sync in every profile, through the Worker: the directory must end up exactly as the generator
// intended (counts, parents, memberships after moves and deletes, attributes after updates).
import { describe, expect, it } from "vitest";
import { planCompany, type IntendedDirectory } from "../../sim/core/company";
import { formatSyncSummary } from "../../sim/core/report";
import { runSync, type Progress } from "../../sim/core/sync";
import { testEnv } from "../helpers/worker";
import { directoryByCode, expectedByCode, PROFILES, simSender } from "./harness";

// Each profile pushes its own seed, so its codes and usernames carry their own tag; this file's D1 holds
// all of them, and after each sync the whole directory must be the union of what was intended so far.
const synced: IntendedDirectory[] = [];

describe("sync through the Worker, every profile", () => {
  PROFILES.forEach(({ label, name, layout }, i) => {
    it(`${label}: 8 organizations / 30 users, then updates, moves and deletes`, async () => {
      const sender = simSender(name, layout);
      const plan = planCompany({ orgs: 8, users: 30, seed: `profile${i}` });
      const progress: Progress[] = [];
      const result = await runSync(sender, plan, { concurrency: 4, onProgress: (p) => progress.push(p) });

      const failures = result.records.filter((r) => r.code !== "200");
      expect(failures).toEqual([]);
      expect(result.summary).toMatchObject({ events: plan.steps.length, ok: plan.steps.length, failed: 0, skipped: 0 });
      // Every phase makes changes with these counts, so the comparison below covers moves and deletes.
      expect(plan.counts.orgMoves).toBeGreaterThan(0);
      expect(plan.counts.orgDeletes).toBeGreaterThan(0);
      expect(plan.counts.userMoves).toBeGreaterThan(0);
      expect(plan.counts.userDeletes).toBeGreaterThan(0);
      expect(progress.at(-1)).toMatchObject({ phase: "delete", done: plan.steps.length, total: plan.steps.length });

      synced.push(plan.intended);
      const actual = await directoryByCode();
      const expected = expectedByCode(synced);
      expect(actual.organizations).toEqual(expected.organizations);
      expect(actual.users).toEqual(expected.users);
      expect(plan.intended.organizations).toHaveLength(8 - plan.counts.orgDeletes);
      expect(plan.intended.users).toHaveLength(30 - plan.counts.userDeletes);

      // The ids the simulator kept are the receiver's ids for those codes and usernames.
      for (const o of actual.snapshot.organizations.filter((o) => o.code.startsWith(`${plan.tag}-`))) {
        expect(result.orgIds.get(o.code)).toBe(o.id);
      }
      for (const u of actual.snapshot.users.filter((u) => u.username.startsWith(`${plan.tag}.`))) {
        expect(result.userIds.get(u.username)).toBe(u.id);
      }

      // Deleted entities are tombstones, hidden from reads, one audit row per event.
      const deletedOrgs = await testEnv.DB.prepare("SELECT COUNT(*) AS n FROM organizations WHERE deleted_at IS NOT NULL AND code LIKE ?")
        .bind(`${plan.tag}-%`)
        .first<{ n: number }>();
      expect(deletedOrgs?.n).toBe(plan.counts.orgDeletes);
      const summary = formatSyncSummary(result, 4);
      expect(summary).toContain("failures    none");
      expect(summary).toMatch(/latency {5}p50 [0-9.]+ ms {2}p95 [0-9.]+ ms {2}p99/);
    });
  });

  it("the same seed again is idempotent: creates return the same ids, the directory is unchanged", async () => {
    const sender = simSender("sha1+gcm", "iv12");
    const plan = planCompany({ orgs: 8, users: 30, seed: "profile1" });
    const before = await directoryByCode();
    const result = await runSync(sender, plan, { concurrency: 4 });
    expect(result.summary.failed).toBe(0);
    const after = await directoryByCode();
    expect(after.organizations).toEqual(before.organizations);
    expect(after.users).toEqual(before.users);
    for (const o of before.snapshot.organizations.filter((o) => o.code.startsWith(`${plan.tag}-`))) {
      expect(result.orgIds.get(o.code)).toBe(o.id);
    }
  });
});
