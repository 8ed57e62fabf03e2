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
