// The Node side of the browser test: a real `wrangler dev` of this project on a free port, with its own
// local persistence in a temporary directory (migrated first), the development secrets of
// .dev.vars.example, and a clean stop. Plain JavaScript so the project's type check (Web and Workers types
// only, no Node types) does not need to know about Node; wrangler-dev.d.mts describes it.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
// wrangler's own CLI, run by node directly: the PID we hold is the wrangler process itself (not an npx or
// bin/wrangler.js wrapper), so stopping it lets wrangler shut workerd down and free the port.
const wranglerCli = path.join(root, "node_modules", "wrangler", "wrangler-dist", "cli.js");
const ENV_FILE = ".dev.vars.example";

const childEnv = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  // No prompts (nothing can answer them: stdin is closed in CI).
  CI: "true",
  NO_COLOR: "1",
};

/** The development secrets wrangler dev gets (`--env-file .dev.vars.example`), for the test's sender. */
export function devVars() {
  const vars = {};
  for (const line of readFileSync(path.join(root, ENV_FILE), "utf8").split(/\r?\n/)) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*"?(.*?)"?\s*$/.exec(line);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A file under test-artifacts/ (git-ignored), the directory created when missing. */
export function artifactPath(name) {
  const dir = path.join(root, "test-artifacts");
  mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}

export function makeTempDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

function runWrangler(args, cwd) {
  const result = spawnSync(process.execPath, [wranglerCli, ...args], {
    cwd,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) {
    throw new Error(`wrangler ${args.join(" ")} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/**
 * Migrates a fresh local D1 in a temporary directory, starts `wrangler dev` on it and waits until
 * /healthz answers. `stop()` ends it (SIGTERM to wrangler, SIGKILL to its process group as a last resort)
 * and removes the directory. `options.args` are extra `wrangler dev` arguments (the bench adds
 * `--log-level warn`), `options.env` extra environment variables for wrangler, `options.stateDir` the
 * directory the temporary persistence directory (local D1 and Durable Object storage) is created in
 * (default the OS's temporary directory; the bench passes a tmpfs such as /dev/shm).
 */
/**
 * Ends a child started in its own process group (`detached: true`): SIGTERM to the whole group, so wrangler
 * and its workerd stop together, then SIGKILL to the group after `graceMs`. Resolves once the child exited.
 */
export async function stopProcessGroup(child, exited, graceMs = 10_000) {
  const signalGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  signalGroup("SIGTERM");
  const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), graceMs))]);
  if (!done) signalGroup("SIGKILL");
  return exited;
}

export async function startWranglerDev(options = {}) {
  const extraArgs = options.args ?? [];
  const env = { ...childEnv, ...(options.env ?? {}) };
  const persistTo = mkdtempSync(path.join(options.stateDir ?? tmpdir(), "oneaccess-browser-state-"));
  try {
    runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], root);
  } catch (e) {
    removeDir(persistTo); // on a tmpfs it would hold memory until reboot
    throw e;
  }

  const port = await freePort();
  const inspectorPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      wranglerCli,
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      persistTo,
      "--env-file",
      ENV_FILE,
      "--show-interactive-dev-session=false",
      ...extraArgs,
    ],
    // Its own process group: should wrangler not stop cleanly, the group (wrangler and workerd) is ours to end.
    { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) await stopProcessGroup(child, exited);
    removeDir(persistTo);
  };

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`wrangler dev exited early (${child.exitCode}):\n${output}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer /healthz within 90 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, port, pid: child.pid, output: () => output, stop };
}

/** Fails with the fix when Debian's Chromium is not installed (CI installs it in .ci/run). */
export function requireChromium() {
  if (!existsSync(CHROMIUM.executablePath)) {
    throw new Error(
      `${CHROMIUM.executablePath} is missing: install Debian's Chromium first ` +
        "(apt-get update && apt-get install -y --no-install-recommends chromium)",
    );
  }
}

/** Chromium's fixed launch settings: Debian's package, headless, nothing phoning home. */
export const CHROMIUM = {
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};
