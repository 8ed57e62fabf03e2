#!/usr/bin/env node
// `npm run bench` (issue #8): how much the full callback costs next to the cheapest request the same runtime
// serves. One run: the pure protocol work in a loop, then `wrangler dev` (fresh migrated state in a temporary
// directory, on a RAM disk unless --state-on-disk, a free port, the development secrets of .dev.vars.example,
// logging at warn level, no devtools inspector proxy), a warm-up,
// and autocannon against 1. GET /healthz, 2. CHECK_URL, 3. CREATE_USER and UPDATE_USER, then 4. a full sync
// of 40 000 users pushed with bounded concurrency and checked user by user through the read API.
// Every callback is a fresh valid event: its own nonce and timestamp, sealed and signed with the receiver's
// own protocol code (bench/core.ts, bundled here with esbuild). Writes bench-results.json (git-ignored).
import { execFileSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { startWranglerDev } from "../test/browser/wrangler-dev.mjs";
import { importBundled, root } from "./lib/bundle.mjs";

/** Users signed and sealed at a time during the full sync (each chunk is pushed well inside the window). */
const SYNC_CHUNK = 5000;
const USAGE = `Usage: npm run bench -- [options]

  --connections N        concurrent connections of each measured phase (default 16)
  --requests N           requests of each measured callback phase (default 8000; /healthz and CHECK_URL: 2.5x)
  --sync-users N         users of the full sync (default 40000, OneAccess's largest edition; 0 skips it)
  --sync-orgs N          organizations created first in the full sync (default 40)
  --sync-concurrency N   requests in flight during the full sync (default 16)
  --cpu-iterations N     iterations of the protocol loop (default 5000)
  --state-on-disk        keep wrangler dev's local D1 and Durable Object state in the OS's temporary directory
                         (default: under /dev/shm, a RAM disk, when it exists and is writable: local SQLite
                         commits with fsync, and this VM's disk is not where production stores anything)
  --callback-log LEVEL   the receiver's LOG_LEVEL: warn (default: refusals and failures only, as the rest of
                         the dev server logs at warn), or log (one line per callback, which wrangler dev
                         pipes to its node process and parses: about 0.4 ms of CPU per callback here)
  --quick                small numbers everywhere (a smoke run, not a measurement)
  --out FILE             results file (default bench-results.json)
`;

// --- options ---------------------------------------------------------------------------------------

function parseArgs(argv) {
  const o = {
    connections: 16,
    requests: 8000,
    syncUsers: 40_000,
    syncOrgs: 40,
    syncConcurrency: 16,
    cpuIterations: 5000,
    warmupUsers: 2000,
    stateOnDisk: false,
    callbackLog: "warn",
    out: "bench-results.json",
  };
  const names = {
    "--connections": "connections",
    "--requests": "requests",
    "--sync-users": "syncUsers",
    "--sync-orgs": "syncOrgs",
    "--sync-concurrency": "syncConcurrency",
    "--cpu-iterations": "cpuIterations",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === "--quick") {
      Object.assign(o, { requests: 600, syncUsers: 1000, syncOrgs: 5, cpuIterations: 500, warmupUsers: 300 });
    } else if (a === "--state-on-disk") {
      o.stateOnDisk = true;
    } else if (a === "--out") {
      o.out = argv[++i];
    } else if (a === "--callback-log") {
      o.callbackLog = argv[++i];
      if (!["log", "warn", "error"].includes(o.callbackLog)) throw new Error("--callback-log needs log, warn or error");
    } else if (names[a]) {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < (a === "--sync-users" ? 0 : 1)) throw new Error(`${a} needs a positive integer`);
      o[names[a]] = v;
    } else {
      process.stderr.write(`unknown option ${a}\n${USAGE}`);
      process.exit(2);
    }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (text) => process.stdout.write(`${text}\n`);

// --- the Web-API half, bundled ---------------------------------------------------------------------

const core = await importBundled("bench/core.ts", "oneaccess-bench");

const bench = core.benchProfile(readFileSync(path.join(root, "wrangler.toml"), "utf8"), readFileSync(path.join(root, ".dev.vars.example"), "utf8"));
const { profile } = bench;
const factory = new core.BodyFactory(profile);
const tag = core.runTag();

// --- machine ---------------------------------------------------------------------------------------

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? "unknown";
}

function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
}

function git(...args) {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

const machine = {
  nproc: os.availableParallelism?.() ?? os.cpus().length,
  cpuModel: cpuModel(),
  memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  node: process.version,
  wrangler: packageVersion("wrangler"),
  workerd: packageVersion("workerd"),
  autocannon: packageVersion("autocannon"),
};

// --- helpers ---------------------------------------------------------------------------------------

const round = (n, digits = 2) => (n === null || n === undefined || Number.isNaN(n) ? null : Math.round(n * 10 ** digits) / 10 ** digits);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// --- CPU time of other processes (Linux /proc) ----------------------------------------------------------

const CLOCK_TICKS_PER_SECOND = 100;

/** Every process: its command name, parent, process group and CPU time in ms (user + system). */
function processes() {
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp … utime stime: the fields after the parenthesised command name.
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.push({ pid: Number(entry), comm, ppid: Number(f[1]), pgrp: Number(f[2]), cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS_PER_SECOND });
  }
  return out;
}

/**
 * What each of wrangler dev's processes is, told apart by command name and command line (PIDs change from
 * run to run, these do not):
 *   wrangler       wrangler's node process (the one startWranglerDev spawned; it leads the process group)
 *   workerdProxy   the workerd listening on the dev port (`--socket-addr=entry=127.0.0.1:<port>`): wrangler's
 *                  ProxyWorker, which holds requests during reloads and forwards each one to the Worker
 *   workerdWorker  the workerd on an ephemeral port (`entry=…:0`, with `--inspector-addr`): this project's
 *                  Worker, its D1 and its Durable Object
 *   esbuild        wrangler's bundler services (idle once bundled)
 *   other          anything else in the group
 */
const ROLE_LABELS = { wrangler: "wrangler", workerdProxy: "workerd proxy", workerdWorker: "workerd worker", esbuild: "esbuild", other: "other" };
const roles = new Map(); // pid -> { role, pid, command }

function roleOf(p, dev) {
  let known = roles.get(p.pid);
  if (!known) {
    let argv = [];
    try {
      argv = readFileSync(`/proc/${p.pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    } catch {
      // exited meanwhile
    }
    let role = "other";
    if (p.pid === dev.pid) role = "wrangler";
    else if (p.comm === "workerd") {
      const entry = `:${dev.port}`;
      role = argv.some((a) => a.startsWith("--socket-addr=entry=") && a.endsWith(entry)) ? "workerdProxy" : "workerdWorker";
    } else if (p.comm === "esbuild") role = "esbuild";
    known = { role, pid: p.pid, command: argv.join(" ") };
    roles.set(p.pid, known);
  }
  return known.role;
}

/**
 * CPU time used so far: by each process of wrangler dev's process group (wrangler itself and its workerd
 * and esbuild children; null off Linux), and by the bench's own process (autocannon, and the signing it
 * does between full-sync chunks), with the time it was read.
 */
function cpuSnapshot(dev) {
  let server = null;
  try {
    server = new Map(processes().filter((p) => p.pgrp === dev.pid).map((p) => [p.pid, p]));
  } catch {
    // no /proc
  }
  return { at: performance.now(), bench: cpuNow(), server };
}

/**
 * CPU time between two snapshots, in ms and per request, by process role and for the bench itself:
 * divided by the requests of a phase, what each request cost, which contention from other processes skews
 * far less than requests per second. `serverMs` is wrangler dev's whole process group (a process that
 * started in between counts from zero). `coresBusy`: all of it together, wrangler dev and the bench, over
 * `busySeconds` of wall time (out of `machine.nproc` cores): the time to the last response of a phase, as
 * the window itself runs on for up to a second of idling after it (autocannon's once-a-second tick).
 */
function cpuBetween(a, b, requests, dev, busySeconds = (b.at - a.at) / 1000) {
  const windowMs = b.at - a.at;
  const used = new Map(); // role -> ms
  let serverMs = null;
  if (a.server && b.server) {
    serverMs = 0;
    for (const [pid, p] of b.server) {
      const role = roleOf(p, dev);
      const delta = p.cpuMs - (a.server.get(pid)?.cpuMs ?? 0);
      used.set(role, (used.get(role) ?? 0) + delta);
      serverMs += delta;
    }
  }
  const ms = {}; // in ROLE_LABELS order, only roles with a process, then the bench
  for (const role of Object.keys(ROLE_LABELS)) if (used.has(role)) ms[role] = used.get(role);
  ms.bench = b.bench - a.bench;
  const perRequest = (v) => round(v / requests, 3);
  return {
    serverMs: round(serverMs, 1),
    serverMsPerRequest: serverMs === null ? null : perRequest(serverMs),
    windowSeconds: round(windowMs / 1000, 3),
    coresBusy: round(((serverMs ?? 0) + ms.bench) / (busySeconds * 1000), 2),
    ms: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, round(v, 1)])),
    msPerRequest: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, perRequest(v)])),
  };
}

/** The extra line under a phase's summary: CPU per request by process, and how busy the machine was. */
function cpuLine(cpu, extra = "") {
  const parts = [];
  for (const [role, label] of Object.entries(ROLE_LABELS)) {
    const v = cpu.msPerRequest[role];
    if (v === undefined || ((role === "esbuild" || role === "other") && v < 0.005)) continue;
    parts.push(`${label} ${v.toFixed(2)}`);
  }
  parts.push(`bench ${cpu.msPerRequest.bench.toFixed(2)}${extra}`);
  return `${"".padEnd(14)}CPU ms/request: ${parts.join(", ")}   ${cpu.coresBusy} of ${machine.nproc} cores busy`;
}

/**
 * The protocol loop inside workerd (bench/protocol-worker.ts run by Miniflare: no bindings, no storage):
 * the CPU time workerd used while one request ran `iterations` events, per event. Null off Linux.
 */
async function protocolCpuInWorkerd(input, iterations) {
  const bundled = await build({
    entryPoints: [path.join(root, "bench", "protocol-worker.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "error",
  });
  const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(path.join(root, "wrangler.toml"), "utf8"))?.[1];
  const mf = new Miniflare({ modules: true, script: bundled.outputFiles[0].text, compatibilityDate, cf: false });
  try {
    await mf.ready;
    const run = async (n) => {
      const res = await mf.dispatchFetch("http://bench.local/", { method: "POST", body: JSON.stringify({ input, iterations: n }) });
      const { done } = await res.json();
      if (done !== n) throw new Error(`protocol worker did ${done} of ${n}`);
    };
    const workerd = () => {
      try {
        return processes().find((p) => p.ppid === process.pid && p.comm === "workerd") ?? null;
      } catch {
        return null;
      }
    };
    await run(Math.min(2000, iterations)); // warm-up (JIT)
    const before = workerd();
    const wall0 = performance.now();
    await run(iterations);
    const wall = performance.now() - wall0;
    const after = workerd();
    if (!before || !after || before.pid !== after.pid) return null;
    return { iterations, eventBytes: input.eventBytes, bodyBytes: input.bodyBytes, cpuMsPerEvent: (after.cpuMs - before.cpuMs) / iterations, wallMsPerEvent: wall / iterations };
  } finally {
    await mf.dispose();
  }
}

const callbackHeaders = {
  "content-type": "application/json; charset=UTF-8",
  authorization: `Bearer ${profile.bearer}`,
};

/**
 * One autocannon run. `bodies` (pre-built: setupRequest is synchronous) are taken one per request, so no
 * body is ever sent twice. Replies are tallied by HTTP status and, for callbacks, by `code message`.
 */
async function load(url, { method = "GET", bodies = null, amount, keep = null }) {
  let next = 0;
  let lastResponse = 0;
  const replies = new Map();
  const kept = [];
  const request = {
    method,
    path: new URL(url).pathname,
    ...(bodies
      ? {
          setupRequest: (req) => {
            if (next >= bodies.length) throw new Error("bench: ran out of pre-built bodies");
            return { ...req, body: bodies[next++] };
          },
        }
      : {}),
    onResponse: (status, body) => {
      lastResponse = performance.now();
      let key = String(status);
      if (bodies) {
        try {
          const b = JSON.parse(body);
          key = `${b.code} ${b.message}`;
        } catch {
          key = `${status} (not a reply)`;
        }
        if (keep) kept.push(body);
      }
      replies.set(key, (replies.get(key) ?? 0) + 1);
    },
  };
  const cpu0 = cpuSnapshot(dev);
  const started = performance.now();
  const result = await autocannon({
    url,
    connections: opts.connections,
    amount,
    method,
    headers: bodies ? callbackHeaders : {},
    requests: [request],
  });
  const total = result["2xx"] + result.non2xx;
  // autocannon notices the end of an `amount` run on its once-a-second tick, so its own duration runs up to a
  // second long: the time to the last response is measured here instead.
  const seconds = (lastResponse - started) / 1000;
  const cpu = cpuBetween(cpu0, cpuSnapshot(dev), total, dev, seconds);
  return {
    requests: total,
    serverCpuMsPerRequest: cpu.serverMsPerRequest,
    cpu,
    seconds: round(seconds, 3),
    rps: round(total / seconds, 1),
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    replies: Object.fromEntries([...replies].sort((a, b) => b[1] - a[1])),
    kept,
  };
}

function summary(name, r) {
  const bad = r.non2xx + r.errors + r.timeouts;
  const cpu = r.serverCpuMsPerRequest === null ? "" : `   ${r.serverCpuMsPerRequest.toFixed(2)} ms server CPU/request`;
  return (
    `${name.padEnd(13)} ${String(r.rps).padStart(8)} req/s   p50 ${String(r.latencyMs.p50).padStart(4)} ms   p99 ${String(r.latencyMs.p99).padStart(4)} ms${cpu}   ${r.requests} requests${bad ? `, ${bad} NOT OK: ${JSON.stringify(r.replies)}` : ""}\n` +
    cpuLine(r.cpu)
  );
}

const strip = ({ kept, ...rest }) => rest;

async function post(url, body) {
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    let text;
    let status = 0;
    try {
      const res = await fetch(url, { method: "POST", headers: callbackHeaders, body });
      status = res.status;
      text = await res.text();
    } catch (e) {
      text = null;
      if (attempt >= 5) throw e;
    }
    // OneAccess resends the same bytes after a 500 or a network error; so does the bench.
    if (text !== null && status !== 500) return { status, text, attempts: attempt, ms: performance.now() - started };
    if (attempt >= 5) return { status, text: text ?? "", attempts: attempt, ms: performance.now() - started };
    await new Promise((r) => setTimeout(r, 100 * attempt));
  }
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
async function pool(count, concurrency, task) {
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

// --- 0. the pure protocol work ---------------------------------------------------------------------

log(`bench: ${machine.cpuModel}, ${machine.nproc} CPUs, Node ${machine.node}, wrangler ${machine.wrangler}`);
log(`bench: profile ${profile.signature} + ${profile.encryption}${profile.encryption === "aes-gcm" ? ` (${profile.layout})` : ""}, ${opts.connections} connections`);
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const protocolIn = await core.protocolInput(bench);
const protocolCpu = {
  workerd: await protocolCpuInWorkerd(protocolIn, opts.cpuIterations),
  node: await core.measureProtocolCpu(protocolIn, opts.cpuIterations, cpuNow),
};
for (const [where, m] of Object.entries(protocolCpu)) {
  if (!m) continue;
  log(
    `protocol      verify + open + seal of a ${m.eventBytes}-byte event in ${where === "workerd" ? "workerd" : "Node's Web Crypto"}: ` +
      `${round(m.cpuMsPerEvent, 4)} ms CPU (${round(m.wallMsPerEvent, 4)} ms wall), ${m.iterations} iterations`,
  );
}

// --- wrangler dev ----------------------------------------------------------------------------------

/** "tmpfs" when `dir` is in memory (tmpfs or ramfs), "disk" otherwise, "unknown" when statfs fails. */
function storageKind(dir) {
  try {
    const { type } = statfsSync(dir);
    return type === 0x01021994 || type === 0x858458f6 ? "tmpfs" : "disk";
  } catch {
    return "unknown";
  }
}

/**
 * Where wrangler dev's fresh state (local D1 and the Durable Object's SQLite) goes. Under wrangler dev both
 * commit every write to disk with fsync, which on this kind of VM costs more than the rest of a write
 * (CREATE_USER about doubled with the state on /dev/shm); production D1 and Durable Objects get their
 * durability from replicated storage, not from the disk of the machine running them. So by default the
 * state goes to /dev/shm (a RAM disk) when it exists and is writable; --state-on-disk, or no usable
 * /dev/shm, keeps the OS's temporary directory (what the browser test uses).
 */
function stateParent(onDisk) {
  if (!onDisk) {
    try {
      accessSync("/dev/shm", constants.W_OK);
      if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
    } catch {
      // missing or read-only: fall back
    }
  }
  return os.tmpdir();
}

const stateDir = stateParent(opts.stateOnDisk);
const setup = {
  // Where the state was asked to go (`requested`), and where it went: `kind` of the filesystem `parent` is on.
  state: { requested: opts.stateOnDisk ? "disk" : "tmpfs", kind: storageKind(stateDir), parent: stateDir },
  // wrangler dev's devtools inspector proxy (see below): off for the bench.
  inspectorProxy: { enabled: false, disabledBy: "VSCODE_INSPECTOR_OPTIONS" },
  logLevel: "warn",
  // The receiver's own LOG_LEVEL (--callback-log).
  callbackLogLevel: opts.callbackLog,
  localExplorer: false,
  processes: [],
};
if (!opts.stateOnDisk && setup.state.kind !== "tmpfs") log(`bench: /dev/shm is missing or not writable: state on ${setup.state.kind} under ${stateDir}`);
if (opts.stateOnDisk && setup.state.kind === "tmpfs") log(`bench: --state-on-disk, but ${stateDir} is itself a tmpfs`);

log(
  `bench: starting wrangler dev (fresh state on ${setup.state.kind} under ${stateDir}, migrations applied, ` +
    `--log-level warn, LOG_LEVEL ${opts.callbackLog}, devtools inspector proxy off)`,
);
// wrangler's debug log goes to the bench's own temporary directory, removed afterwards, instead of
// ~/.config/.wrangler/logs; the local data explorer (which wraps every Durable Object class in dev) is off.
const logDir = mkdtempSync(path.join(os.tmpdir(), "oneaccess-bench-logs-"));
const dev = await startWranglerDev({
  // The receiver logs at the same level as the dev server: under wrangler dev each line it writes is piped
  // to wrangler's node process and parsed there, even when --log-level then hides it.
  args: ["--log-level", "warn", "--var", `LOG_LEVEL:${opts.callbackLog}`],
  stateDir,
  env: {
    WRANGLER_LOG_PATH: logDir,
    X_LOCAL_EXPLORER: "false",
    // No devtools inspector proxy. `wrangler dev` normally attaches one to the Worker (InspectorProxyWorker,
    // for Chrome DevTools / VS Code): it sends `Network.enable`, so every request and every D1 subrequest
    // becomes inspector events that workerd serialises and relays to wrangler's node process and its debug
    // log, CPU the bench would otherwise charge to the receiver. It is local debugging only (nothing like it
    // runs in production), and the bench debugs nothing (`--log-level warn`, no local explorer). wrangler
    // 4.86's CLI has no flag for it: the one switch it honours is this variable, which it takes to mean "a
    // VS Code JavaScript Debug Terminal attaches its own debugger" and then skips the proxy (`get
    // inspectorEnabled()` in wrangler-dist/cli.js). Only the bench sets it; the browser test keeps wrangler's
    // defaults.
    VSCODE_INSPECTOR_OPTIONS: "{}",
  },
});
try {
  for (const p of processes()) if (p.pgrp === dev.pid) roleOf(p, dev);
} catch {
  // no /proc: no per-process figures
}
setup.processes = [...roles.values()].sort((a, b) => a.pid - b.pid);
log(`bench: wrangler dev processes: ${setup.processes.map((p) => `${ROLE_LABELS[p.role]} ${p.pid}`).join(", ")}`);
const stopDev = async () => {
  await dev.stop().catch(() => {});
  rmSync(logDir, { recursive: true, force: true });
};
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    void stopDev().then(() => process.exit(130));
  });
}

const CALLBACK = `${dev.url}/callback`;
const HEALTHZ = `${dev.url}/healthz`;
const results = {};
let failed = false;

try {
  // --- warm-up: every route once, and the users UPDATE_USER will change ------------------------------
  log("bench: warming up");
  await load(HEALTHZ, { amount: 2000 });
  await load(CALLBACK, { method: "POST", amount: 1000, bodies: await factory.buildMany(1000 + 64, () => ["CHECK_URL", core.checkUrlMessage()]) });
  const warmBodies = await factory.buildMany(opts.warmupUsers + 4 * opts.connections, (i) => ["CREATE_USER", core.createUserMessage(tag, "warm", i)]);
  const warm = await load(CALLBACK, { method: "POST", amount: opts.warmupUsers, bodies: warmBodies, keep: true });
  const targets = [];
  for (const text of warm.kept) {
    const opened = await core.openReply(profile, text);
    const id = core.replyId(opened.plaintext);
    if (opened.code === "200" && id) targets.push(id);
  }
  if (targets.length === 0) throw new Error(`warm-up created no user: ${JSON.stringify(warm.replies)}`);

  // --- 1. the floor ---------------------------------------------------------------------------------
  log("bench: measuring");
  const floorAmount = Math.round(opts.requests * 2.5);
  results.healthz = await load(HEALTHZ, { amount: floorAmount });
  log(summary("GET /healthz", results.healthz));

  // --- 2. CHECK_URL: verify, open, seal ---------------------------------------------------------------
  const checkBodies = await factory.buildMany(floorAmount + 4 * opts.connections, () => ["CHECK_URL", core.checkUrlMessage()]);
  results.checkUrl = await load(CALLBACK, { method: "POST", amount: floorAmount, bodies: checkBodies });
  log(summary("CHECK_URL", results.checkUrl));

  // --- 3. the full path -----------------------------------------------------------------------------
  const createBodies = await factory.buildMany(opts.requests + 4 * opts.connections, (i) => ["CREATE_USER", core.createUserMessage(tag, "new", i)]);
  results.createUser = await load(CALLBACK, { method: "POST", amount: opts.requests, bodies: createBodies });
  log(summary("CREATE_USER", results.createUser));

  // Round-robin over the warm-up users (an update carries the username too, read back through the read
  // API); each update changes the user and is newer than the one before.
  const warmNames = await userNames(targets);
  const updateBodies = await factory.buildMany(opts.requests + 4 * opts.connections, (i) => {
    const id = targets[i % targets.length];
    return ["UPDATE_USER", core.updateUserMessage(id, warmNames.get(id), Math.floor(i / targets.length) + 1)];
  });
  results.updateUser = await load(CALLBACK, { method: "POST", amount: opts.requests, bodies: updateBodies });
  log(summary("UPDATE_USER", results.updateUser));

  // --- 4. a full sync ---------------------------------------------------------------------------------
  if (opts.syncUsers > 0) {
    log(`bench: full sync of ${opts.syncUsers} users under ${opts.syncOrgs} organizations, ${opts.syncConcurrency} in flight`);
    results.fullSync = await fullSync();
    const s = results.fullSync;
    log(
      `full sync     ${s.users} users in ${s.seconds} s of pushing (${s.wallSeconds} s with the bench's signing), ${s.rps} req/s, ` +
        `p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms, ${s.retries} resent; afterwards ${s.check.present} present, ` +
        `${s.check.missing} missing, ${s.check.duplicates} duplicated`,
    );
    log(cpuLine(s.cpu, ` (${s.cpu.msPerRequest.benchSigning.toFixed(2)} of it signing and sealing)`));
  }
} catch (e) {
  failed = true;
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n${dev.output().slice(-4000)}\n`);
} finally {
  await stopDev();
}

/** id → username of the warm-up users, read back through the read API. */
async function userNames(ids) {
  const wanted = new Set(ids);
  const names = new Map();
  for await (const user of listUsers()) if (wanted.has(user.id)) names.set(user.id, user.username);
  if (names.size !== wanted.size) throw new Error(`read API returned ${names.size} of ${wanted.size} warm-up users`);
  return names;
}

function readDevVar(name) {
  const m = new RegExp(`^\\s*${name}\\s*=\\s*"?([^"\\n]*)"?`, "m").exec(readFileSync(path.join(root, ".dev.vars.example"), "utf8"));
  if (!m) throw new Error(`${name} missing from .dev.vars.example`);
  return m[1];
}

/** Every user of the directory, through GET /api/v1/users (200 a page, keyset cursor). */
async function* listUsers() {
  const token = readDevVar("DIRECTORY_API_TOKEN");
  let cursor = null;
  do {
    const url = `${dev.url}/api/v1/users?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`read API answered ${res.status}: ${await res.text()}`);
    const page = await res.json();
    yield* page.data;
    cursor = page.next_cursor;
  } while (cursor);
}

/**
 * The full sync: the organizations, then the users pushed by autocannon with `syncConcurrency` in flight, in
 * chunks whose bodies are built (signed and sealed, a fresh timestamp each) just before the chunk is pushed,
 * so every body is well inside the timestamp window however slow the push. A user whose create did not get
 * a 200 (or whose body autocannon built but did not send at the end of a chunk) is sent again with the same
 * bytes, as OneAccess retries. `seconds` is the time spent pushing, retries included; `wallSeconds` adds the
 * bench's own signing and sealing between chunks (OneAccess does that on its side).
 */
async function fullSync() {
  const orgIds = [];
  const latencies = [];
  let retries = 0;
  let pushMs = 0;
  const failures = new Map();
  const replies = new Array(opts.syncUsers).fill(null); // reply text of user i's create
  let signingMs = 0; // the bench's CPU spent signing and sealing bodies (OneAccess's work, not load generation)
  const signed = async (make) => {
    const c0 = cpuNow();
    const made = await make();
    signingMs += cpuNow() - c0;
    return made;
  };
  const cpu0 = cpuSnapshot(dev);
  const wall0 = performance.now();
  const fail = (key) => failures.set(key, (failures.get(key) ?? 0) + 1);

  // Organizations first (a user's organizationId is the id the receiver answered).
  let t0 = performance.now();
  for (let i = 0; i < opts.syncOrgs; i++) {
    const r = await post(CALLBACK, await signed(() => factory.build("CREATE_ORGANIZATION", core.createOrganizationMessage(tag, i))));
    const opened = await core.openReply(profile, r.text);
    const id = core.replyId(opened.plaintext);
    if (!id) throw new Error(`CREATE_ORGANIZATION answered ${r.status} ${r.text.slice(0, 200)}`);
    orgIds.push(id);
  }
  pushMs += performance.now() - t0;

  for (let start = 0; start < opts.syncUsers; start += SYNC_CHUNK) {
    const count = Math.min(SYNC_CHUNK, opts.syncUsers - start);
    const bodies = await signed(() =>
      factory.buildMany(count, (k) => ["CREATE_USER", core.createUserMessage(tag, "sync", start + k, orgIds[(start + k) % orgIds.length])]),
    );
    t0 = performance.now();
    let next = 0;
    const run = autocannon({
      url: CALLBACK,
      connections: Math.min(opts.syncConcurrency, count),
      amount: count,
      method: "POST",
      headers: callbackHeaders,
      requests: [
        {
          // Each connection's context names the body its request in flight carries.
          setupRequest: (req, context) => {
            if (next >= count) return { ...req, body: bodies[(context.index = count - 1)] }; // never answered: resent below
            context.index = next++;
            return { ...req, body: bodies[context.index] };
          },
          onResponse: (status, body, context) => {
            if (status === 200 && replies[start + context.index] === null) replies[start + context.index] = body;
          },
        },
      ],
    });
    run.on("response", (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
    await run;
    // Resend what got no 200 (a 500, or a body built but not sent when the chunk's count was reached).
    const missingNow = [];
    for (let k = 0; k < count; k++) if (replies[start + k] === null) missingNow.push(k);
    await pool(missingNow.length, opts.syncConcurrency, async (j) => {
      const k = missingNow[j];
      const r = await post(CALLBACK, bodies[k]);
      retries += r.attempts;
      latencies.push(r.ms);
      if (r.status === 200) replies[start + k] = r.text;
    });
    pushMs += performance.now() - t0;
  }
  const seconds = pushMs / 1000;
  const wallSeconds = (performance.now() - wall0) / 1000;
  const requests = opts.syncUsers + opts.syncOrgs;
  const cpu = cpuBetween(cpu0, cpuSnapshot(dev), requests, dev);
  cpu.ms.benchSigning = round(signingMs, 1);
  cpu.msPerRequest.benchSigning = round(signingMs / requests, 3);

  const ids = new Map(); // username -> id from the reply
  for (let i = 0; i < opts.syncUsers; i++) {
    if (replies[i] === null) {
      fail("no 200 after retries");
      continue;
    }
    const opened = await core.openReply(profile, replies[i]);
    const id = core.replyId(opened.plaintext);
    if (opened.code !== "200" || !id) fail(`${opened.code} ${opened.message}`);
    else ids.set(core.username(tag, "sync", i), id);
  }

  // Every user present exactly once, with the id its create was answered with.
  const seen = new Map();
  for await (const user of listUsers()) {
    if (user.username.startsWith(`bench-${tag}-sync-`)) seen.set(user.username, (seen.get(user.username) ?? 0) + 1);
    if (ids.has(user.username) && ids.get(user.username) !== user.id) fail("id differs from the reply");
  }
  let missing = 0;
  let duplicates = 0;
  for (let i = 0; i < opts.syncUsers; i++) {
    const n = seen.get(core.username(tag, "sync", i)) ?? 0;
    if (n === 0) missing++;
    if (n > 1) duplicates++;
  }
  latencies.sort((a, b) => a - b);
  return {
    users: opts.syncUsers,
    organizations: opts.syncOrgs,
    concurrency: opts.syncConcurrency,
    seconds: round(seconds, 1),
    wallSeconds: round(wallSeconds, 1),
    rps: round(requests / seconds, 1),
    latencyMs: { p50: round(percentile(latencies, 50), 1), p99: round(percentile(latencies, 99), 1) },
    serverCpuMsPerRequest: cpu.serverMsPerRequest,
    cpu,
    retries,
    failures: Object.fromEntries(failures),
    check: { present: seen.size, missing, duplicates, everyUserExactlyOnce: missing === 0 && duplicates === 0 && seen.size === opts.syncUsers },
  };
}

// --- report ----------------------------------------------------------------------------------------

if (failed) process.exit(1);

const ratio = (a) => round(a / results.healthz.rps, 3);
const ratios = {
  checkUrlToHealthz: ratio(results.checkUrl.rps),
  createUserToHealthz: ratio(results.createUser.rps),
  updateUserToHealthz: ratio(results.updateUser.rps),
};
const fullPathP99 = Math.max(results.createUser.latencyMs.p99, results.updateUser.latencyMs.p99);
const goals = {
  checkUrlAtLeast80PercentOfHealthz: ratios.checkUrlToHealthz >= 0.8,
  fullPathAtLeast40PercentOfHealthz: Math.min(ratios.createUserToHealthz, ratios.updateUserToHealthz) >= 0.4,
  fullPathP99Under50ms: fullPathP99 < 50,
  // Only for OneAccess's largest edition (40 000 users or more): a smaller sync proves nothing about it.
  fullSyncUnder3Minutes:
    results.fullSync && results.fullSync.users >= 40_000 ? results.fullSync.seconds < 180 && results.fullSync.check.everyUserExactlyOnce : null,
  // In the runtime the receiver runs in; Node's figure (its Web Crypto hands each call to a thread pool) is kept
  // alongside, and used only where /proc is missing.
  protocolUnder0_2msCpu: (protocolCpu.workerd ?? protocolCpu.node).cpuMsPerEvent < 0.2,
};

log("");
log(`ratios        CHECK_URL / healthz ${ratios.checkUrlToHealthz}   CREATE_USER / healthz ${ratios.createUserToHealthz}   UPDATE_USER / healthz ${ratios.updateUserToHealthz}`);
log(`goals         ${Object.entries(goals).map(([k, v]) => `${v === null ? "not measured" : v ? "met" : "NOT met"}: ${k}`).join("\n              ")}`);

const out = {
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
  date: new Date().toISOString(),
  commit: git("rev-parse", "--short", "HEAD"),
  uncommittedChanges: (git("status", "--porcelain", "--", "src", "bench", "scripts") ?? "") !== "",
  machine,
  settings: {
    connections: opts.connections,
    profile: { signature: profile.signature, encryption: profile.encryption, layout: profile.layout },
    eventBytes: protocolIn.eventBytes,
    requestBytes: protocolIn.bodyBytes,
  },
  // Every process seen in wrangler dev's group, a workerd started by a reload (a file under src/ changed
  // during the run) included.
  setup: { ...setup, processes: [...roles.values()].sort((a, b) => a.pid - b.pid) },
  phases: {
    healthz: strip(results.healthz),
    checkUrl: strip(results.checkUrl),
    createUser: strip(results.createUser),
    updateUser: strip(results.updateUser),
  },
  ratios,
  fullSync: results.fullSync ?? null,
  protocolCpu,
  goals,
};
writeFileSync(path.resolve(root, opts.out), `${JSON.stringify(out, null, 2)}\n`);
log(`bench: results written to ${path.relative(process.cwd(), path.resolve(root, opts.out)) || opts.out}`);
