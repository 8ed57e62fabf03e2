import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { TestEnv } from "./helpers/env";

// Setup files run before each test file; applyD1Migrations skips what is already applied.
const testEnv = env as unknown as TestEnv;
await applyD1Migrations(testEnv.DB, testEnv.TEST_MIGRATIONS);
