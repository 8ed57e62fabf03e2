// GET /healthz: is the configuration valid, and if not which setting is wrong. Never a value.
import { Hono } from "hono";
import { loadConfig, type Config } from "../config";
import { diagnostics } from "./diagnostics";
import type { AppEnv } from "./types";

export const health = new Hono<AppEnv>();

health.get("/", (c) => {
  const result = loadConfig(c.env as unknown as Record<string, unknown>);
  if (!result.ok) {
    return c.json({ status: "misconfigured", problems: result.problems, hints: signatureHints() }, 500);
  }
  return c.json({ status: "ok", ...statusView(result.config) });
});

function signatureHints() {
  return diagnostics.signatureHint ? [diagnostics.signatureHint] : [];
}

/**
 * What the operator needs to see about a valid configuration: the profile, rotations in progress, safe-
 * default warnings and the last diagnostics. Names and settings only, never a secret's value. Shared by
 * /healthz and any operator page.
 */
export function statusView(config: Config) {
  const { protocol, rotations, warnings, passwordPolicy, replayShards, auditRetentionDays } = config;
  return {
    profile: {
      signature: protocol.signature,
      encryption: protocol.encryption,
      gcmLayout: protocol.encryption === "aes-gcm" ? protocol.gcmLayout : undefined,
      receiveIdChecked: protocol.encryption === "aes-cbc" ? protocol.receiveId !== "" : undefined,
      timestampToleranceSeconds: protocol.toleranceSeconds,
      passwordPolicy,
      replayShards,
      auditRetentionDays,
    },
    // Names only. During a rotation, when this isolate last saw each old value accepted: once OneAccess has
    // switched to the new value these stop moving, and the `*_PREVIOUS` secret can be deleted.
    rotationInProgress: rotations,
    previousKeyLastUsed: Object.fromEntries(
      rotations.filter((name) => diagnostics.previousKeyLastUsed[name]).map((name) => [name, diagnostics.previousKeyLastUsed[name]]),
    ),
    warnings,
    hints: signatureHints(),
    lastAuthFailure: diagnostics.lastAuthFailure,
  };
}
