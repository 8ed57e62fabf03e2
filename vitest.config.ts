import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { configDefaults, defineConfig } from "vitest/config";

const here = path.dirname(fileURLToPath(import.meta.url));
// The contract's vectors stay in ../shared (made by an independent implementation); tests get them as a binding.
const vectorsPath = process.env.ONEACCESS_VECTORS ?? path.join(here, "..", "shared", "vectors", "oneaccess-vectors.json");

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(here, "migrations"));
  const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));
  return {
    plugins: [
      cloudflareTest({
        main: "./src/index.ts",
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            VECTORS: vectors,
            // Test secrets: the vectors' keys, so vector envelopes verify through the Worker too.
            ONEACCESS_BEARER_TOKEN: "test-bearer-token",
            ONEACCESS_SIGNING_KEY: vectors.keys.signingKey,
            ONEACCESS_ENCRYPTION_KEY: vectors.keys.gcmKey,
            ONEACCESS_BEARER_TOKEN_PREVIOUS: "",
            ONEACCESS_SIGNING_KEY_PREVIOUS: "",
            ONEACCESS_ENCRYPTION_KEY_PREVIOUS: "",
            DIRECTORY_API_TOKEN: "test-directory-token",
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
