// GET /healthz. Public: only whether the configuration is valid ("ok" / "misconfigured"). With the
// operator's token (DIRECTORY_API_TOKEN as a bearer token): which setting is wrong, the active profile,
// rotations, warnings and what this instance saw. Never a secret's value; never cached.
import { Hono } from "hono";
import { loadConfig, type ConfigProblem } from "../config";
import { diagnostics, type Refusal } from "./diagnostics";
import { bearerToken, directoryAccess, tokensEqual } from "./directory-access";
import type { AppEnv } from "./types";

export const health = new Hono<AppEnv>();

health.get("/", async (c) => {
  c.header("cache-control", "no-store");
  const header = c.req.header("authorization");
  const view = operatorStatus(c.env);
  const status = view.status === "ok" ? 200 : 500;
  if (header === undefined) return c.json({ status: view.status }, status);
  const access = await directoryAccess(c.env);
  const given = bearerToken(header);
  if (!access.enabled || given === null || !(await tokensEqual(given, access.token))) {
    return c.json({ error: "unauthorized", message: "the details need Authorization: Bearer <DIRECTORY_API_TOKEN>" }, 401);
  }
  return c.json(view, status);
});

const SECRETS = [
  "ONEACCESS_BEARER_TOKEN",
  "ONEACCESS_SIGNING_KEY",
  "ONEACCESS_ENCRYPTION_KEY",
  "ONEACCESS_BEARER_TOKEN_PREVIOUS",
  "ONEACCESS_SIGNING_KEY_PREVIOUS",
  "ONEACCESS_ENCRYPTION_KEY_PREVIOUS",
  "DIRECTORY_API_TOKEN",
] as const;

export interface OperatorStatus {
  status: "ok" | "misconfigured";
  problems: ConfigProblem[];
  /** The active profile; null while the configuration is invalid. */
  profile: {
    signature: string;
    encryption: string;
    gcmLayout?: string;
    receiveIdChecked?: boolean;
    timestampToleranceSeconds: number;
    passwordPolicy: string;
    replayShards: number;
    auditRetentionDays: number;
  } | null;
  /** Secret names, whether each is set and whether a missing one is required (never a value). */
  secrets: Array<{ name: string; set: boolean; required: boolean }>;
  rotationInProgress: string[];
  warnings: string[];
  /** This isolate's memory only: OneAccess's requests usually reach other instances (see the logs). */
  seenByThisInstance: {
    recentRefusals: Refusal[];
    signatureHint: { hint: string; at: string } | null;
    previousKeyLastUsed: Record<string, string>;
  };
}

/** The operator's view of the configuration, shared by /healthz (JSON) and /admin (HTML). */
export function operatorStatus(env: Env): OperatorStatus {
  const result = loadConfig(env);
  const problems = result.ok ? [] : result.problems;
  const missing = new Set(problems.map((p) => p.setting));
  const isSet = (name: (typeof SECRETS)[number]) => typeof env[name] === "string" && env[name].trim() !== "";
  const seenByThisInstance = {
    recentRefusals: diagnostics.recentRefusals,
    signatureHint: diagnostics.signatureHint,
    previousKeyLastUsed: diagnostics.previousKeyLastUsed,
  };
  const base = { problems, secrets: SECRETS.map((name) => ({ name, set: isSet(name), required: missing.has(name) })), seenByThisInstance };
  if (!result.ok) return { status: "misconfigured", ...base, profile: null, rotationInProgress: [], warnings: [] };
  const { protocol, rotations, warnings, passwordPolicy, replayShards, auditRetentionDays } = result.config;
  return {
    status: "ok",
    ...base,
    profile: {
      signature: protocol.signature,
      encryption: protocol.encryption,
      ...(protocol.encryption === "aes-gcm" ? { gcmLayout: protocol.gcmLayout } : {}),
      ...(protocol.encryption === "aes-cbc" ? { receiveIdChecked: protocol.receiveId !== "" } : {}),
      timestampToleranceSeconds: protocol.toleranceSeconds,
      passwordPolicy,
      replayShards,
      auditRetentionDays,
    },
    rotationInProgress: rotations,
    warnings,
  };
}
