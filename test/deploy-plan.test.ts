// `npm run deploy`'s plan (scripts/lib/deploy-plan.ts): which wrangler commands run, with which location
// hint, for each state of wrangler.toml; and what is made of wrangler's JSON output. The expected commands
// are literals: they are what a user will see, and what a dry run prints.
import { describe, expect, it } from "vitest";
import {
  checkDatabaseInfo,
  commandLine,
  databaseIdFromList,
  describeStep,
  planDeploy,
  withDatabaseId,
  type Plan,
  type PlanResult,
} from "../scripts/lib/deploy-plan";
import placementDoc from "../docs/placement.md?raw";
import { testEnv } from "./helpers/worker";

const PLACEHOLDER = "00000000-0000-0000-0000-000000000000";
const REAL_ID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

/** wrangler.toml as committed (vitest.config.ts hands it over; TestEnv does not declare it). */
const committed = (testEnv as unknown as { WRANGLER_TOML: string }).WRANGLER_TOML;
function toml(region: string | null, id = PLACEHOLDER): string {
  const withRegion = region === null ? committed : committed.replace(/^ONEACCESS_REGION = ".*"$/m, `ONEACCESS_REGION = "${region}"`);
  return withRegion.replace(`database_id = "${PLACEHOLDER}"`, `database_id = "${id}"`);
}

function planned(r: PlanResult): Plan {
  if (!r.ok) throw new Error(`refused: ${r.message}`);
  return r;
}
/** The plan as the dry run prints it (without the "deploy: " prefix). */
const dryRun = (p: Plan) => p.steps.flatMap(describeStep);
const commands = (p: Plan) => dryRun(p).filter((line) => line.startsWith("would run: "));

describe("the committed wrangler.toml", () => {
  it("has the placeholder database_id and an empty ONEACCESS_REGION", () => {
    expect(committed).toContain(`database_id = "${PLACEHOLDER}"`);
    expect(committed).toMatch(/^ONEACCESS_REGION = ""$/m);
  });

  it("dry run: creates the database without a hint, reads its id back, migrates and deploys", () => {
    const p = planned(planDeploy(["--dry-run"], committed));
    expect(p.dryRun).toBe(true);
    expect(p.placement).toBe(null);
    expect(dryRun(p)).toEqual([
      "would run: wrangler d1 create oneaccess-directory",
      "would run: wrangler d1 list --json",
      `  then write the id of "oneaccess-directory" from that list into wrangler.toml line ${lineOf(committed, "database_id")} (database_id)`,
      "would run: wrangler d1 migrations apply DB --remote",
      "would run: wrangler deploy",
    ]);
    expect(p.notes.join("\n")).toMatch(/ONEACCESS_REGION is empty/);
    expect(p.notes.join("\n")).toMatch(/created near this machine/);
  });
});

describe("docs/placement.md", () => {
  it("shows the dry run of the committed wrangler.toml as the script prints it", () => {
    const p = planned(planDeploy(["--dry-run"], committed));
    // deploy.mjs prints the notes, one line, then each step's lines, all after "deploy: ".
    const printed = [...p.notes, "dry run: nothing is run and nothing is changed; a deploy would do this:", ...dryRun(p)].map((l) => `  deploy: ${l}`);
    expect(placementDoc).toContain(["  ```text", ...printed, "  ```"].join("\n"));
  });
});

function lineOf(text: string, start: string): number {
  return text.split("\n").findIndex((l) => l.startsWith(start)) + 1;
}

describe("planDeploy: the placeholder database_id (first deploy)", () => {
  it("creates the database with the region's D1 hint, and says both hints", () => {
    const p = planned(planDeploy(["--dry-run"], toml("sa-brazil-1")));
    expect(commands(p)).toEqual([
      "would run: wrangler d1 create oneaccess-directory --location enam",
      "would run: wrangler d1 list --json",
      "would run: wrangler d1 migrations apply DB --remote",
      "would run: wrangler deploy",
    ]);
    expect(p.notes).toEqual([
      "ONEACCESS_REGION=sa-brazil-1 (LA-Sao Paulo1, from wrangler.toml [vars]): D1 location hint enam, event ledger locationHint enam",
    ]);
  });

  it("the same plan without --dry-run, marked to be run", () => {
    const p = planned(planDeploy([], toml("cn-north-4")));
    expect(p.dryRun).toBe(false);
    expect(p.steps[0]).toEqual({
      kind: "create",
      args: ["d1", "create", "oneaccess-directory", "--location", "apac"],
      readBack: ["d1", "list", "--json"],
      databaseName: "oneaccess-directory",
      line: lineOf(committed, "database_id"),
    });
  });

  it("--region overrides [vars] for the database and, through --var, for the Worker", () => {
    const p = planned(planDeploy(["--region", "af-south-1", "--dry-run"], toml("")));
    expect(commands(p)).toEqual([
      "would run: wrangler d1 create oneaccess-directory --location weur",
      "would run: wrangler d1 list --json",
      "would run: wrangler d1 migrations apply DB --remote",
      "would run: wrangler deploy --var ONEACCESS_REGION:af-south-1",
    ]);
    expect(p.notes[1]).toMatch(/--region overrides wrangler.toml's ONEACCESS_REGION/);
  });

  it("--region=… works too, and the same region as [vars] (in any case) adds no --var", () => {
    const p = planned(planDeploy(["--region=AP-SOUTHEAST-3"], toml("ap-southeast-3")));
    expect(p.steps.at(-1)).toEqual({ kind: "run", args: ["deploy"] });
    expect(p.notes).toHaveLength(1);
  });
});

describe("planDeploy: a real database_id (later deploys)", () => {
  it("checks the database, then migrates and deploys as before", () => {
    const p = planned(planDeploy(["--dry-run"], toml("me-east-1", REAL_ID)));
    expect(dryRun(p)).toEqual([
      "would run: wrangler d1 info DB --json",
      `  then check that database ${REAL_ID} exists, and that it runs in weur when the API says where it runs`,
      "would run: wrangler d1 migrations apply DB --remote",
      "would run: wrangler deploy",
    ]);
    expect(p.steps[0]).toEqual({ kind: "check", args: ["d1", "info", "DB", "--json"], databaseId: REAL_ID, expected: "weur" });
  });

  it("without a region: only that the database exists", () => {
    const p = planned(planDeploy([], toml("", REAL_ID)));
    expect(dryRun(p)[1]).toBe(`  then check that database ${REAL_ID} exists`);
    expect(p.steps[0]).toMatchObject({ kind: "check", expected: null });
  });

  it("passes every other argument to wrangler deploy, in order", () => {
    const p = planned(planDeploy(["--message", "rotate keys", "--dry-run", "--keep-vars"], toml("", REAL_ID)));
    expect(p.steps.at(-1)).toEqual({ kind: "run", args: ["deploy", "--message", "rotate keys", "--keep-vars"] });
    expect(commands(p).at(-1)).toBe("would run: wrangler deploy --message 'rotate keys' --keep-vars");
  });
});

describe("planDeploy: refusals (nothing is run)", () => {
  it("an unknown ONEACCESS_REGION in [vars]", () => {
    const r = planDeploy(["--dry-run"], toml("eu-central-1"));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^deploy: ONEACCESS_REGION = "eu-central-1" in wrangler.toml \[vars\] must be a Huawei Cloud region id/);
  });

  it("an unknown --region, even when [vars] is fine", () => {
    const r = planDeploy(["--region", "singapore"], toml("ap-southeast-3"));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^deploy: --region "singapore" must be/);
  });

  it("--region without a value", () => {
    for (const argv of [["--region"], ["--region", "--dry-run"]]) {
      const r = planDeploy(argv, toml(""));
      expect(r).toEqual({ ok: false, message: "deploy: --region needs a Huawei Cloud region id (docs/placement.md)" });
    }
  });

  it("a database_id that is neither the placeholder nor a uuid: the old instructions, with the hint", () => {
    const r = planDeploy([], toml("ap-southeast-3", "paste-me"));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toContain('deploy: wrangler.toml has no real D1 database_id yet (it says "paste-me").');
    expect(r.message).toContain("npx wrangler d1 create oneaccess-directory --location apac");
    expect(r.message).toMatch(/Nothing was deployed\.$/);
  });

  it("no database_id at all", () => {
    const r = planDeploy([], committed.replace(/^database_id = .*$/m, ""));
    expect(r.ok ? "" : r.message).toContain('(it says "nothing")');
  });
});

describe("reading wrangler's output", () => {
  const list = JSON.stringify([
    { uuid: "11111111-2222-4333-8444-555555555555", name: "something-else" },
    { uuid: REAL_ID, name: "oneaccess-directory", created_at: "2026-04-20T10:00:00Z" },
  ]);

  it("the new database's id from wrangler d1 list --json, by name", () => {
    expect(databaseIdFromList(list, "oneaccess-directory")).toEqual({ ok: true, id: REAL_ID });
    expect(databaseIdFromList(`some banner\n${list}`, "oneaccess-directory")).toEqual({ ok: true, id: REAL_ID });
    expect(databaseIdFromList(list, "missing")).toEqual({ ok: false, why: 'wrangler d1 list shows 0 databases named "missing"' });
    expect(databaseIdFromList("not json", "oneaccess-directory").ok).toBe(false);
    expect(databaseIdFromList('{"uuid":"x"}', "oneaccess-directory").ok).toBe(false);
    expect(databaseIdFromList('[{"name":"oneaccess-directory","uuid":"nope"}]', "oneaccess-directory").ok).toBe(false);
  });

  it("writes the id over the placeholder and changes nothing else", () => {
    const updated = withDatabaseId(committed, REAL_ID);
    expect(updated).not.toBe(null);
    const before = committed.split("\n");
    const after = updated!.split("\n");
    expect(after).toHaveLength(before.length);
    const changed = after.flatMap((line, i) => (line !== before[i] ? [[before[i], line]] : []));
    expect(changed).toEqual([[`database_id = "${PLACEHOLDER}"`, `database_id = "${REAL_ID}"`]]);
  });

  it("writes nothing unless there is exactly one placeholder and the id is a uuid", () => {
    expect(withDatabaseId(toml("", REAL_ID), REAL_ID)).toBe(null);
    expect(withDatabaseId(committed, "not-a-uuid")).toBe(null);
    const two = committed.replace(/^database_id = .*$/m, (line: string) => `${line}\n${line}`);
    expect(withDatabaseId(two, REAL_ID)).toBe(null);
  });

  it("d1 info: the database exists, and where it runs when the API says", () => {
    const info = (extra: Record<string, unknown>) => JSON.stringify({ uuid: REAL_ID, name: "oneaccess-directory", num_tables: 6, ...extra });
    expect(checkDatabaseInfo(info({ running_in_region: "APAC" }), REAL_ID, "apac")).toEqual({
      ok: true,
      lines: [`database "oneaccess-directory" ${REAL_ID} exists`, "it runs in apac, as ONEACCESS_REGION asks"],
    });
    const elsewhere = checkDatabaseInfo(info({ running_in_region: "WEUR" }), REAL_ID, "apac");
    expect(elsewhere.ok).toBe(true);
    expect(elsewhere.lines[1]).toMatch(/^warning: it runs in weur, not apac as ONEACCESS_REGION asks: a D1 database does not move/);
    expect(checkDatabaseInfo(info({}), REAL_ID, "apac").lines[1]).toBe("its location is not in the API's answer, so it is not checked against apac");
    expect(checkDatabaseInfo(info({ running_in_region: "ENAM" }), REAL_ID, null).lines[1]).toBe("it runs in enam");
  });

  it("d1 info about another database, or no JSON: not ok", () => {
    expect(checkDatabaseInfo(JSON.stringify({ uuid: "11111111-2222-4333-8444-555555555555" }), REAL_ID, null).ok).toBe(false);
    expect(checkDatabaseInfo("✘ [ERROR] something", REAL_ID, null).ok).toBe(false);
    expect(checkDatabaseInfo("[1, 2]", REAL_ID, null).ok).toBe(false);
  });

  it("prints commands as they would be typed", () => {
    expect(commandLine(["deploy", "--message", "it's done", "--var", "ONEACCESS_REGION:cn-north-4", ""])).toBe(
      "wrangler deploy --message 'it'\\''s done' --var ONEACCESS_REGION:cn-north-4 ''",
    );
  });
});
