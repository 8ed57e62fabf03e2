#!/usr/bin/env node
// `npm run deploy`: put the D1 database where ONEACCESS_REGION says (creating it while wrangler.toml still
// has the placeholder database_id, checking it otherwise), apply the D1 migrations to it, then deploy the
// Worker. What it runs is planned by scripts/lib/deploy-plan.ts; this file only runs it.
//   npm run deploy -- --dry-run              print every command, run none (no account, no network)
//   npm run deploy -- --region cn-north-4    another region than wrangler.toml's [vars], for this deploy
// Other arguments go to `wrangler deploy` (`npm run deploy -- --message "rotate keys"`).
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { importBundled, root } from "./lib/bundle.mjs";

const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };
const tomlPath = path.join(root, "wrangler.toml");

let plans;
try {
  plans = await importBundled("scripts/lib/deploy-plan.ts", "oneaccess-deploy");
} catch (e) {
  console.error(`deploy: could not load scripts/lib/deploy-plan.ts (${e instanceof Error ? e.message : e}); run npm install first`);
  process.exit(1);
}
const { planDeploy, describeStep, commandLine, databaseIdFromList, withDatabaseId, checkDatabaseInfo } = plans;

const plan = planDeploy(process.argv.slice(2), readFileSync(tomlPath, "utf8"));
if (!plan.ok) {
  console.error(plan.message);
  process.exit(1);
}
for (const note of plan.notes) console.log(`deploy: ${note}`);

if (plan.dryRun) {
  console.log("deploy: dry run: nothing is run and nothing is changed; a deploy would do this:");
  for (const step of plan.steps) for (const line of describeStep(step)) console.log(`deploy: ${line}`);
  process.exit(0);
}

/** Runs wrangler with the terminal (its prompts and login work); stops the deploy when it fails. */
function run(args, help = "") {
  console.log(`deploy: ${commandLine(args)}`);
  const r = spawnSync(wrangler, args, { cwd: root, env, stdio: "inherit" });
  stopUnlessDone(r, args, help);
}

/** Runs wrangler for its output (so without a terminal: it cannot log in or prompt). */
function capture(args, help = "") {
  console.log(`deploy: ${commandLine(args)}`);
  const r = spawnSync(wrangler, args, { cwd: root, env, stdio: ["inherit", "pipe", "inherit"], encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0 && r.stdout) process.stdout.write(r.stdout);
  stopUnlessDone(r, args, help);
  return r.stdout;
}

function stopUnlessDone(r, args, help) {
  if (r.error) {
    console.error(`deploy: could not run wrangler (${r.error.message}); run npm install first`);
    process.exit(1);
  }
  if (r.status !== 0) {
    const command = args[0] === "d1" ? args.slice(0, 2).join(" ") : args[0];
    console.error(`deploy: wrangler ${command} failed (exit ${r.status}); nothing after it was run${help}`);
    process.exit(r.status ?? 1);
  }
}

const NOT_READ = `
  Not logged in? npx wrangler login (in CI: CLOUDFLARE_API_TOKEN). Several accounts? set CLOUDFLARE_ACCOUNT_ID.`;

for (const step of plan.steps) {
  if (step.kind === "run") {
    run(step.args);
  } else if (step.kind === "create") {
    const pasteHere = `put its id into wrangler.toml line ${step.line} (database_id; keep binding = "DB"), commit it, and run npm run deploy again`;
    run(step.args, `.\n  If it says the database already exists: npx wrangler d1 list shows its id; ${pasteHere}.`);
    const found = databaseIdFromList(capture(step.readBack, `.${NOT_READ}\n  The database was created: npx wrangler d1 list shows its id; ${pasteHere}.`), step.databaseName);
    const updated = found.ok ? withDatabaseId(readFileSync(tomlPath, "utf8"), found.id) : null;
    if (!found.ok || updated === null) {
      console.error(`deploy: the database was created but its id was not written (${found.ok ? "wrangler.toml changed meanwhile" : found.why}):
  ${found.ok ? `its id is ${found.id}; ` : "npx wrangler d1 list shows its id; "}${pasteHere}.

Nothing was deployed.`);
      process.exit(1);
    }
    // One line changes: the placeholder becomes the new id; commit it (the id is not a secret).
    writeFileSync(tomlPath, updated);
    console.log(`deploy: wrangler.toml line ${step.line} now says database_id = "${found.id}": commit it`);
  } else if (step.kind === "check") {
    const checked = checkDatabaseInfo(capture(step.args, `: the database_id of wrangler.toml could not be read.${NOT_READ}
  Deleted, or another account's database? npx wrangler d1 list.`), step.databaseId, step.expected);
    for (const line of checked.lines) (checked.ok ? console.log : console.error)(`deploy: ${line}`);
    if (!checked.ok) {
      console.error("deploy: nothing after it was run");
      process.exit(1);
    }
  }
}
console.log("deploy: done. Check https://<worker>.<subdomain>.workers.dev/healthz (README, \"Deploy\").");
