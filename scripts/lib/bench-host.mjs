// The bench's Node host (BenchHost in bench/cli/main.ts): thin wrappers over the Node APIs the bench needs
// and nothing else. What to start, send, sample and conclude is decided in bench/ (typed, Web APIs only).
import { execFileSync, fork } from "node:child_process";
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { startWranglerDev } from "../../test/browser/wrangler-dev.mjs";
import { readOrNull, root } from "./bundle.mjs";

const orNull = (read) => {
  try {
    return read();
  } catch {
    return null;
  }
};

/** autocannon, with the body of each request set up per connection and every response reported. */
async function runLoad({ url, connections, amount, method, headers, body, onResponse, onLatency }) {
  const run = autocannon({
    url,
    connections,
    amount,
    method,
    headers,
    requests: [
      {
        method,
        path: new URL(url).pathname,
        ...(body ? { setupRequest: (req, context) => ({ ...req, body: body(context) }) } : {}),
        ...(onResponse ? { onResponse: (status, text, context) => onResponse(status, text, context) } : {}),
      },
    ],
  });
  if (onLatency) run.on("response", (_client, _status, _bytes, ms) => onLatency(ms));
  const r = await run;
  return { ok2xx: r["2xx"], non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max } };
}

/** A Worker entry point of the project, bundled for workerd and run by Miniflare (no bindings, no storage). */
async function startWorker(entry, compatibilityDate) {
  const bundled = await build({ entryPoints: [path.join(root, entry)], bundle: true, format: "esm", platform: "browser", target: "es2022", write: false, logLevel: "error" });
  const mf = new Miniflare({ modules: true, script: bundled.outputFiles[0].text, compatibilityDate, cf: false });
  await mf.ready;
  return {
    fetch: async (request) => mf.dispatchFetch(request.url, { method: request.method, headers: [...request.headers], body: request.body ? await request.text() : undefined }),
    dispose: () => mf.dispose(),
  };
}

/**
 * The webhook sink (webhook-sink.mjs) in a process of its own, over IPC: `url`, `counts()`, `close()`. The
 * channel holds the bench's event loop open only while a question to the sink is waiting for its answer.
 */
function startWebhookSink({ secret }) {
  const child = fork(path.join(root, "scripts", "lib", "webhook-sink.mjs"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const waiting = new Map();
  let seq = 0;
  let port = null;
  let failed = null;
  const settle = (error) => {
    failed = error;
    for (const { reject } of waiting.values()) reject(error);
    waiting.clear();
  };
  const ask = (message) =>
    new Promise((resolve, reject) => {
      if (failed) return reject(failed);
      const id = ++seq;
      waiting.set(id, { resolve, reject });
      child.channel?.ref();
      child.send({ ...message, seq: id }, (e) => {
        if (e) settle(e);
      });
    });
  child.on("message", (m) => {
    const w = waiting.get(m?.seq);
    if (!w) return;
    waiting.delete(m.seq);
    if (waiting.size === 0) child.channel?.unref();
    w.resolve(m);
  });
  child.once("exit", (code, signal) => settle(new Error(`the webhook sink exited (${code ?? signal})`)));
  child.once("error", (e) => settle(e));
  return ask({ type: "start", secret }).then((m) => {
    port = m.port;
    return {
      url: `http://127.0.0.1:${port}/webhooks`,
      counts: () => ask({ type: "counts" }).then((r) => r.counts),
      close: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((done) => child.once("exit", done));
        child.disconnect();
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      },
    };
  });
}

export function benchHost(argv) {
  return {
    argv,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    now: () => performance.now(),
    cpuNow: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
    pid: process.pid,
    fetch: (request) => fetch(request),
    load: { run: runLoad },
    proc: {
      readFile: (file) => orNull(() => readFileSync(file, "utf8")),
      listDir: (dir) => orNull(() => readdirSync(dir)),
    },
    readProjectFile: (name) => readOrNull(path.join(root, name)),
    writeProjectFile: (name, text) => {
      const file = path.resolve(root, name);
      writeFileSync(file, text);
      return path.relative(process.cwd(), file) || file;
    },
    git: (args) => orNull(() => execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()),
    machine: {
      nproc: os.availableParallelism?.() ?? os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? "unknown",
      memoryBytes: os.totalmem(),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
    },
    startWorker,
    onInterrupt: (stop) => {
      for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => void stop().finally(() => process.exit(130)));
    },
    // DevHost: where wrangler dev's state goes, and wrangler dev itself (test/browser/wrangler-dev.mjs).
    tmpdir: os.tmpdir(),
    isWritableDir: (dir) => orNull(() => (accessSync(dir, constants.W_OK), statSync(dir).isDirectory())) === true,
    filesystemType: (dir) => orNull(() => statfsSync(dir).type),
    makeTempDir: (prefix) => mkdtempSync(path.join(os.tmpdir(), prefix)),
    removeDir: (dir) => rmSync(dir, { recursive: true, force: true }),
    startWranglerDev: (options) => startWranglerDev(options),
    startWebhookSink,
  };
}
