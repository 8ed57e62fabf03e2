// Configuration (contract section 7): read once per isolate, validated, never echoed. A problem names the
// setting, never its value.
import { cbcKeyBytes } from "./protocol/cbc";
import type { EncryptionAlgorithm, ProtocolSettings } from "./protocol/callback";
import { GCM_LAYOUTS, isValidGcmKey, type GcmLayoutSetting } from "./protocol/gcm";
import type { SignatureAlgorithm } from "./protocol/signature";
import { placementFor, type Placement } from "./placement";

export type PasswordPolicy = "drop" | "pbkdf2";

/**
 * LOG_LEVEL: which callback lines are written. `log` (default) writes every one; `warn` only refusals,
 * failed audit writes and 5xx; `error` only 5xx.
 */
export type LogLevel = "log" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["log", "warn", "error"];

/** Shortest bearer or API token accepted: a shared secret typed by a person must still not be guessable. */
export const MIN_TOKEN_LENGTH = 32;
/** Largest MAX_BODY_BYTES: a Worker has 128 MB, and no OneAccess event comes near a few MiB. */
export const MAX_BODY_BYTES_CEILING = 4_194_304;

/**
 * The secrets committed in `.dev.vars.example`, public on purpose: a Worker refuses them unless LOCAL_DEV is
 * "true", which only that file sets (a deployment never uploads `.dev.vars`).
 */
export const PUBLIC_DEVELOPMENT_VALUES: readonly string[] = [
  "dev-bearer-token-public-never-deploy-0001",
  "devSigningKeyPub",
  "DevPublicGcmKey1",
  "dev-directory-api-token-public-never-deploy",
  "whsec_b25lYWNjZXNzLWRldi13ZWJob29rLWtleS1wdWJsaWM=",
];

/** Standard Webhooks: a secret is `whsec_` and the Base64 of 24 to 64 random bytes. */
export const WEBHOOK_SECRET_PREFIX = "whsec_";
export const WEBHOOK_KEY_MIN_BYTES = 24;
export const WEBHOOK_KEY_MAX_BYTES = 64;
/** The only hosts a plain-http webhook URL may name, and only with LOCAL_DEV=true (contract section 7). */
export const LOCAL_WEBHOOK_HOSTS: readonly string[] = ["localhost", "127.0.0.1"];

/** Where every change is POSTed, and the keys each message is signed with (current first). */
export interface WebhookSettings {
  url: string;
  /** Decoded HMAC keys: WEBHOOK_SECRET, then WEBHOOK_SECRET_PREVIOUS during a rotation. */
  keys: Uint8Array[];
}

export interface Config {
  protocol: ProtocolSettings;
  passwordPolicy: PasswordPolicy;
  maxBodyBytes: number;
  replayShards: number;
  directoryApiToken: string | null;
  /** Days an audit row (`deliveries`) is kept before the scheduled trim deletes it. */
  auditRetentionDays: number;
  /** Which callback log lines are written (http/log.ts). */
  logLevel: LogLevel;
  /** ONEACCESS_REGION's location hints (placement.ts); null when it is empty: no hint. */
  placement: Placement | null;
  /** WEBHOOK_URL and WEBHOOK_SECRET; null when both are empty (webhooks off). */
  webhook: WebhookSettings | null;
  /** LOCAL_DEV=true (only `.dev.vars.example` sets it): development values are accepted. */
  localDev: boolean;
  /** Names of secrets whose `*_PREVIOUS` twin is set: a rotation is in progress. */
  rotations: string[];
  /** Operator warnings that are not errors (signing or encryption turned off). */
  warnings: string[];
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

export interface ConfigProblem {
  setting: string;
  problem: string;
}

/** The settings as the runtime hands them over (the generated `Env`), or a partial map in tests and tools. */
export type ConfigEnv = Partial<Record<ConfigName, unknown>>;
type RawEnv = ConfigEnv;

function text(env: RawEnv, name: ConfigName): string | undefined {
  const v = env[name];
  return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
}

function choice<T extends string>(
  env: RawEnv,
  name: ConfigName,
  allowed: readonly T[],
  fallback: T,
  problems: ConfigProblem[],
): T {
  const v = text(env, name);
  if (v === undefined) return fallback;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  problems.push({ setting: name, problem: `must be one of ${allowed.join(", ")}` });
  return fallback;
}

function integer(env: RawEnv, name: ConfigName, fallback: number, min: number, max: number, problems: ConfigProblem[]) {
  const v = text(env, name);
  if (v === undefined) return fallback;
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
    problems.push({ setting: name, problem: `must be an integer from ${min} to ${max}` });
    return fallback;
  }
  return Number(v);
}

/** Current key first, then the `*_PREVIOUS` twin when a rotation is under way. */
function keyPair(env: RawEnv, name: SecretWithPrevious, rotations: string[]): string[] {
  const current = text(env, name);
  const previous = text(env, `${name}_PREVIOUS`);
  if (previous !== undefined) rotations.push(name);
  return [current, previous].filter((k): k is string => k !== undefined);
}

/**
 * AUDIT_RETENTION_DAYS (default 30, 1 to 3650). Exported on its own so the scheduled trim can run even while
 * an unrelated setting is wrong: the callback refuses everything then, but old audit rows must still go.
 */
export function readAuditRetentionDays(env: RawEnv, problems: ConfigProblem[] = []): number {
  return integer(env, "AUDIT_RETENTION_DAYS", 30, 1, 3650, problems);
}

/** The key bytes of a `whsec_…` secret, or null when it is not one (strict Base64 with its padding). */
export function webhookKey(secret: string): Uint8Array | null {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) return null;
  const b64 = secret.slice(WEBHOOK_SECRET_PREFIX.length);
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return null;
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return bytes.length >= WEBHOOK_KEY_MIN_BYTES && bytes.length <= WEBHOOK_KEY_MAX_BYTES ? bytes : null;
}

/**
 * WEBHOOK_URL, WEBHOOK_SECRET and WEBHOOK_SECRET_PREVIOUS. Off (null) when all are empty; any one set makes
 * the URL and the secret required. Exported on its own so the webhook dispatcher keeps delivering what is
 * already in the change log while an unrelated setting is wrong.
 */
export function readWebhookSettings(env: RawEnv, problems: ConfigProblem[] = []): WebhookSettings | null {
  const url = text(env, "WEBHOOK_URL");
  const secret = text(env, "WEBHOOK_SECRET");
  const previous = text(env, "WEBHOOK_SECRET_PREVIOUS");
  if (url === undefined && secret === undefined && previous === undefined) return null;
  const before = problems.length;
  const localDev = text(env, "LOCAL_DEV") === "true";
  if (url === undefined) {
    problems.push({ setting: "WEBHOOK_URL", problem: `is required when ${secret !== undefined ? "WEBHOOK_SECRET" : "WEBHOOK_SECRET_PREVIOUS"} is set` });
  } else {
    const problem = webhookUrlProblem(url, localDev);
    if (problem !== null) problems.push({ setting: "WEBHOOK_URL", problem });
  }
  if (secret === undefined) problems.push({ setting: "WEBHOOK_SECRET", problem: `is required when ${url !== undefined ? "WEBHOOK_URL" : "WEBHOOK_SECRET_PREVIOUS"} is set` });
  const keys: Uint8Array[] = [];
  for (const [name, value] of [["WEBHOOK_SECRET", secret], ["WEBHOOK_SECRET_PREVIOUS", previous]] as const) {
    if (value === undefined) continue;
    const key = webhookKey(value);
    if (!localDev && PUBLIC_DEVELOPMENT_VALUES.includes(value)) {
      problems.push({ setting: name, problem: "is the public development value from .dev.vars.example: set your own secret" });
    } else if (key === null) {
      problems.push({ setting: name, problem: `must be ${WEBHOOK_SECRET_PREFIX} followed by the Base64 of ${WEBHOOK_KEY_MIN_BYTES} to ${WEBHOOK_KEY_MAX_BYTES} bytes` });
    } else keys.push(key);
  }
  return problems.length > before ? null : { url: url!, keys };
}

/** Why a webhook URL is refused (never quoting it), or null: https, or plain http to this machine in development. */
function webhookUrlProblem(value: string, localDev: boolean): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute https: URL";
  }
  if (url.protocol === "https:") return null;
  if (url.protocol === "http:" && LOCAL_WEBHOOK_HOSTS.includes(url.hostname)) {
    return localDev ? null : "may use plain http: only with LOCAL_DEV=true (development); set an https: URL";
  }
  return "must be an https: URL (plain http: only to localhost or 127.0.0.1 with LOCAL_DEV=true)";
}

export function readConfig(env: RawEnv): ConfigResult {
  const problems: ConfigProblem[] = [];
  const rotations: string[] = [];
  const warnings: string[] = [];

  const signature = choice<SignatureAlgorithm>(env, "ONEACCESS_SIGNATURE", ["sha1", "hmac-sha256", "none"], "sha1", problems);
  const encryption = choice<EncryptionAlgorithm>(env, "ONEACCESS_ENCRYPTION", ["aes-gcm", "aes-cbc", "none"], "aes-gcm", problems);
  const gcmLayout = choice<GcmLayoutSetting>(env, "ONEACCESS_GCM_LAYOUT", ["auto", ...GCM_LAYOUTS], "auto", problems);

  const bearerTokens = keyPair(env, "ONEACCESS_BEARER_TOKEN", rotations);
  if (text(env, "ONEACCESS_BEARER_TOKEN") === undefined) {
    problems.push({ setting: "ONEACCESS_BEARER_TOKEN", problem: "is required" });
  }
  for (const name of ["ONEACCESS_BEARER_TOKEN", "ONEACCESS_BEARER_TOKEN_PREVIOUS", "DIRECTORY_API_TOKEN"] as const) {
    const token = text(env, name);
    if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
      problems.push({ setting: name, problem: `must be at least ${MIN_TOKEN_LENGTH} characters` });
    }
  }

  const signingKeys = signature === "none" ? [] : keyPair(env, "ONEACCESS_SIGNING_KEY", rotations);
  if (signature !== "none" && text(env, "ONEACCESS_SIGNING_KEY") === undefined) {
    problems.push({ setting: "ONEACCESS_SIGNING_KEY", problem: `is required when ONEACCESS_SIGNATURE is ${signature}` });
  }
  if (signature === "none") warnings.push("signing is off (ONEACCESS_SIGNATURE=none): only the bearer token protects callbacks");
  if (signature === "none" && encryption === "aes-cbc") {
    // CBC has no tag of its own: unsigned, its padding and JSON errors would answer as a decryption oracle.
    problems.push({ setting: "ONEACCESS_ENCRYPTION", problem: "aes-cbc needs a signature: set ONEACCESS_SIGNATURE to sha1 or hmac-sha256" });
  }

  const encryptionKeys = encryption === "none" ? [] : keyPair(env, "ONEACCESS_ENCRYPTION_KEY", rotations);
  if (encryption === "none") {
    warnings.push("encryption is off (ONEACCESS_ENCRYPTION=none): directory data travels in plaintext");
  } else if (text(env, "ONEACCESS_ENCRYPTION_KEY") === undefined) {
    problems.push({ setting: "ONEACCESS_ENCRYPTION_KEY", problem: `is required when ONEACCESS_ENCRYPTION is ${encryption}` });
  } else {
    const valid = encryption === "aes-gcm" ? isValidGcmKey : (k: string) => cbcKeyBytes(k) !== null;
    const shape = encryption === "aes-gcm" ? "16, 24 or 32 bytes" : "43 Base64 characters (32 bytes)";
    (["ONEACCESS_ENCRYPTION_KEY", "ONEACCESS_ENCRYPTION_KEY_PREVIOUS"] as const).forEach((name) => {
      const key = text(env, name);
      if (key !== undefined && !valid(key)) problems.push({ setting: name, problem: `must be ${shape} for ${encryption}` });
    });
  }

  const localDev = text(env, "LOCAL_DEV") === "true";
  if (!localDev) {
    for (const name of SECRET_NAMES) {
      const value = text(env, name);
      if (value !== undefined && PUBLIC_DEVELOPMENT_VALUES.includes(value)) {
        problems.push({ setting: name, problem: "is the public development value from .dev.vars.example: set your own secret" });
      }
    }
  }

  const receiveId = text(env, "ONEACCESS_RECEIVE_ID") ?? "";
  const toleranceSeconds = integer(env, "TIMESTAMP_TOLERANCE_SECONDS", 300, 0, 86_400, problems);
  if (toleranceSeconds === 0) {
    warnings.push(
      "the timestamp window is off (TIMESTAMP_TOLERANCE_SECONDS=0): a captured request is refused only while its replay record lives (7 days)",
    );
  }
  const passwordPolicy = choice<PasswordPolicy>(env, "PASSWORD_POLICY", ["drop", "pbkdf2"], "drop", problems);
  const maxBodyBytes = integer(env, "MAX_BODY_BYTES", 262_144, 1_024, MAX_BODY_BYTES_CEILING, problems);
  const replayShards = integer(env, "REPLAY_SHARDS", 4, 1, 256, problems);
  const directoryApiToken = text(env, "DIRECTORY_API_TOKEN") ?? null;
  const auditRetentionDays = readAuditRetentionDays(env, problems);
  const logLevel = choice<LogLevel>(env, "LOG_LEVEL", LOG_LEVELS, "log", problems);
  const region = placementFor(text(env, "ONEACCESS_REGION"));
  if (!region.ok) problems.push({ setting: "ONEACCESS_REGION", problem: region.problem });
  const webhook = readWebhookSettings(env, problems);

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: {
      protocol: { bearerTokens, signature, signingKeys, encryption, encryptionKeys, gcmLayout, receiveId, toleranceSeconds },
      passwordPolicy,
      maxBodyBytes,
      replayShards,
      directoryApiToken,
      auditRetentionDays,
      logLevel,
      placement: region.ok ? region.placement : null,
      webhook,
      localDev,
      rotations,
      warnings,
    },
  };
}

/** The receiver's secrets, each checked against the public development values (the webhook secrets are checked where they are read). */
const SECRET_NAMES = [
  "ONEACCESS_BEARER_TOKEN",
  "ONEACCESS_BEARER_TOKEN_PREVIOUS",
  "ONEACCESS_SIGNING_KEY",
  "ONEACCESS_SIGNING_KEY_PREVIOUS",
  "ONEACCESS_ENCRYPTION_KEY",
  "ONEACCESS_ENCRYPTION_KEY_PREVIOUS",
  "DIRECTORY_API_TOKEN",
] as const;
type SecretWithPrevious = "ONEACCESS_BEARER_TOKEN" | "ONEACCESS_SIGNING_KEY" | "ONEACCESS_ENCRYPTION_KEY";

const NAMES = [
  ...SECRET_NAMES,
  "WEBHOOK_SECRET",
  "WEBHOOK_SECRET_PREVIOUS",
  "ONEACCESS_SIGNATURE",
  "ONEACCESS_ENCRYPTION",
  "ONEACCESS_GCM_LAYOUT",
  "ONEACCESS_RECEIVE_ID",
  "TIMESTAMP_TOLERANCE_SECONDS",
  "PASSWORD_POLICY",
  "MAX_BODY_BYTES",
  "REPLAY_SHARDS",
  "AUDIT_RETENTION_DAYS",
  "LOG_LEVEL",
  "ONEACCESS_REGION",
  "WEBHOOK_URL",
  "LOCAL_DEV",
] as const;
type ConfigName = (typeof NAMES)[number];

let cached: { fingerprint: string; result: ConfigResult } | undefined;
/** The result for each env object already seen: the runtime hands an isolate's requests one unchanging env. */
const byEnv = new WeakMap<object, ConfigResult>();

/**
 * Validated configuration, computed once per isolate. The same env object again is answered from memory;
 * another env object (a test's overrides, a redeploy) has its values compared with the last ones (a few
 * short strings), so a changed value is picked up.
 */
export function loadConfig(env: RawEnv): ConfigResult {
  const known = byEnv.get(env);
  if (known) return known;
  const fingerprint = NAMES.map((n) => (typeof env[n] === "string" ? (env[n] as string) : "")).join("\u0000");
  if (cached?.fingerprint !== fingerprint) cached = { fingerprint, result: readConfig(env) };
  byEnv.set(env, cached.result);
  return cached.result;
}
