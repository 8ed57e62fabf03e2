// The Node side of the smoke test: the project's own commands (`node scripts/simulate.mjs listen`, `sync`)
// as child processes, each in a process group of its own, so a stop ends the command and whatever it
// started, and nothing else. Plain JavaScript for the reason test/browser/wrangler-dev.mjs gives (the
// project's type check has no Node types); processes.d.mts describes it.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stopProcessGroup } from "../browser/wrangler-dev.mjs";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const childEnv = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  NO_COLOR: "1",
  // What npm would set for `npm run simulate`: paths on the command line are relative to the project root.
  INIT_CWD: root,
};

/** Whether any process of the group `pid` leads is still there. */
export function processGroupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (e) {
    if (e && e.code === "ESRCH") return false;
    throw e;
  }
}

/**
 * Whether the group `pid` led is gone within `timeoutMs`: a command's own children (esbuild's service
 * process) leave on their own shortly after it, once their pipe to it closes.
 */
export async function processGroupGone(pid, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (processGroupAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** `node <args>` from the project root, its own process group, stdout kept as lines and stderr as text. */
export function startNode(args) {
  const child = spawn(process.execPath, args, { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const lines = [];
  let partial = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop();
    lines.push(...parts);
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (stderr += chunk));
  // `close`, not `exit`: the last output has been read by then.
  const exited = new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  let ended = null;
  exited.then((result) => {
    ended = result;
    if (partial !== "") lines.push(partial);
    partial = "";
  });

  const output = () => `${lines.join("\n")}\n${partial}${stderr === "" ? "" : `\n[stderr]\n${stderr}`}`;

  /** The first line matching `pattern` (already printed or printed within `timeoutMs`). */
  async function waitForLine(pattern, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of lines) {
        const m = pattern.exec(line);
        if (m) return m;
      }
      if (ended !== null) throw new Error(`node ${args.join(" ")} exited (${ended.code ?? ended.signal}) before printing ${pattern}:\n${output()}`);
      if (Date.now() > deadline) throw new Error(`node ${args.join(" ")} printed no line matching ${pattern} within ${timeoutMs / 1000} s:\n${output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM to the group (the command stops itself), SIGKILL to the group after 10 s; the exit status. */
  async function stop() {
    if (ended === null) await stopProcessGroup(child, exited);
    return exited;
  }

  return { pid: child.pid, lines: () => [...lines], stderr: () => stderr, output, waitForLine, exited, stop };
}

/** `node <args>` to its end (its group killed after `timeoutMs`): exit code, stdout, stderr. */
export async function runNode(args, timeoutMs) {
  const run = startNode(args);
  const timer = setTimeout(() => void run.stop(), timeoutMs);
  const { code, signal } = await run.exited;
  clearTimeout(timer);
  return { code, signal, pid: run.pid, stdout: run.lines().join("\n"), stderr: run.stderr() };
}
