// The trust boundary in one place: authenticate a callback, open it, and seal the reply. Pure functions of
// their inputs (settings, headers, body text, the clock), no HTTP framework and no storage.
import { constantTimeEqual, utf8 } from "./codec";
import { openCbc, sealCbc } from "./cbc";
import { parseEnvelope, withinWindow, type Envelope } from "./envelope";
import { parseEvent, type CallbackEvent } from "./events";
import { fail, ok, type Result, type WireCode } from "./failures";
import { openGcm, sealGcm, type GcmLayout, type GcmLayoutSetting } from "./gcm";
import { diagnoseOtherAlgorithm, verifySignature, type SignatureAlgorithm } from "./signature";

export type EncryptionAlgorithm = "aes-gcm" | "aes-cbc" | "none";

/** What the protocol needs from the configuration; every key list is current first, then previous. */
export interface ProtocolSettings {
  bearerTokens: readonly string[];
  signature: SignatureAlgorithm;
  signingKeys: readonly string[];
  encryption: EncryptionAlgorithm;
  encryptionKeys: readonly string[];
  gcmLayout: GcmLayoutSetting;
  receiveId: string;
  toleranceSeconds: number;
}

/** How a request was sealed, so its reply is sealed the same way and with the same key. */
export type SealContext =
  | { encryption: "none" }
  | { encryption: "aes-gcm"; layout: GcmLayout; keyIndex: number }
  | { encryption: "aes-cbc"; receiveId: string; keyIndex: number };

export interface Authenticated {
  envelope: Envelope;
  /** Which signing key verified (0 current, 1 previous); 0 when signing is off. */
  signingKeyIndex: number;
  bearerIndex: number;
}

export interface AuthFailureDiagnosis {
  /** Set when the signature would verify under the other algorithm: the setting to change. */
  otherAlgorithm?: Exclude<SignatureAlgorithm, "none">;
}

/** `Authorization: Bearer <token>` against each accepted token, all compared in constant time. */
export function checkBearer(header: string | null, tokens: readonly string[]): Result<number> {
  const match = header === null ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!match) return fail({ kind: "unauthorized", reason: "bearer-missing" });
  const presented = utf8(match[1]!);
  let matched = -1;
  tokens.forEach((token, i) => {
    if (constantTimeEqual(utf8(token), presented) && matched < 0) matched = i;
  });
  return matched >= 0 ? ok(matched) : fail({ kind: "unauthorized", reason: "bearer-mismatch" });
}

/**
 * Envelope (400), timestamp window, then signature (401), in the contract's order. Runs after the bearer
 * check; nothing here touches storage, so a failure leaves no trace but the caller's log line.
 */
export async function authenticateEnvelope(
  settings: ProtocolSettings,
  rawBody: string,
  nowMs: number,
  bearerIndex: number,
): Promise<Result<Authenticated> & { diagnosis?: AuthFailureDiagnosis }> {
  const parsed = parseEnvelope(rawBody);
  if (!parsed.ok) return parsed;
  const envelope = parsed.value;
  if (envelope.dataWasObject && settings.encryption !== "none") {
    return fail({ kind: "bad-request", message: "data must be a string" });
  }
  if (!withinWindow(envelope.timestampMs, nowMs, settings.toleranceSeconds)) {
    return fail({ kind: "unauthorized", reason: "timestamp-outside-window" });
  }
  const check = await verifySignature(settings.signature, settings.signingKeys, envelope, envelope.signature);
  if (!check.ok) {
    const other = await diagnoseOtherAlgorithm(settings.signature, settings.signingKeys, envelope, envelope.signature);
    const result = fail<Authenticated>({
      kind: "unauthorized",
      reason: check.reason,
      ...(other ? { hint: `signature verifies as ${other}: set ONEACCESS_SIGNATURE=${other}` } : {}),
    });
    return other ? { ...result, diagnosis: { otherAlgorithm: other } } : result;
  }
  return ok({ envelope, signingKeyIndex: check.keyIndex, bearerIndex });
}

export interface Opened {
  event: CallbackEvent;
  seal: SealContext;
}

/** Decrypts `data` as configured and checks it against the shape of the named event. */
export async function openEnvelope(settings: ProtocolSettings, envelope: Envelope): Promise<Result<Opened>> {
  let message: string;
  let seal: SealContext;
  switch (settings.encryption) {
    case "none":
      message = envelope.data;
      seal = { encryption: "none" };
      break;
    case "aes-gcm": {
      const opened = await openGcm(envelope.data, settings.encryptionKeys, settings.gcmLayout);
      if (!opened.ok) return fail({ kind: "undecryptable", reason: opened.reason });
      message = opened.message;
      seal = { encryption: "aes-gcm", layout: opened.layout, keyIndex: opened.keyIndex };
      break;
    }
    case "aes-cbc": {
      const opened = await openCbc(envelope.data, settings.encryptionKeys, settings.receiveId);
      if (!opened.ok) {
        return opened.reason === "receive-id-mismatch"
          ? fail({ kind: "unauthorized", reason: "receive-id-mismatch" })
          : fail({ kind: "undecryptable", reason: opened.detail });
      }
      message = opened.message;
      seal = { encryption: "aes-cbc", receiveId: opened.receiveId, keyIndex: opened.keyIndex };
      break;
    }
    default: {
      const unreachable: never = settings.encryption;
      throw new Error(`unknown encryption ${String(unreachable)}`);
    }
  }
  const event = parseEvent(envelope.eventType, message);
  return event.ok ? ok({ event: event.value, seal }) : event;
}

export interface Reply {
  code: WireCode;
  message: string;
  data: string;
}

/**
 * Builds the `{code, message, data}` body. Non-empty `data` is sealed like the request was (same layout,
 * same key, fresh IV); empty data stays empty, there being nothing to protect.
 */
export async function sealReply(
  settings: ProtocolSettings,
  seal: SealContext,
  code: WireCode,
  message: string,
  plaintext: string,
): Promise<Reply> {
  if (plaintext === "" || seal.encryption === "none") return { code, message, data: plaintext };
  const key = settings.encryptionKeys[seal.keyIndex] ?? settings.encryptionKeys[0]!;
  const data =
    seal.encryption === "aes-gcm"
      ? await sealGcm(plaintext, key, seal.layout)
      : await sealCbc(plaintext, key, settings.receiveId || seal.receiveId);
  return { code, message, data };
}
