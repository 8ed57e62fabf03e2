// The sending side's settings, read exactly like the receiver reads its own: the same variable names, merged
// the way `wrangler dev` merges them (wrangler.toml [vars], then .dev.vars, then the simulator's flags), and
// validated by the receiver's own readConfig, so a setting the Worker would refuse is named the same way here.
import { readConfig, type ConfigProblem } from "../../src/config";
import type { EncryptionAlgorithm } from "../../src/protocol/callback";
import type { GcmLayout } from "../../src/protocol/gcm";
import type { SignatureAlgorithm } from "../../src/protocol/signature";

export interface SimProfile {
  signature: SignatureAlgorithm;
  encryption: EncryptionAlgorithm;
  /** aes-gcm: the layout requests are sealed in (the receiver answers in the same one). */
  layout: GcmLayout;
  bearer: string;
  signingKey: string;
  /** aes-gcm: 16/24/32 characters; aes-cbc: 43 Base64 characters. */
  encryptionKey: string;
  /** aes-cbc: carried in every message (empty: none). */
  receiveId: string;
  /** The receiver's window (TIMESTAMP_TOLERANCE_SECONDS); 0 means the window is off. */
  toleranceSeconds: number;
  /** DIRECTORY_API_TOKEN when this side knows it (the settings files): opens the receiver's operator view. */
  operatorToken?: string;
}

/** The layout used when the configuration says `auto`: the one the receiver's own check-url script uses. */
export const DEFAULT_LAYOUT: GcmLayout = "iv16-b64-prefix";

/** Command-line flags and the settings they override. */
export const FLAG_SETTINGS = {
  signature: "ONEACCESS_SIGNATURE",
  encryption: "ONEACCESS_ENCRYPTION",
  layout: "ONEACCESS_GCM_LAYOUT",
  "receive-id": "ONEACCESS_RECEIVE_ID",
  tolerance: "TIMESTAMP_TOLERANCE_SECONDS",
} as const;

export type ProfileResult = { ok: true; profile: SimProfile; warnings: string[] } | { ok: false; problems: ConfigProblem[] };

/** Later sources win, as .dev.vars wins over [vars] in `wrangler dev` (an empty value then counts as unset). */
export function mergeSettings(...sources: Array<Record<string, string>>): Record<string, string> {
  return Object.assign({}, ...sources) as Record<string, string>;
}

export function profileFromSettings(settings: Record<string, string>): ProfileResult {
  const result = readConfig(settings);
  if (!result.ok) return { ok: false, problems: result.problems };
  const p = result.config.protocol;
  return {
    ok: true,
    profile: {
      signature: p.signature,
      encryption: p.encryption,
      layout: p.gcmLayout === "auto" ? DEFAULT_LAYOUT : p.gcmLayout,
      bearer: p.bearerTokens[0]!,
      signingKey: p.signingKeys[0] ?? "",
      encryptionKey: p.encryptionKeys[0] ?? "",
      receiveId: p.receiveId,
      toleranceSeconds: p.toleranceSeconds,
      ...(result.config.directoryApiToken !== null ? { operatorToken: result.config.directoryApiToken } : {}),
    },
    warnings: result.config.warnings,
  };
}

export function describeProfile(p: SimProfile): string {
  const signature = p.signature === "none" ? "no signature" : `${p.signature} signature`;
  const encryption =
    p.encryption === "aes-gcm"
      ? `aes-gcm (${p.layout})`
      : p.encryption === "aes-cbc"
        ? `aes-cbc (receive id ${p.receiveId === "" ? "empty" : `"${p.receiveId}"`})`
        : "no encryption";
  const window = p.toleranceSeconds === 0 ? "timestamp window off" : `timestamp window ±${p.toleranceSeconds} s`;
  return `${signature}, ${encryption}, ${window}`;
}
