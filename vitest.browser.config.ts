// The browser test (test/browser/): runs in Node, not workerd. It starts `wrangler dev` itself and drives
// Debian's Chromium (/usr/bin/chromium) with playwright-core. `npm test` runs it after the workerd suite.
import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

// On a developer's machine without Chromium the browser test is skipped with a notice, so the quickstart's
// `npm test` works anywhere; CI (CI=true) installs Chromium in .ci/run and never skips it.
const chromiumMissing = !existsSync("/usr/bin/chromium") && !process.env.CI;
if (chromiumMissing) {
  console.warn("browser test skipped: /usr/bin/chromium is missing (apt-get install chromium to run it)");
}

export default defineConfig({
  test: {
    environment: "node",
    include: chromiumMissing ? [] : ["test/browser/**/*.test.ts"],
    passWithNoTests: chromiumMissing,
    // One wrangler dev and one browser at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
