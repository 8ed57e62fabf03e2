import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { configDefaults, defineConfig } from "vitest/config";

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * wrangler.toml's [vars] as written. The pool also reads the developer's `.dev.vars`, so every setting is
 * given here explicitly: the tests see the committed defaults (and LOCAL_DEV off, like a deployment), never
 * a value someone set locally to try another profile.
 */
function committedVars(): Record<string, string> {
  const toml = readFileSync(path.join(here, "wrangler.toml"), "utf8");
  const section = /^\[vars\]\s*$([\s\S]*?)(?=^\[)/m.exec(toml)?.[1] ?? "";
  return Object.fromEntries([...section.matchAll(/^([A-Z0-9_]+)\s*=\s*"([^"]*)"\s*$/gm)].map((m) => [m[1]!, m[2]!]));
}
// The contract's vectors (made by an independent implementation; test/fixtures/README.md); tests get them as a binding.
const vectorsPath = process.env.ONEACCESS_VECTORS ?? path.join(here, "test", "fixtures", "oneaccess-vectors.json");

/** Every TypeScript source of the Worker and the tools, by path, for the test of the module map's import rules. */
function sources(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dir of ["src", "sim", "emulator", "bench"]) {
    for (const file of readdirSync(path.join(here, dir), { recursive: true, encoding: "utf8" })) {
      if (/\.tsx?$/.test(file)) out[`${dir}/${file.split(path.sep).join("/")}`] = readFileSync(path.join(here, dir, file), "utf8");
    }
  }
  return out;
}

/**
 * The webhook endpoint of the tests: an auxiliary Worker that the main Worker's outbound `fetch` reaches (every
 * URL), and that tests drive through their WEBHOOK_SINK binding at http://sink.control: `/mode` sets how it
 * answers (a status for all; per webhook-id or per entity id a status or "hang"; a delay), `/received` lists every request it
 * got (headers, body, the status it answered) and the most it held at once, `/reset` forgets them.
 */
const WEBHOOK_SINK_SCRIPT = `
const fresh = () => ({ status: 200, byId: {}, byEntity: {}, delayMs: 0 });
let mode = fresh();
let received = [];
let inFlight = 0;
let maxInFlight = 0;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.host === "sink.control") {
      if (url.pathname === "/mode") { mode = { ...fresh(), ...(await request.json()) }; return new Response("ok"); }
      if (url.pathname === "/received") return Response.json({ received, maxInFlight });
      if (url.pathname === "/reset") { mode = fresh(); received = []; maxInFlight = 0; return new Response("ok"); }
      return new Response("unknown control", { status: 404 });
    }
    const body = await request.text();
    let entityId = null;
    try { entityId = JSON.parse(body).data.entity_id; } catch {}
    const answer = mode.byId[request.headers.get("webhook-id")] ?? mode.byEntity[entityId] ?? mode.status;
    received.push({ url: request.url, method: request.method, headers: Object.fromEntries(request.headers), body, answered: answer, at: Date.now() });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      if (mode.delayMs > 0) await sleep(mode.delayMs);
      if (answer === "hang") { await sleep(30000); return new Response("too late"); }
      return new Response(answer < 300 ? "ok" : "refused", { status: answer });
    } finally {
      inFlight--;
    }
  },
};
`;

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(here, "migrations"));
  const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));
  return {
    plugins: [
      cloudflareTest({
        main: "./src/index.ts",
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          // A second database, for the upgrade test: it starts empty and is migrated one step at a time.
          d1Databases: { UPGRADE_DB: "upgrade-db" },
          // Every outbound fetch of the Worker (the webhook dispatcher's) goes to the sink, never to the network.
          outboundService: "webhook-sink",
          serviceBindings: { WEBHOOK_SINK: "webhook-sink" },
          workers: [{ name: "webhook-sink", modules: true, script: WEBHOOK_SINK_SCRIPT, compatibilityDate: "2026-04-20" }],
          bindings: {
            ...committedVars(),
            LOCAL_DEV: "",
            TEST_MIGRATIONS: migrations,
            SOURCES: sources(),
            // The development secrets file, so a test can check the Worker refuses its public values.
            DEV_VARS_EXAMPLE: readFileSync(path.join(here, ".dev.vars.example"), "utf8"),
            VECTORS: vectors,
            // Test secrets: the vectors' keys, so vector envelopes verify through the Worker too.
            ONEACCESS_BEARER_TOKEN: "test-bearer-token-4f9c2a7e1b8d3c6f0a5e",
            ONEACCESS_SIGNING_KEY: vectors.keys.signingKey,
            ONEACCESS_ENCRYPTION_KEY: vectors.keys.gcmKey,
            ONEACCESS_BEARER_TOKEN_PREVIOUS: "",
            ONEACCESS_SIGNING_KEY_PREVIOUS: "",
            ONEACCESS_ENCRYPTION_KEY_PREVIOUS: "",
            DIRECTORY_API_TOKEN: "test-directory-token-7d2e9b4a0c6f1e8b3a5d",
            // Webhooks off, as deployed by default (WEBHOOK_URL is "" in wrangler.toml); test/webhooks turns them
            // on per object.
            WEBHOOK_SECRET: "",
            WEBHOOK_SECRET_PREVIOUS: "",
            // test/reliability: fast-check runs per property (default 1000), and the other families' scale.
            RELIABILITY_RUNS: process.env.RELIABILITY_RUNS ?? "",
            WRANGLER_TOML: readFileSync(path.join(here, "wrangler.toml"), "utf8"),
          },
        },
      }),
    ],
    test: {
      setupFiles: ["./test/setup.ts"],
      // The default output, then one summary line per reliability family (printed even with --silent).
      reporters: ["default", "./test/reliability/summary-reporter.ts"],
      include: ["test/**/*.test.ts"],
      // test/browser runs in Node (vitest.browser.config.ts), after this suite.
      exclude: [...configDefaults.exclude, "test/browser/**"],
      testTimeout: 60_000,
      hookTimeout: 60_000,
    },
  };
});
