// The simulator's command line. Everything Node-specific (argv, files, the terminal, fetch) comes in
// through `CliHost`, supplied by scripts/simulate.mjs, so this file type-checks against Web APIs only.
import { randomLetters } from "../../src/protocol/codec";
import { planCompany } from "../core/company";
import { createListener, DEFAULT_LISTEN_PATH, DEFAULT_LISTEN_PORT, formatTally, webhookSecretProblem } from "../core/listen";
import { checkUrl, replay, tamper } from "../core/modes";
import { describeProfile, FLAG_SETTINGS, mergeSettings, profileFromSettings, type SimProfile } from "../core/profile";
import { formatChecks, formatPlan, formatSyncSummary } from "../core/report";
import { runSync } from "../core/sync";
import { Sender, type FetchLike } from "../core/wire";
import { integerOption, parseArgs, UsageError, type ParsedValues } from "./args";
import { ProgressBar } from "./progress";
import { parseDotenv, parseWranglerVars } from "../core/settings-files";

export interface CliHost {
  argv: readonly string[];
  /** A file of the project (next to package.json), or null when it does not exist. */
  readProjectFile(name: string): string | null;
  /** A file named by the user (relative to where the command was typed), or null when it does not exist. */
  readUserFile(path: string): string | null;
  stdout(text: string): void;
  stderr(text: string): void;
  stderrIsTTY: boolean;
  columns: number;
  fetch: FetchLike;
  now(): number;
  /**
   * Serves `handler` over HTTP on 127.0.0.1:`port` (0: any free port). Resolves once listening, with the
   * port and `closed`, which settles when the user stops the command (Ctrl+C, SIGTERM). Only `listen` uses it.
   */
  serve?(port: number, handler: (request: Request) => Promise<Response>): Promise<{ port: number; closed: Promise<void> }>;
}

const USAGE = `Usage: npm run simulate -- <command> [options]

Commands
  check-url                      send CHECK_URL; check the reply opens and echoes
  send <EVENT> <json | @file>    send one event, print the opened reply
  sync [--orgs N] [--users M] [--seed S] [--concurrency C]
                                 generate a company from the seed and push it (creates parents first,
                                 then updates, moves and deletes); progress and a summary
  replay                         the same request again, re-spelled and relabelled: answered from the store or refused
  tamper                         flip a character of data / signature / timestamp / bearer: each refused
  listen [--port P] [--path /p] [--secret whsec_...] [--fail N] [--fail-rate R]
                                 receive the receiver's webhooks (default http://127.0.0.1:${DEFAULT_LISTEN_PORT}${DEFAULT_LISTEN_PATH}):
                                 verify each (Standard Webhooks, WEBHOOK_SECRET), print one line per
                                 message, answer 204, or 400 with the reason; until Ctrl+C

Options
  --url URL                      receiver (default http://localhost:8787/callback)
  --signature sha1|hmac-sha256|none
  --encryption aes-gcm|aes-cbc|none
  --layout iv16-b64-prefix|iv12|iv16
  --receive-id ID                aes-cbc receive id
  --tolerance SECONDS            the receiver's timestamp window (tamper's expectations)
  --dev-vars FILE                secrets file (default .dev.vars, as wrangler dev)
  --retries N                    resends of the same bytes after a 500 or network error (default 2)
  --no-check                     sync: skip the CHECK_URL before pushing
  --port P, --path /p            listen: where webhooks are taken (default ${DEFAULT_LISTEN_PORT}, ${DEFAULT_LISTEN_PATH}; port 0: any free one)
  --secret whsec_...             listen: the webhook secret (default WEBHOOK_SECRET of the settings files)
  --fail N                       listen: answer the first N requests with 500, to watch the retries
  --fail-rate R                  listen: answer a share R of the requests with 500 (0 to 1, or 20%)

Settings come from wrangler.toml [vars], then .dev.vars (secrets and overrides), then these flags:
the same names and order as \`wrangler dev\`, so the defaults match \`npm run dev\`.
`;

/** Every option, as util.parseArgs takes them (sim/cli/args.ts); integers are checked where they are used. */
const OPTIONS = {
  url: { type: "string", default: "http://localhost:8787/callback" },
  signature: { type: "string" },
  encryption: { type: "string" },
  layout: { type: "string" },
  "receive-id": { type: "string" },
  tolerance: { type: "string" },
  "dev-vars": { type: "string" },
  retries: { type: "string" },
  orgs: { type: "string" },
  users: { type: "string" },
  seed: { type: "string", default: "1" },
  concurrency: { type: "string" },
  "no-check": { type: "boolean" },
  port: { type: "string" },
  path: { type: "string", default: DEFAULT_LISTEN_PATH },
  secret: { type: "string" },
  fail: { type: "string" },
  "fail-rate": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ParsedValues<typeof OPTIONS>;

/** The settings `wrangler dev` would read: wrangler.toml [vars], then .dev.vars (or --dev-vars FILE). */
function readSettingsFiles(host: CliHost, values: Values): { vars: Record<string, string>; devVars: Record<string, string>; source: string } {
  const toml = host.readProjectFile("wrangler.toml");
  const wranglerVars = toml === null ? {} : parseWranglerVars(toml);
  let devVarsText: string | null;
  let source: string;
  const explicit = values["dev-vars"];
  if (explicit !== undefined) {
    devVarsText = host.readUserFile(explicit);
    source = explicit;
    if (devVarsText === null) throw new UsageError(`${explicit} does not exist`);
  } else {
    devVarsText = host.readProjectFile(".dev.vars");
    source = ".dev.vars";
    if (devVarsText === null) {
      devVarsText = host.readProjectFile(".dev.vars.example");
      source = ".dev.vars.example";
      if (devVarsText !== null) host.stderr("simulate: .dev.vars is missing; using .dev.vars.example (npm run dev copies it)\n");
    }
  }
  return { vars: wranglerVars, devVars: devVarsText === null ? {} : parseDotenv(devVarsText), source };
}

function loadProfile(host: CliHost, values: Values): SimProfile {
  const files = readSettingsFiles(host, values);
  const overrides: Record<string, string> = {};
  for (const [flag, setting] of Object.entries(FLAG_SETTINGS)) {
    const v = values[flag as keyof typeof FLAG_SETTINGS];
    if (v !== undefined) overrides[setting] = v;
  }
  const result = profileFromSettings(mergeSettings(files.vars, files.devVars, overrides));
  if (!result.ok) {
    const problems = result.problems.map((p) => `  ${p.setting} ${p.problem}`).join("\n");
    throw new UsageError(`settings (wrangler.toml [vars], ${files.source}, flags) are not usable:\n${problems}`);
  }
  return result.profile;
}

/** --fail-rate: a share from 0 to 1 (0.25), or a percentage (25%). */
function rateOption(value: string | undefined): number {
  if (value === undefined) return 0;
  const m = /^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(%?)$/.exec(value);
  const rate = m ? Number(m[1]) / (m[2] === "%" ? 100 : 1) : NaN;
  if (rate >= 0 && rate <= 1) return rate;
  throw new UsageError("--fail-rate must be a share from 0 to 1 (0.25) or a percentage (25%)");
}

/** Whether two URLs reach the same local endpoint (localhost and 127.0.0.1 being the same host). */
function sameLoopbackEndpoint(a: string, b: string): boolean {
  try {
    const [x, y] = [new URL(a), new URL(b)];
    const loopback = (u: URL) => ["localhost", "127.0.0.1", "[::1]"].includes(u.hostname);
    return loopback(x) && loopback(y) && x.protocol === y.protocol && x.port === y.port && x.pathname === y.pathname;
  } catch {
    return false;
  }
}

/**
 * `listen`: the webhook endpoint an application would run, served by the host until the user stops it.
 * The secret is the Worker's WEBHOOK_SECRET, read from the same files (then --secret), so right after
 * `npm run dev` it needs no option.
 */
async function listen(host: CliHost, values: Values, out: (line?: string) => void): Promise<number> {
  const port = integerOption("port", values.port, DEFAULT_LISTEN_PORT, 0, 65_535);
  const path = values.path!;
  if (!path.startsWith("/")) throw new UsageError("--path must start with /");
  const failFirst = integerOption("fail", values.fail, 0, 0);
  const failRate = rateOption(values["fail-rate"]);
  const files = readSettingsFiles(host, values);
  const settings = mergeSettings(files.vars, files.devVars);
  let secret: string;
  let secretSource: string;
  if (values.secret !== undefined) {
    [secret, secretSource] = [values.secret, "--secret"];
  } else if (files.devVars.WEBHOOK_SECRET) {
    [secret, secretSource] = [files.devVars.WEBHOOK_SECRET, `WEBHOOK_SECRET of ${files.source}`];
  } else if (files.vars.WEBHOOK_SECRET) {
    [secret, secretSource] = [files.vars.WEBHOOK_SECRET, "WEBHOOK_SECRET of wrangler.toml [vars]"];
  } else {
    throw new UsageError(`no webhook secret: WEBHOOK_SECRET is not in wrangler.toml [vars] or ${files.source}; set it there (the Worker signs with it) or pass --secret whsec_...`);
  }
  const problem = webhookSecretProblem(secret);
  if (problem !== null) throw new UsageError(`the webhook secret (${secretSource}) ${problem}`);
  if (host.serve === undefined) throw new UsageError("listen needs a host that can serve HTTP");

  const listener = createListener({ secret, path, failFirst, failRate, print: (line) => out(line) });
  let server: { port: number; closed: Promise<void> };
  try {
    server = await host.serve(port, listener.handle);
  } catch (e) {
    host.stderr(`simulate: cannot listen on 127.0.0.1:${port}: ${e instanceof Error ? e.message : String(e)} (another listen running? --port)\n`);
    return 1;
  }
  const url = `http://127.0.0.1:${server.port}${path}`;
  out(`listening   ${url}`);
  out(`secret      ${secretSource}`);
  const configured = settings.WEBHOOK_URL ? sameLoopbackEndpoint(settings.WEBHOOK_URL, url) : false;
  if (configured) out(`receiver    WEBHOOK_URL in the settings is this listener (${settings.WEBHOOK_URL})`);
  else out(`receiver    set WEBHOOK_URL=${url} (in .dev.vars, or npm run dev -- --var WEBHOOK_URL:${url})`);
  out("            the Worker sends to an http://localhost or 127.0.0.1 URL only with LOCAL_DEV=true (only .dev.vars.example sets it)");
  if (settings.LOCAL_DEV !== "true") out(`warning     LOCAL_DEV is not "true" in wrangler.toml [vars] or ${files.source}: a receiver with these settings will not send here`);
  if (settings.WEBHOOK_URL && !configured) out(`warning     WEBHOOK_URL in the settings is ${settings.WEBHOOK_URL}, not this listener`);
  const failing: string[] = [];
  if (failFirst > 0) failing.push(failFirst === 1 ? "the first request" : `the first ${failFirst} requests`);
  if (failRate > 0) failing.push(`${failFirst > 0 ? "then " : ""}${Number((failRate * 100).toFixed(2))}% of ${failFirst > 0 ? "the rest" : "requests"}`);
  out(`answers     204 verified, 400 not verified (with the reason)${failing.length > 0 ? `; 500 on purpose to ${failing.join(", ")}` : ""}`);
  out("");
  await server.closed;
  const tally = listener.tally();
  out("");
  out(`stopped     ${formatTally(tally)}`);
  return tally.notVerified === 0 ? 0 : 1;
}

function readPayload(host: CliHost, arg: string): string {
  if (!arg.startsWith("@")) return arg;
  const text = host.readUserFile(arg.slice(1));
  if (text === null) throw new UsageError(`${arg.slice(1)} does not exist`);
  return text.trim();
}

/**
 * After a refused CHECK_URL: the receiver's own diagnosis from the operator view of GET /healthz (which
 * setting is wrong, which signature algorithm would have verified, the reasons of its latest refusals), when
 * this side knows DIRECTORY_API_TOKEN. Names and reasons only, never values, so safe to print.
 */
async function healthHints(host: CliHost, url: string, profile: SimProfile): Promise<string[]> {
  if (profile.operatorToken === undefined) return [];
  let healthUrl: string;
  try {
    healthUrl = new URL("/healthz", url).href;
  } catch {
    return [];
  }
  try {
    const res = await host.fetch(new Request(healthUrl, { headers: { authorization: `Bearer ${profile.operatorToken}` } }));
    const body = (await res.json()) as {
      problems?: Array<{ setting: string; problem: string }>;
      seenByThisInstance?: { signatureHint: { hint: string } | null; recentRefusals: Array<{ code: string; reason: string | null }> };
    };
    const seen = body.seenByThisInstance;
    const lines = (body.problems ?? []).map((p) => `receiver    ${p.setting} ${p.problem}`);
    if (seen?.signatureHint) lines.push(`receiver    hint: ${seen.signatureHint.hint}`);
    const latest = seen?.recentRefusals[0];
    if (latest?.reason) lines.push(`receiver    last refusal: ${latest.code} ${latest.reason}`);
    return lines.length > 0 ? [`the receiver's own diagnosis (${healthUrl}, seen by the instance that answered):`, ...lines] : [];
  } catch {
    return [];
  }
}

function pretty(text: string): string {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === "object" && v !== null ? JSON.stringify(v) : text;
  } catch {
    return text;
  }
}

export async function main(host: CliHost): Promise<number> {
  const out = (line = "") => host.stdout(`${line}\n`);
  try {
    const { values, positionals: [command, ...positionals] } = parseArgs({ args: host.argv, options: OPTIONS, allowPositionals: true });
    if (command === undefined || command === "help" || values.help) {
      host.stdout(USAGE);
      return command === undefined && !values.help ? 2 : 0;
    }
    if (!["check-url", "send", "sync", "replay", "tamper", "listen"].includes(command)) throw new UsageError(`unknown command ${command}`);
    if (command === "listen") return await listen(host, values, out);
    const url = values.url!;
    const profile = loadProfile(host, values);
    const syncOptions =
      command === "sync"
        ? {
            orgs: integerOption("orgs", values.orgs, 20, 1),
            users: integerOption("users", values.users, 200, 0),
            concurrency: integerOption("concurrency", values.concurrency, 8, 1),
            seed: values.seed!,
          }
        : null;
    const sender = new Sender(profile, { url, fetch: host.fetch, retries: integerOption("retries", values.retries, 2, 0), now: () => host.now() });
    out(`receiver    ${url}`);
    out(`profile     ${describeProfile(profile)}`);

    switch (command) {
      case "check-url": {
        const result = await checkUrl(sender);
        for (const line of result.lines) out(line);
        if (!result.ok && result.reply.code !== "network") for (const line of await healthHints(host, url, profile)) out(line);
        return result.ok ? 0 : 1;
      }
      case "send": {
        const [eventArg, payloadArg] = positionals;
        if (eventArg === undefined) throw new UsageError("send needs an event type, e.g. send CREATE_ORGANIZATION '{\"code\":\"x\",\"name\":\"X\"}'");
        const eventType = eventArg.toUpperCase();
        let message: string;
        if (eventType === "CHECK_URL") {
          message = payloadArg === undefined ? randomLetters(16) : readPayload(host, payloadArg);
        } else {
          if (payloadArg === undefined) throw new UsageError(`send ${eventType} needs the event's data: JSON or @file`);
          message = readPayload(host, payloadArg);
          let parsed: unknown;
          try {
            parsed = JSON.parse(message);
          } catch {
            throw new UsageError("the event's data must be JSON (or @file holding JSON)");
          }
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError("the event's data must be a JSON object");
        }
        const { envelope, reply } = await sender.send(eventType, message);
        out(`sent        ${eventType}  nonce ${envelope.nonce}  timestamp ${envelope.timestamp}`);
        out(`reply       HTTP ${reply.status}  code ${reply.code}  message "${reply.message}"  (${reply.latencyMs.toFixed(1)} ms${reply.attempts > 1 ? `, ${reply.attempts} attempts` : ""})`);
        if (reply.data !== "" && profile.encryption !== "none") out(`data        ${reply.data.length > 76 ? `${reply.data.slice(0, 73)}...` : reply.data}`);
        if (reply.plaintext !== null) out(`opened      ${reply.plaintext === "" ? "(empty)" : pretty(reply.plaintext)}${reply.layout ? `  [${reply.layout}]` : ""}`);
        else out(`opened      reply does not open: ${reply.openError ?? "unknown reason"}`);
        return reply.code === "200" ? 0 : 1;
      }
      case "sync": {
        const { orgs, users, concurrency, seed } = syncOptions!;
        const plan = planCompany({ orgs, users, seed });
        out(`company     ${plan.company.zh} ${plan.company.en}  (seed ${JSON.stringify(seed)}: codes and usernames start with ${plan.tag})`);
        out(formatPlan(plan));
        if (!values["no-check"]) {
          const check = await checkUrl(sender);
          if (!check.ok) {
            for (const line of check.lines) out(line);
            if (check.reply.code !== "network") for (const line of await healthHints(host, url, profile)) out(line);
            out("sync not started: the receiver does not accept this profile (--no-check to push anyway)");
            return 1;
          }
          out(`check-url   OK (${check.reply.latencyMs.toFixed(1)} ms)`);
        }
        const bar = new ProgressBar(host);
        const result = await runSync(sender, plan, { concurrency, onProgress: (p) => bar.update(p), now: () => host.now() });
        bar.finish();
        out("");
        out(formatSyncSummary(result, concurrency));
        return result.summary.failed === 0 && result.summary.skipped === 0 ? 0 : 1;
      }
      case "replay": {
        const result = await replay(sender);
        out(`probe       CREATE_ORGANIZATION ${result.probeCode}, nonce ${result.nonce}`);
        out(formatChecks(result.checks));
        out(result.ok ? "replay: all as expected" : "replay: NOT as expected");
        return result.ok ? 0 : 1;
      }
      case "tamper": {
        const result = await tamper(sender);
        out(formatChecks(result.checks));
        out(result.ok ? "tamper: all as expected" : "tamper: NOT as expected");
        return result.ok ? 0 : 1;
      }
    }
    return 2;
  } catch (e) {
    if (e instanceof UsageError) {
      host.stderr(`simulate: ${e.message}\n(npm run simulate -- help)\n`);
      return 2;
    }
    throw e;
  }
}
