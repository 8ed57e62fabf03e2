// `npm run bench`: how much a callback costs next to the cheapest request the same runtime serves, and
// what each kind of event costs. Everything Node-specific (wrangler dev's processes, autocannon, Miniflare,
// files, /proc, the clock and CPU time of this process) comes in through `BenchHost`, supplied by
// scripts/bench.mjs, so this file and bench/core/ type-check against Web APIs only.
//
// One run: the pure protocol work in a loop (in workerd, and in Node's Web Crypto); then one `wrangler dev`
// (the receiver at LOG_LEVEL warn) for a warm-up, requests per second at N connections (/healthz, CHECK_URL,
// CREATE_USER, UPDATE_USER), latency at one connection, a back-to-back load (CHECK_URL, CREATE_USER,
// CHECK_URL) and a full sync; then a second `wrangler dev` at LOG_LEVEL log for the cost of each event type.
// Every callback is a fresh valid event, sealed and signed with the receiver's own protocol code. The change
// log and webhooks are on throughout: each wrangler dev sends its webhooks to the host's sink (a path of its
// own), so the Worker's CPU includes the webhook dispatcher's work, and the cost phase reports what the
// dispatcher writes per change (--no-webhooks: both with webhooks off). Prints its figures and writes them to
// bench-results.json (git-ignored) with the commit and the date.
import { integerOption, parseArgs, UsageError } from "../../sim/cli/args";
import { parseDotenv } from "../../sim/core/settings-files";
import type { FetchLike } from "../../sim/core/wire";
import { costPhase } from "../core/cost";
import { countLines, HUNG, startDevServer, type DevHost, type RunningDev } from "../core/dev-server";
import { benchProfile, BodyFactory, runTag } from "../core/events";
import { fullSync } from "../core/full-sync";
import { Loader, type LoadGenerator } from "../core/load";
import { backToBack, latency, LATENCY_GOAL_MS, throughput, warmUp } from "../core/phases";
import { cpuModelFrom, round, workerdChildOf, type ProcFs } from "../core/processes";
import { measurePbkdf2CpuInWorkerd, measureProtocolCpu, measureProtocolCpuInWorkerd, protocolInput, type ProtocolCpu, type ScriptWorker } from "../core/protocol";
import { goalLine, labelled } from "../core/report";
import type { Session } from "../core/session";
import { NO_MESSAGES, type SinkCounts, type SinkPathCounts, type WebhookSink } from "../core/webhooks";

export interface BenchHost extends DevHost {
  argv: readonly string[];
  stdout(text: string): void;
  stderr(text: string): void;
  /** A monotonic clock, ms. */
  now(): number;
  /** This process's CPU time so far (user + system, all threads), ms. */
  cpuNow(): number;
  /** This process's id (Miniflare's workerd is its child). */
  pid: number;
  fetch: FetchLike;
  /** autocannon. */
  load: LoadGenerator;
  /** /proc. */
  proc: ProcFs;
  /** A file of the project (next to package.json), or null when it does not exist. */
  readProjectFile(name: string): string | null;
  /** Writes a file (relative to the project unless absolute); returns how to name it to the user. */
  writeProjectFile(name: string, text: string): string;
  /** `git <args>` in the project, its trimmed output; null when git fails. */
  git(args: readonly string[]): string | null;
  machine: { nproc: number; cpuModel: string; memoryBytes: number; os: string; node: string };
  /** Bundles a Worker entry point of the project and runs it in workerd (Miniflare, no bindings). */
  startWorker(entry: string, compatibilityDate: string | undefined): Promise<ScriptWorker>;
  /** Runs `stop` on SIGINT or SIGTERM, then exits. */
  onInterrupt(stop: () => Promise<void>): void;
}

const USAGE = `Usage: npm run bench -- [options]

  --connections N         concurrent connections of each measured phase (default 16)
  --requests N            requests of each measured callback phase (default 8000; /healthz and CHECK_URL: 2.5x)
  --latency-requests N    /healthz and CREATE_USER requests at one connection, one at a time (default 1000;
                          0 skips the latency phase)
  --b2b-check-url N       the back-to-back load: N CHECK_URL, then --b2b-create-user CREATE_USER, then N
  --b2b-create-user N     CHECK_URL again, at --connections (defaults 8000 and 3000; both 0 skip it)
  --sync-users N          users of the full sync (default 40000, OneAccess's largest edition; 0 skips it)
  --sync-orgs N           organizations created first in the full sync (default 40)
  --sync-concurrency N    requests in flight during the full sync (default 16)
  --cost-events N         events of each type in the cost phase, one at a time, on a second wrangler dev at
                          LOG_LEVEL log (default 200; 0 skips it)
  --cpu-iterations N      iterations of the protocol loop (default 5000)
  --state-on-disk         keep wrangler dev's local D1 and Durable Object state in the OS's temporary directory
                          (default: under /dev/shm, a RAM disk, when it exists and is writable: local SQLite
                          commits with fsync, and this VM's disk is not where production stores anything)
  --callback-log LEVEL    the receiver's LOG_LEVEL in the throughput phases: warn (default: refusals and
                          failures only, as the rest of the dev server logs at warn), log (one line per
                          callback, which wrangler dev pipes to its node process and parses) or error
  --no-webhooks           webhooks off (WEBHOOK_URL and WEBHOOK_SECRET empty), for comparison (default: each
                          wrangler dev sends every change to the bench's own webhook sink on 127.0.0.1,
                          which answers 204 and checks each signature)
  --quick                 a short version of every phase (a check that the bench works, not a measurement);
                          options given as well win
  --out FILE              results file (default bench-results.json)
  -h, --help              this text
`;

const OPTIONS = {
  connections: { type: "string" },
  requests: { type: "string" },
  "latency-requests": { type: "string" },
  "b2b-check-url": { type: "string" },
  "b2b-create-user": { type: "string" },
  "sync-users": { type: "string" },
  "sync-orgs": { type: "string" },
  "sync-concurrency": { type: "string" },
  "cost-events": { type: "string" },
  "cpu-iterations": { type: "string" },
  "state-on-disk": { type: "boolean" },
  "callback-log": { type: "string", default: "warn" },
  "no-webhooks": { type: "boolean" },
  quick: { type: "boolean" },
  out: { type: "string", default: "bench-results.json" },
  help: { type: "boolean", short: "h" },
} as const;

export interface BenchOptions {
  help: boolean;
  quick: boolean;
  connections: number;
  requests: number;
  warmupUsers: number;
  latencyRequests: number;
  b2bCheckUrl: number;
  b2bCreateUser: number;
  syncUsers: number;
  syncOrgs: number;
  syncConcurrency: number;
  costEvents: number;
  cpuIterations: number;
  stateOnDisk: boolean;
  callbackLog: "log" | "warn" | "error";
  /** Webhooks on (to the bench's sink); false: --no-webhooks. */
  webhooks: boolean;
  out: string;
}

const FULL = {
  requests: 8000,
  warmupUsers: 2000,
  latencyRequests: 1000,
  b2bCheckUrl: 8000,
  b2bCreateUser: 3000,
  syncUsers: 40_000,
  syncOrgs: 40,
  costEvents: 200,
  cpuIterations: 5000,
};

const QUICK: typeof FULL = {
  requests: 600,
  warmupUsers: 300,
  latencyRequests: 100,
  b2bCheckUrl: 800,
  b2bCreateUser: 300,
  syncUsers: 1000,
  syncOrgs: 5,
  costEvents: 20,
  cpuIterations: 500,
};

export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({ args: argv, options: OPTIONS });
  const base = values.quick ? QUICK : FULL;
  const callbackLog = values["callback-log"]!;
  if (callbackLog !== "log" && callbackLog !== "warn" && callbackLog !== "error") throw new UsageError("--callback-log must be log, warn or error");
  return {
    help: values.help ?? false,
    quick: values.quick ?? false,
    connections: integerOption("connections", values.connections, 16, 1),
    requests: integerOption("requests", values.requests, base.requests, 1),
    warmupUsers: base.warmupUsers,
    latencyRequests: integerOption("latency-requests", values["latency-requests"], base.latencyRequests, 0),
    b2bCheckUrl: integerOption("b2b-check-url", values["b2b-check-url"], base.b2bCheckUrl, 0),
    b2bCreateUser: integerOption("b2b-create-user", values["b2b-create-user"], base.b2bCreateUser, 0),
    syncUsers: integerOption("sync-users", values["sync-users"], base.syncUsers, 0),
    syncOrgs: integerOption("sync-orgs", values["sync-orgs"], base.syncOrgs, 1),
    syncConcurrency: integerOption("sync-concurrency", values["sync-concurrency"], 16, 1),
    costEvents: integerOption("cost-events", values["cost-events"], base.costEvents, 0),
    cpuIterations: integerOption("cpu-iterations", values["cpu-iterations"], base.cpuIterations, 1),
    stateOnDisk: values["state-on-disk"] ?? false,
    callbackLog,
    webhooks: !(values["no-webhooks"] ?? false),
    out: values.out!,
  };
}

/** The version in node_modules/<name>/package.json, or null. */
function packageVersion(host: BenchHost, name: string): string | null {
  const text = host.readProjectFile(`node_modules/${name}/package.json`);
  try {
    return text === null ? null : ((JSON.parse(text) as { version?: string }).version ?? null);
  } catch {
    return null;
  }
}

export async function main(host: BenchHost): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(host.argv);
  } catch (e) {
    if (e instanceof UsageError) {
      host.stderr(`bench: ${e.message}\n(npm run bench -- --help)\n`);
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    host.stdout(USAGE);
    return 0;
  }
  const log = (line: string) => host.stdout(`${line}\n`);
  const wranglerToml = host.readProjectFile("wrangler.toml");
  const devVars = host.readProjectFile(".dev.vars.example");
  if (wranglerToml === null || devVars === null) {
    host.stderr("bench: wrangler.toml and .dev.vars.example are needed (run it from the project)\n");
    return 2;
  }
  const bench = benchProfile(wranglerToml, devVars);
  const { profile } = bench;
  const machine = {
    nproc: host.machine.nproc,
    cpuModel: cpuModelFrom(host.proc.readFile("/proc/cpuinfo")) ?? host.machine.cpuModel,
    memoryGiB: round(host.machine.memoryBytes / 2 ** 30, 1),
    os: host.machine.os,
    node: host.machine.node,
    wrangler: packageVersion(host, "wrangler"),
    workerd: packageVersion(host, "workerd"),
    autocannon: packageVersion(host, "autocannon"),
  };
  const nproc = machine.nproc;

  // --- 0. the pure protocol work ---------------------------------------------------------------------
  log(`bench: ${machine.cpuModel}, ${nproc} CPUs, Node ${machine.node}, wrangler ${machine.wrangler}${opts.quick ? "   (--quick: a check that the bench works, not a measurement)" : ""}`);
  log(`bench: profile ${profile.signature} + ${profile.encryption}${profile.encryption === "aes-gcm" ? ` (${profile.layout})` : ""}, ${opts.connections} connections`);
  const protocolIn = await protocolInput(bench);
  const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(wranglerToml)?.[1];
  const worker = await host.startWorker("bench/protocol-worker.ts", compatibilityDate);
  let inWorkerd: ProtocolCpu | null;
  let pbkdf2: { hashes: number; cpuMsPerHash: number } | null;
  try {
    inWorkerd = await measureProtocolCpuInWorkerd(worker, () => workerdChildOf(host.proc, host.pid), protocolIn, opts.cpuIterations);
    pbkdf2 = await measurePbkdf2CpuInWorkerd(worker, () => workerdChildOf(host.proc, host.pid), opts.quick ? 5 : 40);
  } finally {
    await worker.dispose();
  }
  const protocolCpu = { workerd: inWorkerd, node: await measureProtocolCpu(protocolIn, opts.cpuIterations, () => host.cpuNow()) };
  for (const [where, m] of Object.entries(protocolCpu)) {
    if (!m) continue;
    log(
      `protocol      verify + open + seal of a ${m.eventBytes}-byte event in ${where === "workerd" ? "workerd" : "Node's Web Crypto"}: ` +
        `${round(m.cpuMsPerEvent, 4)} ms CPU (${round(m.wallMsPerEvent, 4)} ms wall), ${m.iterations} iterations`,
    );
  }

  if (pbkdf2) {
    log(
      `password      PASSWORD_POLICY=pbkdf2: one PBKDF2-SHA256 hash (the receiver's hashPassword) in workerd: ${round(pbkdf2.cpuMsPerHash, 2)} ms CPU, ` +
        `${pbkdf2.hashes} hashes (${pbkdf2.cpuMsPerHash < 10 ? "within" : "over"} the Free plan's 10 ms per request on its own)`,
    );
  }

  // --- the webhook sink -------------------------------------------------------------------------------
  // The Worker signs with WEBHOOK_SECRET of .dev.vars.example (wrangler dev's --env-file): the sink checks it.
  const webhookSecret = parseDotenv(devVars).WEBHOOK_SECRET?.trim() || null;
  const sink: WebhookSink | null = opts.webhooks ? await host.startWebhookSink({ secret: webhookSecret }) : null;
  const sinkAtStart = sink === null ? null : await sink.counts();
  if (sink === null) log("bench: webhooks off (--no-webhooks): WEBHOOK_URL and WEBHOOK_SECRET empty");
  else {
    log(
      `bench: webhooks on: each wrangler dev sends them to the bench's sink, ${sink.url}/<phase> (204 to every POST; ` +
        `${webhookSecret === null ? "no WEBHOOK_SECRET in .dev.vars.example, signatures not checked" : "signatures checked with WEBHOOK_SECRET of .dev.vars.example"})`,
    );
  }
  /** WEBHOOK_URL of the wrangler dev of `phase`: a path of its own, since each numbers its changes from 1. */
  const webhookUrl = (phase: string) => (sink === null ? null : `${sink.url}/${phase}`);
  const sinkCountsOf = (url: string) => async (): Promise<SinkPathCounts> => (await sink!.counts()).byPath[new URL(url).pathname] ?? NO_MESSAGES;
  const finish = async (code: number) => {
    await sink?.close();
    return code;
  };

  // --- wrangler dev, once per receiver log level -----------------------------------------------------
  const tag = runTag();
  const factory = new BodyFactory(profile);
  const callbackHeaders = { "content-type": "application/json; charset=UTF-8", authorization: `Bearer ${profile.bearer}` };
  let current: RunningDev | null = null;
  host.onInterrupt(async () => {
    await current?.stop();
    await sink?.close();
  });
  const session = (running: RunningDev): Session => ({
    bench,
    factory,
    tag,
    running,
    loader: new Loader({ generator: host.load, fetch: host.fetch, now: () => host.now(), group: running.group, connections: opts.connections, callbackHeaders }),
    generator: host.load,
    connections: opts.connections,
    fetch: host.fetch,
    now: () => host.now(),
    cpuNow: () => host.cpuNow(),
    log,
    webhooks: running.setup.webhookUrl === null ? null : { counts: sinkCountsOf(running.setup.webhookUrl) },
  });
  const clock = { now: () => host.now(), cpuNow: () => host.cpuNow() };
  /** Starts a wrangler dev, runs `phases` against it, stops it; null (and the server's last output printed) when a phase threw. */
  const against = async <T>(o: { wranglerLogLevel: "warn" | "log"; callbackLog: string; webhookUrl: string | null }, phases: (s: Session) => Promise<T>) => {
    const running = await startDevServer(host, host.proc, clock, { stateOnDisk: opts.stateOnDisk, ...o }, log);
    current = running;
    try {
      const value = await phases(session(running));
      return { value, setup: { ...running.setup, processes: running.group.known() }, hadHung: countLines(running.dev.output(), HUNG) };
    } catch (e) {
      host.stderr(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n${running.dev.output().slice(-4000)}\n`);
      return null;
    } finally {
      await running.stop();
      current = null;
    }
  };

  const first = await against({ wranglerLogLevel: "warn", callbackLog: opts.callbackLog, webhookUrl: webhookUrl("load") }, async (s) => {
    const targets = await warmUp(s, opts.warmupUsers);
    return {
      throughput: await throughput(s, opts.requests, targets, nproc),
      latency: opts.latencyRequests > 0 ? await latency(s, opts.latencyRequests) : null,
      backToBack: opts.b2bCheckUrl + opts.b2bCreateUser > 0 ? await backToBack(s, opts.b2bCheckUrl, opts.b2bCreateUser) : null,
      fullSync: opts.syncUsers > 0 ? await fullSync(s, { users: opts.syncUsers, orgs: opts.syncOrgs, concurrency: opts.syncConcurrency }, nproc) : null,
    };
  });
  if (first === null) return finish(1);
  const { throughput: measured, latency: l, backToBack: b, fullSync: f } = first.value;
  log(`bench: ${first.hadHung} lines of the first wrangler dev's output, over all its phases, say a request "had hung"`);

  const cost =
    opts.costEvents > 0 ? await against({ wranglerLogLevel: "log", callbackLog: "log", webhookUrl: webhookUrl("cost") }, (s) => costPhase(s, opts.costEvents)) : null;
  if (opts.costEvents > 0 && cost === null) return finish(1);
  const webhooks = sink === null ? null : webhookTotals(await sink.counts(), sinkAtStart!, { load: webhookUrl("load")!, cost: webhookUrl("cost")! });

  // --- report ----------------------------------------------------------------------------------------
  const ratio = (rps: number) => round(rps / measured.healthz.rps, 3)!;
  const ratios = {
    checkUrlToHealthz: ratio(measured.checkUrl.rps),
    createUserToHealthz: ratio(measured.createUser.rps),
    updateUserToHealthz: ratio(measured.updateUser.rps),
  };
  const goals = {
    checkUrlAtLeast80PercentOfHealthz: ratios.checkUrlToHealthz >= 0.8,
    fullPathAtLeast40PercentOfHealthz: Math.min(ratios.createUserToHealthz, ratios.updateUserToHealthz) >= 0.4,
    fullPathP99Under50ms: Math.max(measured.createUser.latencyMs.p99, measured.updateUser.latencyMs.p99) < 50,
    // At one connection: what the full path adds to a request, on average.
    createUserMeanAtMost2msAboveHealthz: l === null ? null : l.createUserMinusHealthzMeanMs <= LATENCY_GOAL_MS,
    // The back-to-back load: no request cancelled by the runtime as hung.
    noRequestHadHung: b === null ? null : b.hadHung === 0,
    // Only for OneAccess's largest edition (40 000 users or more): a smaller sync proves nothing about it.
    fullSyncUnder3Minutes: f !== null && f.users >= 40_000 ? f.seconds < 180 && f.check.everyUserExactlyOnce : null,
    // In the runtime the receiver runs in; Node's figure (its Web Crypto hands each call to a thread pool) is
    // kept alongside, and used only where /proc is missing.
    protocolUnder0_2msCpu: (protocolCpu.workerd ?? protocolCpu.node).cpuMsPerEvent < 0.2,
  };
  log("");
  log(`ratios        CHECK_URL / healthz ${ratios.checkUrlToHealthz}   CREATE_USER / healthz ${ratios.createUserToHealthz}   UPDATE_USER / healthz ${ratios.updateUserToHealthz}`);
  log(`goals         ${Object.entries(goals).map(([k, v]) => goalLine(v, k)).join("\n              ")}`);
  log(labelled("webhooks", webhooksLine(webhooks)));

  const argv = host.argv.join(" ");
  const results = {
    command: `npm run bench${argv ? ` -- ${argv}` : ""}`,
    date: new Date().toISOString(),
    commit: host.git(["rev-parse", "HEAD"]),
    uncommittedChanges: (host.git(["status", "--porcelain", "--", "src", "bench", "sim", "scripts", "wrangler.toml", "migrations"]) ?? "") !== "",
    quick: opts.quick,
    machine,
    settings: {
      connections: opts.connections,
      profile: { signature: profile.signature, encryption: profile.encryption, layout: profile.layout },
      eventBytes: protocolIn.eventBytes,
      requestBytes: protocolIn.bodyBytes,
      webhooks: { on: opts.webhooks, sink: sink?.url ?? null, signaturesChecked: sink !== null && webhookSecret !== null },
    },
    // Every process seen in each wrangler dev's group, a workerd started by a reload included.
    setup: { throughput: first.setup, cost: cost?.setup ?? null },
    phases: measured,
    ratios,
    latency: l,
    backToBack: b,
    fullSync: f,
    // webhooks.dispatcher.rowsWrittenPerDeliveredChange: add it to a change's rows' storeRowsWritten (the ledger's).
    cost: cost === null ? null : { eventsPerType: opts.costEvents, rows: cost.value.rows, webhooks: cost.value.webhooks, fullSync: cost.value.fullSync },
    webhooks,
    hadHungInWholeRun: { throughput: first.hadHung, cost: cost?.hadHung ?? null },
    protocolCpu,
    pbkdf2CpuMsPerHash: pbkdf2 === null ? null : round(pbkdf2.cpuMsPerHash, 3),
    goals,
  };
  const written = host.writeProjectFile(opts.out, `${JSON.stringify(results, null, 2)}\n`);
  log(`bench: results written to ${written}`);
  return finish(0);
}

export interface WebhookTotals {
  /** Everything the sink got over the run. */
  messages: number;
  distinctIds: number;
  notVerified: number;
  /** Requests that were not POSTs (none expected). */
  otherRequests: number;
  signaturesChecked: boolean;
  /** What each wrangler dev sent: the load phases' and the cost phase's. */
  byPhase: Record<string, Pick<SinkPathCounts, "messages" | "distinctIds" | "notVerified">>;
  /** The sink's CPU time over the run (a process of its own, in neither the bench's figures nor wrangler dev's). */
  sinkCpuMs: number;
}

/** What the sink got over the run, by phase. */
export function webhookTotals(end: SinkCounts, start: SinkCounts, urls: Record<string, string>): WebhookTotals {
  const byPhase: WebhookTotals["byPhase"] = {};
  for (const [phase, url] of Object.entries(urls)) {
    const { messages, distinctIds, notVerified } = end.byPath[new URL(url).pathname] ?? NO_MESSAGES;
    byPhase[phase] = { messages, distinctIds, notVerified };
  }
  return {
    messages: end.messages,
    distinctIds: end.distinctIds,
    notVerified: end.notVerified,
    otherRequests: end.otherRequests,
    signaturesChecked: end.verifying,
    byPhase,
    sinkCpuMs: round(end.cpuMs - start.cpuMs, 1)!,
  };
}

/** The run's last word on webhooks: what the sink got, and how many failed verification (goal: none). */
export function webhooksLine(w: WebhookTotals | null): string {
  if (w === null) return "off (--no-webhooks)";
  const phases = Object.entries(w.byPhase)
    .map(([phase, c]) => `${phase} ${c.distinctIds}`)
    .join(", ");
  const verification = w.signaturesChecked ? `${w.notVerified} failed signature verification (should be 0)` : "signatures not checked (no WEBHOOK_SECRET)";
  return (
    `the sink got ${w.messages} messages, ${w.distinctIds} distinct webhook-ids (${phases}); ${verification}` +
    `${w.otherRequests > 0 ? `; ${w.otherRequests} requests that were not POSTs` : ""}; the sink's own CPU ${w.sinkCpuMs.toFixed(0)} ms`
  );
}
