// The lines the bench prints. Figures only: the bench never fails on a timing, it says where a goal stands.
import type { PhaseResult } from "./load";
import { ROLE_LABELS, type CpuUse, type Role } from "./processes";

const LABEL = 14;

/** A figure to print: `n/a` when there is none. */
export function figure(n: number | null | undefined, digits = 2): string {
  return n === null || n === undefined || Number.isNaN(n) ? "n/a" : n.toFixed(digits);
}

/** The extra line under a phase's summary: CPU per request by process, and how busy the machine was. */
export function cpuLine(cpu: CpuUse, nproc: number, extra = ""): string {
  const parts: string[] = [];
  for (const [role, label] of Object.entries(ROLE_LABELS) as Array<[Role, string]>) {
    const v = cpu.msPerRequest[role];
    if (v === undefined || ((role === "esbuild" || role === "other") && v < 0.005)) continue;
    parts.push(`${label} ${v.toFixed(2)}`);
  }
  parts.push(`bench ${figure(cpu.msPerRequest.bench)}${extra}`);
  return `${"".padEnd(LABEL)}CPU ms/request: ${parts.join(", ")}   ${cpu.coresBusy} of ${nproc} cores busy`;
}

/** A load phase: requests per second, latency, server CPU, anything that was not a 2xx. */
export function phaseSummary(name: string, r: PhaseResult, nproc: number): string {
  const bad = r.non2xx + r.errors + r.timeouts;
  const cpu = r.serverCpuMsPerRequest === null ? "" : `   ${r.serverCpuMsPerRequest.toFixed(2)} ms server CPU/request`;
  return (
    `${name.padEnd(LABEL - 1)} ${String(r.rps).padStart(8)} req/s   p50 ${String(r.latencyMs.p50).padStart(4)} ms   p99 ${String(r.latencyMs.p99).padStart(4)} ms${cpu}   ` +
    `${r.requests} requests${bad ? `, ${bad} NOT OK: ${JSON.stringify(r.replies)}` : ""}\n` +
    cpuLine(r.cpu, nproc)
  );
}

/** `label` padded to the figures' column. */
export const labelled = (label: string, text: string) => `${label.padEnd(LABEL - 1)} ${text}`;

/** One goal: met, NOT met, or not measured (null). */
export function goalLine(met: boolean | null, text: string): string {
  return `${met === null ? "not measured" : met ? "met" : "NOT met"}: ${text}`;
}

/** A plain text table: the first column left-aligned, the others right-aligned. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, indent = "  "): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    indent + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}
