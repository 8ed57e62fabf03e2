// What `npm run deploy` does, decided without running anything: scripts/deploy.mjs bundles this module
// (like the simulator), prints the plan and runs it, or only prints it with --dry-run. Pure functions of the
// arguments, wrangler.toml's text and wrangler's JSON output, so the tests run them without an account.
import { parseWranglerVars } from "../../sim/core/settings-files";
import { placementFor, type DatabaseHint, type Placement } from "../../src/placement";

export const PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATABASE_ID_LINE = /^(\s*database_id\s*=\s*")([^"]*)(".*)$/;
const SETTING = "ONEACCESS_REGION";

export type Step =
  /** `wrangler d1 create` (its output shown as is), then the new id read back and written into wrangler.toml. */
  | { kind: "create"; args: string[]; readBack: string[]; databaseName: string; line: number }
  /** `wrangler d1 info --json`: the configured database exists, and where it runs when the API says. */
  | { kind: "check"; args: string[]; databaseId: string; expected: DatabaseHint | null }
  | { kind: "run"; args: string[] };

export interface Plan {
  ok: true;
  dryRun: boolean;
  placement: Placement | null;
  /** Printed before anything runs, in a dry run too. */
  notes: string[];
  steps: Step[];
}

export type PlanResult = Plan | { ok: false; message: string };

interface Args {
  dryRun: boolean;
  /** --region's value (undefined when not given). */
  region: string | undefined;
  /** Everything else, for `wrangler deploy`. */
  rest: string[];
}

function parseArgs(argv: readonly string[]): { ok: true; args: Args } | { ok: false; message: string } {
  const args: Args = { dryRun: false, region: undefined, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--dry-run") args.dryRun = true;
    else if (a.startsWith("--region=")) args.region = a.slice("--region=".length);
    else if (a === "--region") {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith("--")) return { ok: false, message: "deploy: --region needs a Huawei Cloud region id (docs/placement.md)" };
      args.region = value;
      i++;
    } else args.rest.push(a);
  }
  return { ok: true, args };
}

/** The `database_id` lines of wrangler.toml, with their 1-based line numbers. */
function databaseIdLines(toml: string): Array<{ line: number; id: string }> {
  return toml.split("\n").flatMap((text, i) => {
    const m = DATABASE_ID_LINE.exec(text);
    return m ? [{ line: i + 1, id: m[2]! }] : [];
  });
}

function databaseName(toml: string): string {
  return /^\s*database_name\s*=\s*"([^"]+)"/m.exec(toml)?.[1] ?? "oneaccess-directory";
}

/** The hints, said the same way in the plan and in the dry run. */
function placementNote(p: Placement | null, source: string): string {
  if (!p) return `${SETTING} is empty (${source}): no location hints; docs/placement.md says why to set it`;
  return `${SETTING}=${p.region} (${p.name}, ${source}): D1 location hint ${p.database}, event ledger locationHint ${p.ledger}`;
}

/** The refusal of today's script for a database_id that is neither a real id nor the placeholder. */
function noDatabaseId(found: string | undefined, name: string, hint: DatabaseHint | null): string {
  return `deploy: wrangler.toml has no real D1 database_id yet (it says "${found ?? "nothing"}").

  1. npx wrangler login
  2. npx wrangler d1 create ${name}${hint ? ` --location ${hint}` : ""}
     (prints a block with  database_id = "<uuid>")
  3. paste that uuid into wrangler.toml, [[d1_databases]] database_id, and commit it
     (or put back the placeholder ${PLACEHOLDER_ID}: npm run deploy then creates the database itself)
  4. npm run deploy
  5. set the secrets: npx wrangler secret put ONEACCESS_BEARER_TOKEN, and the others (README, "Deploy")

Nothing was deployed.`;
}

/**
 * The plan for these arguments and this wrangler.toml. The region comes from [vars] ONEACCESS_REGION, or
 * from --region, which then also goes to `wrangler deploy` as a --var so the objects get the same hint.
 */
export function planDeploy(argv: readonly string[], toml: string): PlanResult {
  const parsed = parseArgs(argv);
  if (!parsed.ok) return parsed;
  const { dryRun, region, rest } = parsed.args;
  const configured = parseWranglerVars(toml)[SETTING] ?? "";
  const fromFlag = region !== undefined;
  const placed = placementFor(fromFlag ? region : configured);
  if (!placed.ok) {
    const where = fromFlag ? `--region "${region}"` : `${SETTING} = "${configured}" in wrangler.toml [vars]`;
    return { ok: false, message: `deploy: ${where} ${placed.problem}.\n\nNothing was run.` };
  }
  const placement = placed.placement;
  const hint = placement?.database ?? null;
  const notes = [placementNote(placement, fromFlag ? "from --region" : "from wrangler.toml [vars]")];
  const deployArgs = ["deploy", ...rest];
  const configuredPlacement = placementFor(configured);
  const differs = !configuredPlacement.ok || (configuredPlacement.placement?.region ?? "") !== (placement?.region ?? "");
  if (fromFlag && differs) {
    deployArgs.push("--var", `${SETTING}:${placement?.region ?? ""}`);
    notes.push(`--region overrides wrangler.toml's ${SETTING} ("${configured}") for this deploy only: set it in wrangler.toml [vars] to keep it`);
  }

  const name = databaseName(toml);
  const ids = databaseIdLines(toml);
  const migrateAndDeploy: Step[] = [
    { kind: "run", args: ["d1", "migrations", "apply", "DB", "--remote"] },
    { kind: "run", args: deployArgs },
  ];
  if (ids.length === 1 && ids[0]!.id === PLACEHOLDER_ID) {
    if (!placement) notes.push("the new database will be created near this machine (no --location): set ONEACCESS_REGION first unless OneAccess calls from here");
    const create: Step = {
      kind: "create",
      args: ["d1", "create", name, ...(hint ? ["--location", hint] : [])],
      readBack: ["d1", "list", "--json"],
      databaseName: name,
      line: ids[0]!.line,
    };
    return { ok: true, dryRun, placement, notes, steps: [create, ...migrateAndDeploy] };
  }
  const bad = ids.find((entry) => !UUID.test(entry.id));
  if (ids.length === 0 || bad) return { ok: false, message: noDatabaseId(bad?.id, name, hint) };
  const check: Step = { kind: "check", args: ["d1", "info", "DB", "--json"], databaseId: ids[0]!.id, expected: hint };
  return { ok: true, dryRun, placement, notes, steps: [check, ...migrateAndDeploy] };
}

/** A wrangler command as it would be typed (arguments with spaces or quotes quoted). */
export function commandLine(args: readonly string[]): string {
  const quoted = args.map((a) => (a === "" || /[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a));
  return ["wrangler", ...quoted].join(" ");
}

/** A dry run's account of one step: the commands, then what is done with their output. */
export function describeStep(step: Step): string[] {
  const command = (args: string[]) => `would run: ${commandLine(args)}`;
  switch (step.kind) {
    case "create":
      return [
        command(step.args),
        command(step.readBack),
        `  then write the id of "${step.databaseName}" from that list into wrangler.toml line ${step.line} (database_id)`,
      ];
    case "check":
      return [
        command(step.args),
        `  then check that database ${step.databaseId} exists${step.expected ? `, and that it runs in ${step.expected} when the API says where it runs` : ""}`,
      ];
    case "run":
      return [command(step.args)];
  }
}

/** The id of the database named `name` in `wrangler d1 list --json`'s output. */
export function databaseIdFromList(output: string, name: string): { ok: true; id: string } | { ok: false; why: string } {
  let list: unknown;
  try {
    list = JSON.parse(jsonPart(output, "["));
  } catch {
    return { ok: false, why: "wrangler d1 list printed no JSON list" };
  }
  if (!Array.isArray(list)) return { ok: false, why: "wrangler d1 list printed no JSON list" };
  const named = list.filter((db): db is { uuid: unknown } => typeof db === "object" && db !== null && (db as { name?: unknown }).name === name);
  if (named.length !== 1) return { ok: false, why: `wrangler d1 list shows ${named.length} databases named "${name}"` };
  const id = named[0]!.uuid;
  if (typeof id !== "string" || !UUID.test(id)) return { ok: false, why: `the database named "${name}" has no uuid in wrangler d1 list` };
  return { ok: true, id };
}

/**
 * wrangler.toml with the placeholder replaced by `id` on its one line, every other byte unchanged; null
 * unless there is exactly one placeholder line and `id` is a uuid (then the user is told where to paste it).
 */
export function withDatabaseId(toml: string, id: string): string | null {
  if (!UUID.test(id)) return null;
  const lines = toml.split("\n");
  const at = lines.flatMap((text, i) => (DATABASE_ID_LINE.exec(text)?.[2] === PLACEHOLDER_ID ? [i] : []));
  if (at.length !== 1 || databaseIdLines(toml).length !== 1) return null;
  lines[at[0]!] = lines[at[0]!]!.replace(DATABASE_ID_LINE, (_m, head: string, _old: string, tail: string) => `${head}${id}${tail}`);
  return lines.join("\n");
}

/** Fields of the D1 API's database details that may say where it runs (not every API version has one). */
const LOCATION_FIELDS = ["running_in_region", "created_in_region", "primary_location_hint"];

/**
 * `wrangler d1 info --json`'s output against what wrangler.toml says: the database must be the configured
 * one (`ok: false` otherwise); a location that differs from the hint is a warning, since the database does
 * not move (docs/placement.md says how to move it).
 */
export function checkDatabaseInfo(output: string, databaseId: string, expected: DatabaseHint | null): { ok: boolean; lines: string[] } {
  let info: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(jsonPart(output, "{"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TypeError("not an object");
    info = parsed as Record<string, unknown>;
  } catch {
    return { ok: false, lines: ["wrangler d1 info printed no JSON object: the database could not be checked"] };
  }
  if (typeof info.uuid === "string" && info.uuid.toLowerCase() !== databaseId.toLowerCase()) {
    return { ok: false, lines: [`wrangler d1 info describes database ${info.uuid}, not wrangler.toml's ${databaseId}`] };
  }
  const lines = [`database ${typeof info.name === "string" ? `"${info.name}" ` : ""}${databaseId} exists`];
  const field = LOCATION_FIELDS.find((f) => typeof info[f] === "string" && info[f] !== "");
  const location = field ? (info[field] as string).toLowerCase() : null;
  if (location === null) {
    lines.push(`its location is not in the API's answer, so it is not checked${expected ? ` against ${expected}` : ""}`);
  } else if (expected === null || location === expected) {
    lines.push(`it runs in ${location}${expected ? ", as ONEACCESS_REGION asks" : ""}`);
  } else {
    lines.push(
      `warning: it runs in ${location}, not ${expected} as ONEACCESS_REGION asks: a D1 database does not move; docs/placement.md says how to move it`,
    );
  }
  return { ok: true, lines };
}

/** The JSON in a command's output, from its first `open` bracket (anything printed before it is skipped). */
function jsonPart(output: string, open: "[" | "{"): string {
  const start = output.indexOf(open);
  return start < 0 ? output : output.slice(start);
}
