// The Node-side tests, run after the workerd suite by `npm test`: the browser test (test/browser/), which
// starts `wrangler dev` itself and drives Debian's Chromium (/usr/bin/chromium) with playwright-core, and the
// smoke test of the three-terminal flow (test/smoke/: wrangler dev, simulate listen, simulate sync).
import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

// On a developer's machine without Chromium the browser test is skipped with a notice, so the quickstart's
// `npm test` works anywhere; CI (CI=true) installs Chromium in .ci/run and never skips it. The smoke test
// needs no browser and always runs.
const chromiumMissing = !existsSync("/usr/bin/chromium") && !process.env.CI;
if (chromiumMissing) {
  console.warn("browser test skipped: /usr/bin/chromium is missing (apt-get install chromium to run it)");
}

export default defineConfig({
  test: {
    environment: "node",
    // *.smoke.ts: the workerd suite takes every test/**/*.test.ts, and these start Node processes.
    include: [...(chromiumMissing ? [] : ["test/browser/**/*.test.ts"]), "test/smoke/**/*.smoke.ts"],
    // One wrangler dev and one browser at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
