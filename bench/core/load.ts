// Load against wrangler dev: the host's load generator (autocannon in Node) driven with pre-built bodies,
// replies tallied, the time to the last response, CPU per request; and single requests resent the way
// OneAccess resends them.
import type { FetchLike } from "../../sim/core/wire";
import { round, type CpuUse, type ProcessGroup } from "./processes";

/** Per connection, kept while the connection's request is in flight (autocannon's `context`). */
export type ConnectionContext = Record<string, unknown>;

export interface LoadOptions {
  url: string;
  connections: number;
  /** Requests to send in all; the run ends when they are answered. */
  amount: number;
  method: "GET" | "POST";
  headers: Record<string, string>;
  /** The body of the next request a connection sends. */
  body?: (context: ConnectionContext) => string;
  onResponse?: (status: number, body: string, context: ConnectionContext) => void;
  /** Each response's latency, ms. */
  onLatency?: (ms: number) => void;
}

export interface LoadSummary {
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

/** What the host runs load with (autocannon). */
export interface LoadGenerator {
  run(options: LoadOptions): Promise<LoadSummary>;
}

export interface PhaseResult {
  requests: number;
  serverCpuMsPerRequest: number | null;
  cpu: CpuUse;
  seconds: number;
  rps: number;
  latencyMs: LoadSummary["latencyMs"];
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Replies by HTTP status, or for callbacks by `code message`, most frequent first. */
  replies: Record<string, number>;
}

export interface RunOptions {
  method?: "GET" | "POST";
  /** Pre-built bodies (a body is built asynchronously, a request is set up synchronously), one per request. */
  bodies?: readonly string[];
  amount: number;
  /** Keep each reply's text (to read the ids a create answered). */
  keep?: boolean;
  connections?: number;
  /** Keep each response's latency. */
  latencies?: boolean;
}

export interface Posted {
  status: number;
  text: string;
  attempts: number;
  ms: number;
}

export class Loader {
  constructor(
    private readonly deps: {
      generator: LoadGenerator;
      fetch: FetchLike;
      now(): number;
      group: ProcessGroup;
      connections: number;
      callbackHeaders: Record<string, string>;
    },
  ) {}

  get callbackHeaders(): Record<string, string> {
    return this.deps.callbackHeaders;
  }

  /**
   * One run of `amount` requests. Bodies are taken one per request, so no body is ever sent twice (autocannon
   * may set up a few more requests than it sends: pass `amount` plus 4 per connection). Replies are tallied
   * by HTTP status and, for callbacks, by `code message`.
   */
  async run(url: string, o: RunOptions): Promise<PhaseResult & { kept: string[]; latencySamples: number[] }> {
    const { bodies } = o;
    let next = 0;
    let lastResponse = 0;
    const replies = new Map<string, number>();
    const kept: string[] = [];
    const latencySamples: number[] = [];
    const cpu0 = this.deps.group.snapshot();
    const started = this.deps.now();
    const summary = await this.deps.generator.run({
      url,
      connections: o.connections ?? this.deps.connections,
      amount: o.amount,
      method: o.method ?? "GET",
      headers: bodies ? this.deps.callbackHeaders : {},
      ...(bodies
        ? {
            body: () => {
              if (next >= bodies.length) throw new Error("bench: ran out of pre-built bodies");
              return bodies[next++]!;
            },
          }
        : {}),
      onResponse: (status, body) => {
        lastResponse = this.deps.now();
        const key = bodies ? replyKey(status, body) : String(status);
        if (bodies && o.keep) kept.push(body);
        replies.set(key, (replies.get(key) ?? 0) + 1);
      },
      ...(o.latencies ? { onLatency: (ms: number) => void latencySamples.push(ms) } : {}),
    });
    const total = summary.ok2xx + summary.non2xx;
    const seconds = (lastResponse - started) / 1000;
    const cpu = this.deps.group.between(cpu0, this.deps.group.snapshot(), total, seconds);
    return {
      requests: total,
      serverCpuMsPerRequest: cpu.serverMsPerRequest,
      cpu,
      seconds: round(seconds, 3)!,
      rps: round(total / seconds, 1)!,
      latencyMs: summary.latencyMs,
      non2xx: summary.non2xx,
      errors: summary.errors,
      timeouts: summary.timeouts,
      replies: sortedTally(replies),
      kept,
      latencySamples,
    };
  }

  /** One request, resent with the same bytes after a 500 or a network error, as OneAccess does (5 tries). */
  async post(url: string, body: string): Promise<Posted> {
    const started = this.deps.now();
    for (let attempt = 1; ; attempt++) {
      let text: string | null;
      let status = 0;
      try {
        const res = await this.deps.fetch(new Request(url, { method: "POST", headers: this.deps.callbackHeaders, body }));
        status = res.status;
        text = await res.text();
      } catch (e) {
        text = null;
        if (attempt >= 5) throw e;
      }
      if (text !== null && status !== 500) return { status, text, attempts: attempt, ms: this.deps.now() - started };
      if (attempt >= 5) return { status, text: text ?? "", attempts: attempt, ms: this.deps.now() - started };
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

/** A callback reply's `code message`, or the HTTP status when the body is not a reply. */
function replyKey(status: number, body: string): string {
  try {
    const b = JSON.parse(body) as { code?: unknown; message?: unknown };
    return `${String(b.code)} ${String(b.message)}`;
  } catch {
    return `${status} (not a reply)`;
  }
}

function sortedTally(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      await task(i);
    }
  });
  await Promise.all(workers);
}
