// `npm run emulator`: a local OneAccess for one application, configured like the receiver. Everything
// Node-specific (argv, env, files, the HTTP server, fetch) comes in through `EmulatorHost`, supplied by
// scripts/emulator.mjs, so this file type-checks against Web APIs only (and is tested inside workerd).
import { integerOption, parseArgs, UsageError } from "../../sim/cli/args";
import { describeProfile } from "../../sim/core/profile";
import type { FetchLike } from "../../sim/core/wire";
import { createEmulator, DEFAULTS, type Emulator } from "../core/app";
import { settingsFromFiles } from "../core/settings";
import type { StateStore } from "../core/store";

export interface EmulatorHost {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** A file of the project (next to package.json), or null when it does not exist. */
  readProjectFile(name: string): string | null;
  /** A file named by the user (relative to where the command was typed), or null when it does not exist. */
  readUserFile(path: string): string | null;
  stdout(text: string): void;
  stderr(text: string): void;
  /** How callbacks travel to the receiver. */
  fetch: FetchLike;
  /** The JSON file store at `path` (relative to the project root unless absolute). */
  fileStore(path: string): StateStore;
  /** Serves `fetch` on hostname:port; resolves once listening, rejects when it cannot listen. */
  serve(fetch: (request: Request) => Response | Promise<Response>, port: number, hostname: string): Promise<void>;
  now?(): number;
}

const DEFAULT_PORT = 8788;
const DEFAULT_HOST = "127.0.0.1";
/** Next to the receiver's local D1 (`.wrangler/state`): removing `.wrangler` resets both together. */
const DEFAULT_STATE_FILE = ".wrangler/oneaccess-emulator/state.json";

const USAGE = `Usage: npm run emulator -- [options]

A local OneAccess: its management API (token, application accounts and organizations, sync settings and
records) for one application, sending every change to the receiver as OneAccess's event callbacks.

Options
  --port N                       listen on this port (default ${DEFAULT_PORT})
  --host HOST                    listen on this address (default ${DEFAULT_HOST})
  --url URL                      the receiver's callback URL (default http://localhost:8787/callback)
  --signature sha1|hmac-sha256|none
  --encryption aes-gcm|aes-cbc|none
  --layout iv16-b64-prefix|iv12|iv16
  --receive-id ID                aes-cbc receive id
  --dev-vars FILE                secrets file (default .dev.vars, as wrangler dev)
  --state FILE                   where the state is kept (default ${DEFAULT_STATE_FILE})
  --application-id ID            the application's id in API paths (default ${DEFAULTS.applicationId})
  --client-id ID                 client credentials for POST /api/v2/tenant/token
  --client-secret SECRET           (env ONEACCESS_EMULATOR_CLIENT_ID / _SECRET; defaults ${DEFAULTS.clientId} / ${DEFAULTS.clientSecret})
  --token-ttl SECONDS            access token lifetime (default ${DEFAULTS.tokenTtlSeconds})
  --no-check                     do not send CHECK_URL at start

Callback settings come from wrangler.toml [vars], then .dev.vars, then these flags: what \`wrangler dev\`
gives the receiver, so the defaults match \`npm run dev\`.
`;

/** Every option, as util.parseArgs takes them (sim/cli/args.ts); integers are checked where they are used. */
const OPTIONS = {
  port: { type: "string" },
  host: { type: "string", default: DEFAULT_HOST },
  url: { type: "string" },
  signature: { type: "string" },
  encryption: { type: "string" },
  layout: { type: "string" },
  "receive-id": { type: "string" },
  "dev-vars": { type: "string" },
  state: { type: "string", default: DEFAULT_STATE_FILE },
  "application-id": { type: "string", default: DEFAULTS.applicationId },
  "client-id": { type: "string" },
  "client-secret": { type: "string" },
  "token-ttl": { type: "string" },
  "no-check": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const APPLICATION_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export interface Started {
  emulator: Emulator;
  url: string;
}

/** Parses the options, builds the emulator and serves it. Returns an exit code, or `Started` while serving. */
export async function main(host: EmulatorHost): Promise<number | Started> {
  const out = (line = "") => host.stdout(`${line}\n`);
  try {
    const { values } = parseArgs({ args: host.argv, options: OPTIONS });
    if (values.help) {
      host.stdout(USAGE);
      return 0;
    }
    const port = integerOption("port", values.port, DEFAULT_PORT, 1, 65535);
    const hostname = values.host!;
    const applicationId = values["application-id"]!;
    if (!APPLICATION_ID.test(applicationId)) throw new UsageError("--application-id may contain letters, digits, _, . and - (at most 64)");
    const clientId = values["client-id"] ?? nonEmpty(host.env.ONEACCESS_EMULATOR_CLIENT_ID) ?? DEFAULTS.clientId;
    const clientSecret = values["client-secret"] ?? nonEmpty(host.env.ONEACCESS_EMULATOR_CLIENT_SECRET) ?? DEFAULTS.clientSecret;
    const tokenTtlSeconds = integerOption("token-ttl", values["token-ttl"], DEFAULTS.tokenTtlSeconds, 1, 86_400);

    let devVars: string | null;
    const explicit = values["dev-vars"];
    if (explicit !== undefined) {
      devVars = host.readUserFile(explicit);
      if (devVars === null) throw new UsageError(`${explicit} does not exist`);
    } else {
      devVars = host.readProjectFile(".dev.vars");
      if (devVars === null) {
        devVars = host.readProjectFile(".dev.vars.example");
        if (devVars !== null) host.stderr("emulator: .dev.vars is missing; using .dev.vars.example (npm run dev copies it)\n");
      }
    }
    const files = settingsFromFiles({ wranglerToml: host.readProjectFile("wrangler.toml"), devVars, flags: values, callbackUrl: values.url });
    if (!files.ok) throw new UsageError(`settings (wrangler.toml [vars], ${explicit ?? ".dev.vars"}, flags) are not usable:\n  ${files.problems.join("\n  ")}`);

    const store = host.fileStore(values.state!);
    const time = () => new Date(host.now?.() ?? Date.now()).toISOString().slice(11, 19);
    const emulator = createEmulator({
      store,
      fetch: host.fetch,
      applicationId,
      clientId,
      clientSecret,
      tokenTtlSeconds,
      settings: files.settings,
      localDev: files.localDev,
      ...(host.now ? { now: host.now } : {}),
      log: (line) => out(`${time()} ${line}`),
    });
    let summary;
    try {
      summary = await emulator.summary();
    } catch (e) {
      throw new UsageError(`cannot read ${store.description}: ${e instanceof Error ? e.message : String(e)}`);
    }
    await host.serve((request) => emulator.app.fetch(request), port, hostname);
    const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
    const records = summary.sync_records;
    out(`OneAccess emulator   ${url}`);
    out(`application         ${applicationId}   (API: ${url}/api/v2/tenant/applications/${applicationId}/...)`);
    out(`client credentials  ${clientId} / ${clientId === DEFAULTS.clientId && clientSecret === DEFAULTS.clientSecret ? clientSecret : "(as configured)"}   token: POST ${url}/api/v2/tenant/token`);
    out(`callback            ${files.settings.callbackUrl}`);
    out(`profile             ${describeProfile(files.settings.profile)}`);
    out(`state               ${store.description}: ${summary.organizations} organizations, ${summary.accounts} accounts, sync records ${records.success} ok / ${records.failed} failed / ${records.waiting} waiting`);
    if (!values["no-check"]) {
      const check = (await emulator.checkUrl())!;
      out(
        check.ok
          ? `check-url           OK (${check.reply.latencyMs.toFixed(0)} ms)`
          : `check-url           FAILED: ${check.reply.code} ${check.reply.message} (is the receiver running? until it answers, changes become failed sync records, to retry)`,
      );
    }
    out("");
    return { emulator, url };
  } catch (e) {
    if (e instanceof UsageError) {
      host.stderr(`emulator: ${e.message}\n(npm run emulator -- --help)\n`);
      return 2;
    }
    throw e;
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}
