// CPU time of wrangler dev's processes and of the bench itself, read from Linux's /proc (through `ProcFs`,
// which the Node host supplies; off Linux every figure here is null). Divided by the requests of a phase,
// what each request cost: contention from other processes skews it far less than requests per second.

/** Read access to /proc: a file's text, a directory's entries; null when missing or unreadable. */
export interface ProcFs {
  readFile(path: string): string | null;
  listDir(path: string): string[] | null;
}

export interface ProcessInfo {
  pid: number;
  /** The command name (`comm`): `workerd`, `node`, `esbuild`... */
  comm: string;
  ppid: number;
  pgrp: number;
  /** CPU time used so far, user + system. */
  cpuMs: number;
}

/** /proc's unit of CPU time (USER_HZ is 100 on Linux). */
export const CPU_TICK_MS = 10;

/** Every process, or null without /proc. */
export function readProcesses(proc: ProcFs): ProcessInfo[] | null {
  const entries = proc.listDir("/proc");
  if (entries === null) return null;
  const out: ProcessInfo[] = [];
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = proc.readFile(`/proc/${entry}/stat`);
    if (stat === null) continue; // exited meanwhile
    // pid (comm) state ppid pgrp … utime stime: the fields after the parenthesised command name.
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.push({ pid: Number(entry), comm, ppid: Number(f[1]), pgrp: Number(f[2]), cpuMs: (Number(f[11]) + Number(f[12])) * CPU_TICK_MS });
  }
  return out;
}

/** The workerd a process started (Miniflare's, for the protocol loop), or null. */
export function workerdChildOf(proc: ProcFs, pid: number): ProcessInfo | null {
  return readProcesses(proc)?.find((p) => p.ppid === pid && p.comm === "workerd") ?? null;
}

/** The CPU model named by /proc/cpuinfo, or null. */
export function cpuModelFrom(cpuinfo: string | null): string | null {
  const m = cpuinfo === null ? null : /^model name\s*:\s*(.+)$/m.exec(cpuinfo);
  return m ? m[1]!.trim() : null;
}

/**
 * What each of wrangler dev's processes is, told apart by command name and command line (PIDs change from
 * run to run, these do not):
 *   wrangler       wrangler's node process (the one the host spawned; it leads the process group)
 *   workerdProxy   the workerd listening on the dev port (`--socket-addr=entry=127.0.0.1:<port>`): wrangler's
 *                  ProxyWorker, which holds requests during reloads and forwards each one to the Worker
 *   workerdWorker  the workerd on an ephemeral port (`entry=…:0`, with `--inspector-addr`): this project's
 *                  Worker, its D1 and its Durable Object
 *   esbuild        wrangler's bundler services (idle once bundled)
 *   other          anything else in the group
 */
export const ROLE_LABELS = {
  wrangler: "wrangler",
  workerdProxy: "workerd proxy",
  workerdWorker: "workerd worker",
  esbuild: "esbuild",
  other: "other",
} as const;

export type Role = keyof typeof ROLE_LABELS;
const ROLES = Object.keys(ROLE_LABELS) as Role[];

export interface KnownProcess {
  role: Role;
  pid: number;
  command: string;
}

export interface CpuSnapshot {
  /** When it was read (the host's monotonic clock, ms). */
  at: number;
  /** The bench's own process: autocannon, and the signing it does between full-sync chunks. */
  bench: number;
  /** wrangler dev's process group by PID; null off Linux. */
  server: Map<number, ProcessInfo> | null;
}

/** CPU time between two snapshots, by process role (only roles with a process) and for the bench. */
export interface CpuUse {
  /** wrangler dev's whole process group (a process that started in between counts from zero). */
  serverMs: number | null;
  serverMsPerRequest: number | null;
  windowSeconds: number;
  /** wrangler dev and the bench together over the busy time, in cores (out of the machine's). */
  coresBusy: number;
  ms: Record<string, number>;
  msPerRequest: Record<string, number>;
}

export const round = (n: number | null | undefined, digits = 2): number | null =>
  n === null || n === undefined || Number.isNaN(n) ? null : Math.round(n * 10 ** digits) / 10 ** digits;

/** One wrangler dev: its process group (led by wrangler's PID) and the port it listens on. */
export class ProcessGroup {
  private readonly roles = new Map<number, KnownProcess>();

  constructor(
    private readonly proc: ProcFs,
    private readonly dev: { pid: number; port: number },
    private readonly clock: { now(): number; cpuNow(): number },
  ) {}

  /** Every process seen in the group so far (a workerd started by a reload included), by PID. */
  known(): KnownProcess[] {
    return [...this.roles.values()].sort((a, b) => a.pid - b.pid);
  }

  /** Classifies the processes in the group now. */
  discover(): KnownProcess[] {
    for (const p of this.members() ?? []) this.roleOf(p);
    return this.known();
  }

  snapshot(): CpuSnapshot {
    const members = this.members();
    return { at: this.clock.now(), bench: this.clock.cpuNow(), server: members === null ? null : new Map(members.map((p) => [p.pid, p])) };
  }

  /**
   * CPU between `a` and `b` per request. `busySeconds`: the wall time the work took (the time to the last
   * response of a phase; the window itself runs on past it, autocannon notices the end on a one-second tick).
   */
  between(a: CpuSnapshot, b: CpuSnapshot, requests: number, busySeconds = (b.at - a.at) / 1000): CpuUse {
    const used = new Map<Role, number>();
    let serverMs: number | null = null;
    if (a.server && b.server) {
      serverMs = 0;
      for (const [pid, p] of b.server) {
        const role = this.roleOf(p);
        const delta = p.cpuMs - (a.server.get(pid)?.cpuMs ?? 0);
        used.set(role, (used.get(role) ?? 0) + delta);
        serverMs += delta;
      }
    }
    const ms: Record<string, number> = {};
    for (const role of ROLES) if (used.has(role)) ms[role] = used.get(role)!;
    ms.bench = b.bench - a.bench;
    const perRequest = (v: number) => round(v / requests, 3)!;
    return {
      serverMs: round(serverMs, 1),
      serverMsPerRequest: serverMs === null ? null : perRequest(serverMs),
      windowSeconds: round((b.at - a.at) / 1000, 3)!,
      coresBusy: round(((serverMs ?? 0) + ms.bench) / (busySeconds * 1000), 2)!,
      ms: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, round(v, 1)!])),
      msPerRequest: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, perRequest(v)])),
    };
  }

  private members(): ProcessInfo[] | null {
    return readProcesses(this.proc)?.filter((p) => p.pgrp === this.dev.pid) ?? null;
  }

  private roleOf(p: ProcessInfo): Role {
    let known = this.roles.get(p.pid);
    if (!known) {
      const argv = (this.proc.readFile(`/proc/${p.pid}/cmdline`) ?? "").split("\0").filter(Boolean);
      let role: Role = "other";
      if (p.pid === this.dev.pid) role = "wrangler";
      else if (p.comm === "workerd") {
        const entry = `:${this.dev.port}`;
        role = argv.some((a) => a.startsWith("--socket-addr=entry=") && a.endsWith(entry)) ? "workerdProxy" : "workerdWorker";
      } else if (p.comm === "esbuild") role = "esbuild";
      known = { role, pid: p.pid, command: argv.join(" ") };
      this.roles.set(p.pid, known);
    }
    return known.role;
  }
}
