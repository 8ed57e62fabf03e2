// Plain-text reports of a sync and of the check lists of the replay and tamper modes.
import { PHASES, type CompanyPlan } from "./company";
import type { Check } from "./modes";
import { formatMs, formatSeconds } from "./stats";
import type { SyncResult } from "./sync";

function table(rows: string[][], alignRight: boolean[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  return rows.map((r) =>
    r
      .map((cell, i) => {
        const pad = " ".repeat(widths[i]! - [...cell].length);
        return alignRight[i] ? pad + cell : cell + pad;
      })
      .join("  ")
      .trimEnd(),
  );
}

export function formatPlan(plan: CompanyPlan): string {
  const c = plan.counts;
  return (
    `plan        ${c.orgs} organizations, ${c.users} users; then ${c.orgRenames} renames, ${c.userUpdates} user updates, ` +
    `${c.orgMoves} organization moves, ${c.userMoves} user moves, ${c.userDeletes} user deletes, ${c.orgDeletes} organization deletes ` +
    `(${plan.steps.length} events)`
  );
}

export function formatSyncSummary(result: SyncResult, concurrency: number, maxFailures = 10): string {
  const { summary: s, plan } = result;
  const lines: string[] = [];
  const rows = [["phase", "events", "ok", "failed", "skipped", "time"]];
  for (const phase of PHASES) {
    const p = s.phases[phase];
    rows.push([phase, String(p.events), String(p.ok), String(p.failed), String(p.skipped), formatSeconds(p.elapsedMs)]);
  }
  lines.push(...table(rows, [false, true, true, true, true, true]).map((l) => `  ${l}`));
  lines.push("");
  lines.push(`events      ${s.events} sent, ${s.ok} ok, ${s.failed} failed, ${s.skipped} skipped, ${s.retries} retries`);
  const failures = Object.entries(s.failuresByCode)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, n]) => `${code} × ${n}`);
  lines.push(`failures    ${failures.length > 0 ? failures.join(", ") : "none"}`);
  lines.push(`throughput  ${s.eventsPerSecond.toFixed(1)} events/s (${formatSeconds(s.elapsedMs)}, concurrency ${concurrency})`);
  const l = s.latency;
  lines.push(`latency     p50 ${formatMs(l.p50)}  p95 ${formatMs(l.p95)}  p99 ${formatMs(l.p99)}  max ${formatMs(l.max)}`);
  lines.push(
    `directory   ${plan.intended.organizations.length} organizations and ${plan.intended.users.length} users intended; ` +
      `ids received for ${result.orgIds.size} organizations and ${result.userIds.size} users`,
  );
  const failed = result.records.filter((r) => r.code !== "200" && r.code !== "skipped");
  if (failed.length > 0) {
    lines.push("");
    lines.push(`first failures (of ${failed.length}):`);
    for (const r of failed.slice(0, maxFailures)) lines.push(`  ${r.eventType} ${r.subject}: ${r.code} ${r.message}`);
  }
  return lines.join("\n");
}

export function formatChecks(checks: readonly Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.pass ? "PASS" : "FAIL"}  ${c.name}`);
    lines.push(`      expected ${c.expected}`);
    lines.push(`      got      ${c.got}`);
    if (c.note) lines.push(`      note     ${c.note}`);
  }
  return lines.join("\n");
}
