#!/usr/bin/env node
// `npm run deploy`: apply the D1 migrations to the remote database, then deploy the Worker.
// Refuses to run while wrangler.toml still carries the placeholder database_id, and says what to do.
// Extra arguments go to `wrangler deploy` (`npm run deploy -- --message "rotate keys"`).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };
const PLACEHOLDER = "00000000-0000-0000-0000-000000000000";

const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");
const ids = [...toml.matchAll(/^\s*database_id\s*=\s*"([^"]*)"/gm)].map((m) => m[1]);
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
if (ids.length === 0 || ids.some((id) => id === PLACEHOLDER || !uuid.test(id))) {
  console.error(`deploy: wrangler.toml has no real D1 database_id yet (it still says "${ids[0] ?? "nothing"}").

  1. npx wrangler login
  2. npx wrangler d1 create oneaccess-directory
     (prints a block with  database_id = "<uuid>")
  3. paste that uuid into wrangler.toml, [[d1_databases]] database_id, and commit it
  4. npm run deploy
  5. set the secrets: npx wrangler secret put ONEACCESS_BEARER_TOKEN, and the others (README, "Deploy")

Nothing was deployed.`);
  process.exit(1);
}

function run(args) {
  console.log(`deploy: wrangler ${args.join(" ")}`);
  const r = spawnSync(wrangler, args, { cwd: root, env, stdio: "inherit" });
  if (r.error) {
    console.error(`deploy: could not run wrangler (${r.error.message}); run npm install first`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`deploy: wrangler ${args[0]} failed (exit ${r.status}); nothing after it was run`);
    process.exit(r.status ?? 1);
  }
}

// Migrations first: the new code may need the new schema, and the old code tolerates additive changes.
run(["d1", "migrations", "apply", "DB", "--remote"]);
run(["deploy", ...process.argv.slice(2)]);
console.log("deploy: done. Check https://<worker>.<subdomain>.workers.dev/healthz (README, \"Deploy\").");
