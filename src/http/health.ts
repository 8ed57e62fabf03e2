// GET /healthz: is the configuration valid, and if not which setting is wrong. Never a value.
import { Hono } from "hono";
import { loadConfig } from "../config";
import { diagnostics } from "./diagnostics";
import type { AppEnv } from "./types";

export const health = new Hono<AppEnv>();

health.get("/", (c) => {
  const result = loadConfig(c.env as unknown as Record<string, unknown>);
  const hints = diagnostics.signatureHint ? [diagnostics.signatureHint] : [];
  if (!result.ok) {
    return c.json({ status: "misconfigured", problems: result.problems, hints }, 500);
  }
  const { protocol, rotations, warnings, passwordPolicy, replayShards } = result.config;
  return c.json({
    status: "ok",
    profile: {
      signature: protocol.signature,
      encryption: protocol.encryption,
      gcmLayout: protocol.encryption === "aes-gcm" ? protocol.gcmLayout : undefined,
      receiveIdChecked: protocol.encryption === "aes-cbc" ? protocol.receiveId !== "" : undefined,
      timestampToleranceSeconds: protocol.toleranceSeconds,
      passwordPolicy,
      replayShards,
    },
    // Names only. During a rotation, when this isolate last saw each old value accepted: once OneAccess has
    // switched to the new value these stop moving, and the `*_PREVIOUS` secret can be deleted.
    rotationInProgress: rotations,
    previousKeyLastUsed: Object.fromEntries(
      rotations.filter((name) => diagnostics.previousKeyLastUsed[name]).map((name) => [name, diagnostics.previousKeyLastUsed[name]]),
    ),
    warnings,
    hints,
    lastAuthFailure: diagnostics.lastAuthFailure,
  });
});
