// The trust boundary in one place: authenticate a callback, open it, and seal the reply. Pure functions of
// their inputs (settings, headers, body text, the clock), no HTTP framework and no storage.
import { concatBytes, constantTimeEqual, sha256, toHex, utf8, withoutAsciiWhitespace } from "./codec";
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
  /**
   * The request's identity for replay detection: what was signed, not the bytes that carried it (hex of the
   * verified digest; with signing off, of a hash of nonce, timestamp, eventType and data). Every signature-
   * preserving variant of one request (a timestamp / nonce boundary shift, another JSON spelling of the
   * envelope, the digest in hex or Base64) has the same key.
   */
  replayKey: string;
  /** Which signing key verified (0 current, 1 previous); 0 when signing is off. */
  signingKeyIndex: number;
  bearerIndex: number;
}

/**
 * `Authorization: Bearer <token>` against each accepted token. Both sides are hashed first and every token is
 * compared, so neither the token's contents nor its length show in the timing.
 */
export async function checkBearer(header: string | null, tokens: readonly string[]): Promise<Result<number>> {
  const match = header === null ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!match) return fail({ kind: "unauthorized", reason: "bearer-missing" });
  const presented = await sha256(utf8(match[1]!));
  let matched = -1;
  for (let i = 0; i < tokens.length; i++) {
    if (constantTimeEqual(await sha256(utf8(tokens[i]!)), presented) && matched < 0) matched = i;
  }
  return matched >= 0 ? ok(matched) : fail({ kind: "unauthorized", reason: "bearer-mismatch" });
}

/** With signing off nothing is signed: the key is a hash of the four fields, each length-prefixed. */
async function unsignedReplayKey(envelope: Envelope): Promise<string> {
  const parts = [envelope.nonce, envelope.timestampText, envelope.eventType, envelope.data].map((field) => {
    const bytes = utf8(field);
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, bytes.length);
    return concatBytes(length, bytes);
  });
  return toHex(await sha256(concatBytes(...parts)));
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
): Promise<Result<Authenticated>> {
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
    return fail({
      kind: "unauthorized",
      reason: check.reason,
      ...(other ? { hint: `signature verifies as ${other}: set ONEACCESS_SIGNATURE=${other}` } : {}),
    });
  }
  const replayKey = settings.signature === "none" ? await unsignedReplayKey(envelope) : toHex(check.digest);
  return ok({ envelope, replayKey, signingKeyIndex: check.keyIndex, bearerIndex });
}

export interface Opened {
  event: CallbackEvent;
  seal: SealContext;
}

/** Decrypts `data` as configured and checks it against the shape of the named event. */
export async function openEnvelope(settings: ProtocolSettings, envelope: Envelope): Promise<Result<Opened>> {
  let message: string;
  let seal: SealContext;
  // Signed as received; decoded without the line breaks of MIME-style Base64.
  const sealed = settings.encryption === "none" ? envelope.data : withoutAsciiWhitespace(envelope.data);
  switch (settings.encryption) {
    case "none":
      message = envelope.data;
      seal = { encryption: "none" };
      break;
    case "aes-gcm": {
      const opened = await openGcm(sealed, settings.encryptionKeys, settings.gcmLayout);
      if (!opened.ok) return fail({ kind: "undecryptable", reason: opened.reason });
      message = opened.message;
      seal = { encryption: "aes-gcm", layout: opened.layout, keyIndex: opened.keyIndex };
      break;
    }
    case "aes-cbc": {
      const opened = await openCbc(sealed, settings.encryptionKeys, settings.receiveId);
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
