// The browser test (test/browser/): runs in Node, not workerd. It starts `wrangler dev` itself and drives
// Debian's Chromium (/usr/bin/chromium) with playwright-core. `npm test` runs it after the workerd suite.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
    include: ["test/browser/**/*.test.ts"],
    // One wrangler dev and one browser at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
