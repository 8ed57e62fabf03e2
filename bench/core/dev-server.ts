// The `wrangler dev` the bench measures: fresh migrated state (on a RAM disk unless asked otherwise), a
// free port, the development secrets of .dev.vars.example, and everything that only serves local
// debugging off. The host starts the process (test/browser/wrangler-dev.mjs); this module decides how.
import { ProcessGroup, ROLE_LABELS, type KnownProcess, type ProcFs } from "./processes";
import type { WebhookSink } from "./webhooks";

export interface DevServer {
  url: string;
  port: number;
  /** wrangler's node process, which leads the process group its workerd children are in. */
  pid: number;
  /** Everything it wrote so far, stdout and stderr together. */
  output(): string;
  /** Ends it and removes its state. */
  stop(): Promise<void>;
}

export interface DevHost {
  /** The OS's temporary directory. */
  tmpdir: string;
  /** Whether `dir` is a directory this process may write in. */
  isWritableDir(dir: string): boolean;
  /** statfs's f_type of the filesystem `dir` is on, or null. */
  filesystemType(dir: string): number | null;
  makeTempDir(prefix: string): string;
  removeDir(dir: string): void;
  /** `wrangler dev` of this project with extra arguments and environment, its state under `stateDir`; resolves once /healthz answers. */
  startWranglerDev(options: { args: string[]; env: Record<string, string>; stateDir: string }): Promise<DevServer>;
  /**
   * The webhook sink (scripts/lib/webhook-sink.mjs): a server on 127.0.0.1 at a free port, in a process of
   * its own, answering 204 to every POST and counting messages and distinct webhook-ids per path; with a
   * `secret`, also the messages whose signature does not verify with it.
   */
  startWebhookSink(options: { secret: string | null }): Promise<WebhookSink>;
}

const TMPFS = 0x01021994;
const RAMFS = 0x858458f6;

export interface DevSetup {
  /** Where the state was asked to go (`requested`), and where it went: `kind` of the filesystem `parent` is on. */
  state: { requested: "disk" | "tmpfs"; kind: "tmpfs" | "disk" | "unknown"; parent: string };
  inspectorProxy: { enabled: false; disabledBy: "VSCODE_INSPECTOR_OPTIONS" };
  /** wrangler's own --log-level. */
  logLevel: string;
  /** The receiver's LOG_LEVEL. */
  callbackLogLevel: string;
  localExplorer: false;
  /** Where the Worker sent its webhooks (WEBHOOK_URL); null: webhooks off. */
  webhookUrl: string | null;
  processes: KnownProcess[];
}

export interface DevOptions {
  stateOnDisk: boolean;
  /** wrangler's --log-level: `warn` for the throughput phases, `log` where the Worker's lines are read. */
  wranglerLogLevel: "warn" | "log";
  /** The receiver's LOG_LEVEL. */
  callbackLog: string;
  /** WEBHOOK_URL: the sink's, or null for webhooks off (WEBHOOK_URL and WEBHOOK_SECRET empty). */
  webhookUrl: string | null;
}

export interface RunningDev {
  dev: DevServer;
  group: ProcessGroup;
  setup: DevSetup;
  /** Stops wrangler dev and removes its debug log; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Where wrangler dev's fresh state (local D1 and the Durable Object's SQLite) goes. Under wrangler dev both
 * commit every write to disk with fsync, which on this kind of VM costs more than the rest of a write
 * (CREATE_USER about doubled with the state on /dev/shm); production D1 and Durable Objects get their
 * durability from replicated storage, not from the disk of the machine running them. So by default the
 * state goes to /dev/shm (a RAM disk) when it exists and is writable; --state-on-disk, or no usable
 * /dev/shm, keeps the OS's temporary directory (what the browser test uses).
 */
function stateParent(host: DevHost, onDisk: boolean): DevSetup["state"] {
  const parent = !onDisk && host.isWritableDir("/dev/shm") ? "/dev/shm" : host.tmpdir;
  const type = host.filesystemType(parent);
  const kind = type === null ? "unknown" : type === TMPFS || type === RAMFS ? "tmpfs" : "disk";
  return { requested: onDisk ? "disk" : "tmpfs", kind, parent };
}

export async function startDevServer(
  host: DevHost,
  proc: ProcFs,
  clock: { now(): number; cpuNow(): number },
  o: DevOptions,
  log: (line: string) => void,
): Promise<RunningDev> {
  const state = stateParent(host, o.stateOnDisk);
  if (!o.stateOnDisk && state.kind !== "tmpfs") log(`bench: /dev/shm is missing or not writable: state on ${state.kind} under ${state.parent}`);
  if (o.stateOnDisk && state.kind === "tmpfs") log(`bench: --state-on-disk, but ${state.parent} is itself a tmpfs`);
  log(
    `bench: starting wrangler dev (fresh state on ${state.kind} under ${state.parent}, migrations applied, ` +
      `--log-level ${o.wranglerLogLevel}, LOG_LEVEL ${o.callbackLog}, devtools inspector proxy off)`,
  );
  // wrangler's debug log goes to the bench's own temporary directory, removed afterwards, instead of
  // ~/.config/.wrangler/logs; the local data explorer (which wraps every Durable Object class in dev) is off.
  const logDir = host.makeTempDir("oneaccess-bench-logs-");
  let dev: DevServer;
  try {
    dev = await host.startWranglerDev({
      // The receiver's LOG_LEVEL: under wrangler dev each line it writes is piped to wrangler's node process
      // and parsed there, even when --log-level then hides it.
      // WEBHOOK_URL the same way (`--var` wins over .dev.vars.example): the sink, or empty for webhooks off,
      // with WEBHOOK_SECRET empty too (a secret without a URL is a configuration error the Worker refuses).
      args: [
        "--log-level",
        o.wranglerLogLevel,
        "--var",
        `LOG_LEVEL:${o.callbackLog}`,
        ...(o.webhookUrl === null ? ["--var", "WEBHOOK_URL:", "--var", "WEBHOOK_SECRET:"] : ["--var", `WEBHOOK_URL:${o.webhookUrl}`]),
      ],
      stateDir: state.parent,
      env: {
        WRANGLER_LOG_PATH: logDir,
        X_LOCAL_EXPLORER: "false",
        // No devtools inspector proxy. `wrangler dev` normally attaches one to the Worker (InspectorProxyWorker,
        // for Chrome DevTools / VS Code): it sends `Network.enable`, so every request and every D1 subrequest
        // becomes inspector events that workerd serialises and relays to wrangler's node process and its debug
        // log, CPU the bench would otherwise charge to the receiver. It is local debugging only (nothing like it
        // runs in production), and the bench debugs nothing. wrangler 4.86's CLI has no flag for it: the one
        // switch it honours is this variable, which it takes to mean "a VS Code JavaScript Debug Terminal
        // attaches its own debugger" and then skips the proxy (`get inspectorEnabled()` in
        // wrangler-dist/cli.js). Only the bench sets it; the browser test keeps wrangler's defaults.
        VSCODE_INSPECTOR_OPTIONS: "{}",
      },
    });
  } catch (e) {
    host.removeDir(logDir);
    throw e;
  }
  const group = new ProcessGroup(proc, dev, clock);
  const processes = group.discover();
  if (processes.length > 0) log(`bench: wrangler dev processes: ${processes.map((p) => `${ROLE_LABELS[p.role]} ${p.pid}`).join(", ")}`);
  let stopped = false;
  return {
    dev,
    group,
    setup: {
      state,
      inspectorProxy: { enabled: false, disabledBy: "VSCODE_INSPECTOR_OPTIONS" },
      logLevel: o.wranglerLogLevel,
      callbackLogLevel: o.callbackLog,
      localExplorer: false,
      webhookUrl: o.webhookUrl,
      processes,
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await dev.stop().catch(() => {});
      host.removeDir(logDir);
    },
  };
}

/** Lines of wrangler dev's output that say the Workers runtime cancelled a request as hung. */
export const HUNG = "had hung";

export function countLines(text: string, needle: string): number {
  let n = 0;
  for (const line of text.split("\n")) if (line.includes(needle)) n++;
  return n;
}
