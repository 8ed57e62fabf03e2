// The load phases against one wrangler dev (the receiver at LOG_LEVEL warn): a warm-up, then requests per
// second at N connections (the floor, CHECK_URL, the full path), latency at one connection, and the
// back-to-back load that shows whether the runtime cancels requests as hung.
import { latencyStats } from "../../sim/core/stats";
import { countLines, HUNG } from "./dev-server";
import { checkUrlMessage, createUserMessage, openReply, replyId, updateUserMessage } from "./events";
import type { PhaseResult } from "./load";
import { round, type CpuUse } from "./processes";
import { figure, labelled, phaseSummary } from "./report";
import { callbackUrl, healthzUrl, sleep, userNames, type Session } from "./session";

/** Spare bodies per connection: autocannon may set up a few more requests than it sends. */
const SPARE = 4;

/** Every route once, and users for UPDATE_USER to change: their ids. */
export async function warmUp(s: Session, users: number): Promise<string[]> {
  s.log("bench: warming up");
  await s.loader.run(healthzUrl(s), { amount: 2000 });
  await s.loader.run(callbackUrl(s), { method: "POST", amount: 1000, bodies: await s.factory.buildMany(1000 + SPARE * s.connections, () => ["CHECK_URL", checkUrlMessage()]) });
  const bodies = await s.factory.buildMany(users + SPARE * s.connections, (i) => ["CREATE_USER", createUserMessage(s.tag, "warm", i)]);
  const warm = await s.loader.run(callbackUrl(s), { method: "POST", amount: users, bodies, keep: true });
  const targets: string[] = [];
  for (const text of warm.kept) {
    const opened = await openReply(s.bench.profile, text);
    const id = replyId(opened.plaintext);
    if (opened.code === "200" && id) targets.push(id);
  }
  if (targets.length === 0) throw new Error(`warm-up created no user: ${JSON.stringify(warm.replies)}`);
  return targets;
}

export interface Throughput {
  healthz: PhaseResult;
  checkUrl: PhaseResult;
  createUser: PhaseResult;
  updateUser: PhaseResult;
}

const strip = ({ kept: _kept, latencySamples: _samples, ...rest }: PhaseResult & { kept: string[]; latencySamples: number[] }): PhaseResult => rest;

/**
 * 1. GET /healthz, the floor; 2. CHECK_URL (verify, open, seal); 3. CREATE_USER and UPDATE_USER, the full
 * path. `/healthz` and CHECK_URL send 2.5 times `requests`. Every callback is a fresh valid event; the
 * updates go round-robin over the warm-up's users, each newer than the one before.
 */
export async function throughput(s: Session, requests: number, targets: readonly string[], nproc: number): Promise<Throughput> {
  s.log("bench: measuring");
  const floor = Math.round(requests * 2.5);
  const healthz = strip(await s.loader.run(healthzUrl(s), { amount: floor }));
  s.log(phaseSummary("GET /healthz", healthz, nproc));

  const checkBodies = await s.factory.buildMany(floor + SPARE * s.connections, () => ["CHECK_URL", checkUrlMessage()]);
  const checkUrl = strip(await s.loader.run(callbackUrl(s), { method: "POST", amount: floor, bodies: checkBodies }));
  s.log(phaseSummary("CHECK_URL", checkUrl, nproc));

  const createBodies = await s.factory.buildMany(requests + SPARE * s.connections, (i) => ["CREATE_USER", createUserMessage(s.tag, "new", i)]);
  const createUser = strip(await s.loader.run(callbackUrl(s), { method: "POST", amount: requests, bodies: createBodies }));
  s.log(phaseSummary("CREATE_USER", createUser, nproc));

  // An update carries the username too, read back through the read API.
  const names = await userNames(s, targets);
  const updateBodies = await s.factory.buildMany(requests + SPARE * s.connections, (i) => {
    const id = targets[i % targets.length]!;
    return ["UPDATE_USER", updateUserMessage(id, names.get(id)!, Math.floor(i / targets.length) + 1)];
  });
  const updateUser = strip(await s.loader.run(callbackUrl(s), { method: "POST", amount: requests, bodies: updateBodies }));
  s.log(phaseSummary("UPDATE_USER", updateUser, nproc));
  return { healthz, checkUrl, createUser, updateUser };
}

export interface LatencyFigures {
  requests: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  cpu: CpuUse;
}

export interface Latency {
  healthz: LatencyFigures;
  createUser: LatencyFigures;
  /** CREATE_USER's mean minus /healthz's: what the full path adds to a request (goal: at most 2 ms). */
  createUserMinusHealthzMeanMs: number;
}

export const LATENCY_GOAL_MS = 2;

/** One connection, one request at a time: /healthz, then CREATE_USER (a new user each). */
export async function latency(s: Session, requests: number): Promise<Latency> {
  s.log(`bench: latency at one connection, ${requests} requests each, one at a time`);
  const figures = (r: PhaseResult & { latencySamples: number[] }): LatencyFigures => {
    const l = latencyStats(r.latencySamples);
    return { requests: r.requests, meanMs: round(l.mean, 3)!, p50Ms: round(l.p50, 3)!, p99Ms: round(l.p99, 3)!, maxMs: round(l.max, 3)!, non2xx: r.non2xx, cpu: r.cpu };
  };
  const healthz = figures(await s.loader.run(healthzUrl(s), { amount: requests, connections: 1, latencies: true }));
  const bodies = await s.factory.buildMany(requests + SPARE, (i) => ["CREATE_USER", createUserMessage(s.tag, "lat", i)]);
  const createUser = figures(await s.loader.run(callbackUrl(s), { method: "POST", amount: requests, bodies, connections: 1, latencies: true }));
  const diff = round(createUser.meanMs - healthz.meanMs, 3)!;
  const line = (name: string, f: LatencyFigures) =>
    labelled(
      name,
      `mean ${figure(f.meanMs)} ms   p50 ${figure(f.p50Ms)} ms   p99 ${figure(f.p99Ms)} ms   ${f.requests} requests` +
        `${f.non2xx ? `, ${f.non2xx} NOT 2xx` : ""}   workerd worker CPU ${figure(f.cpu.msPerRequest.workerdWorker)} ms/request`,
    );
  s.log(line("1 conn healthz", healthz));
  s.log(line("1 conn create", createUser));
  s.log(labelled("latency", `CREATE_USER mean − /healthz mean = ${figure(diff)} ms   (goal: ≤ ${LATENCY_GOAL_MS} ms)`));
  return { healthz, createUser, createUserMinusHealthzMeanMs: diff };
}

export interface BackToBackSegment {
  eventType: string;
  /** Requests of this kind that got a reply. */
  answered: number;
  /** Replies whose HTTP status was not 200. */
  non200: number;
  replies: Record<string, number>;
}

export interface BackToBack {
  segments: BackToBackSegment[];
  requests: number;
  seconds: number;
  rps: number;
  latencyMs: PhaseResult["latencyMs"];
  /** Replies whose HTTP status was not 200, all segments together; requests that got no reply apart. */
  non200: number;
  errors: number;
  timeouts: number;
  /** Lines of wrangler dev's output, from the start of the load until a moment after it, containing "had hung". */
  hadHung: number;
  cpu: CpuUse;
}

/**
 * `checks` CHECK_URL, then `creates` CREATE_USER, then `checks` CHECK_URL, as one run at N connections: no
 * pause between them, the next kind starting while the last requests of the one before are in flight. Then
 * the lines of wrangler dev's output (stdout and stderr of the wrangler process, which relays workerd's)
 * saying the runtime cancelled a request because the Worker "had hung", and the replies that were not 200.
 */
export async function backToBack(s: Session, checks: number, creates: number): Promise<BackToBack> {
  s.log(`bench: back to back at ${s.connections} connections: ${checks} CHECK_URL, ${creates} CREATE_USER, ${checks} CHECK_URL`);
  const plan = [
    { eventType: "CHECK_URL", count: checks },
    { eventType: "CREATE_USER", count: creates },
    { eventType: "CHECK_URL", count: checks },
  ];
  const total = 2 * checks + creates;
  const segmentOf = (i: number) => (i < checks ? 0 : i < checks + creates ? 1 : 2);
  const bodies = await s.factory.buildMany(total + SPARE * s.connections, (i) =>
    segmentOf(i) === 1 ? ["CREATE_USER", createUserMessage(s.tag, "b2b", i - checks)] : ["CHECK_URL", checkUrlMessage()],
  );
  const segments: BackToBackSegment[] = plan.map((p) => ({ eventType: p.eventType, answered: 0, non200: 0, replies: {} }));
  const tallies = plan.map(() => new Map<string, number>());
  const output0 = s.running.dev.output().length;
  const cpu0 = s.running.group.snapshot();
  const started = s.now();
  let next = 0;
  let lastResponse = started;
  const summary = await s.generator.run({
    url: callbackUrl(s),
    connections: s.connections,
    amount: total,
    method: "POST",
    headers: s.loader.callbackHeaders,
    body: (context) => {
      if (next >= bodies.length) throw new Error("bench: ran out of pre-built bodies");
      context.index = next;
      return bodies[next++]!;
    },
    onResponse: (status, body, context) => {
      lastResponse = s.now();
      const segment = segmentOf(context.index as number);
      segments[segment]!.answered++;
      if (status !== 200) segments[segment]!.non200++;
      const key = status === 200 ? "200" : `${status} ${body.slice(0, 80)}`;
      tallies[segment]!.set(key, (tallies[segment]!.get(key) ?? 0) + 1);
    },
  });
  const seconds = (lastResponse - started) / 1000;
  const cpu = s.running.group.between(cpu0, s.running.group.snapshot(), total, seconds);
  // The runtime's message can trail the reply it cut short.
  await sleep(2000);
  const hadHung = countLines(s.running.dev.output().slice(output0), HUNG);
  segments.forEach((seg, i) => (seg.replies = Object.fromEntries(tallies[i]!)));
  const result: BackToBack = {
    segments,
    requests: summary.ok2xx + summary.non2xx,
    seconds: round(seconds, 3)!,
    rps: round((summary.ok2xx + summary.non2xx) / seconds, 1)!,
    latencyMs: summary.latencyMs,
    non200: segments.reduce((n, seg) => n + seg.non200, 0),
    errors: summary.errors,
    timeouts: summary.timeouts,
    hadHung,
    cpu,
  };
  s.log(
    labelled(
      "back to back",
      `${result.requests} requests in ${figure(result.seconds, 1)} s, ${result.rps} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms; ` +
        `not 200: ${segments.map((seg) => `${seg.non200} of ${seg.answered} ${seg.eventType}`).join(", ")}` +
        `${result.errors + result.timeouts ? `; ${result.errors} errors, ${result.timeouts} timeouts (no reply)` : ""}`,
    ),
  );
  s.log(labelled("had hung", `${hadHung} lines of wrangler dev's output say the runtime cancelled a request as hung   (goal: 0)`));
  return result;
}
