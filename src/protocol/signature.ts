// Section 2 of the contract: sha1 (DingTalk / WeCom family), hmac-sha256 (OneAccess page 0122), none.
import { constantTimeEqual, decodeBase64, decodeHex, encodeBase64, toHex, utf8 } from "./codec";

export type SignatureAlgorithm = "sha1" | "hmac-sha256" | "none";

/** The four signed fields, each exactly as transmitted. */
export interface SignedFields {
  nonce: string;
  timestampText: string;
  eventTypeRaw: string;
  data: string;
}

async function sha1Digest(key: string, f: SignedFields): Promise<Uint8Array> {
  // Code-unit order, which is what Array.prototype.sort does for strings.
  const joined = [key, f.timestampText, f.nonce, f.data].sort().join("");
  return new Uint8Array(await crypto.subtle.digest("SHA-1", utf8(joined)));
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

/** HMAC keys are imported once per isolate and signing key (a handful at most: current and previous). */
function hmacKey(key: string): Promise<CryptoKey> {
  let imported = hmacKeys.get(key);
  if (!imported) {
    if (hmacKeys.size >= 8) hmacKeys.clear();
    imported = crypto.subtle.importKey("raw", utf8(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    hmacKeys.set(key, imported);
  }
  return imported;
}

async function hmacDigest(key: string, f: SignedFields): Promise<Uint8Array> {
  const message = `${f.nonce}&${f.timestampText}&${f.eventTypeRaw}&${f.data}`;
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(key), utf8(message)));
}

/** Computes the signature the way a sender would (hex for sha1, Base64 for hmac-sha256). */
export async function computeSignature(
  algorithm: Exclude<SignatureAlgorithm, "none">,
  key: string,
  fields: SignedFields,
): Promise<string> {
  return algorithm === "sha1" ? toHex(await sha1Digest(key, fields)) : encodeBase64(await hmacDigest(key, fields));
}

/**
 * Decodes a presented signature into digest bytes, or `null` when it has no acceptable encoding. Only the
 * canonical text of a digest is accepted (lowercase hex; Base64 whose unused low bits are zero), so a signed
 * request has exactly one signature per encoding: flipping a hex letter's case or a Base64 padding bit is a
 * change to the request, and is refused like any other.
 */
function presentedDigest(algorithm: Exclude<SignatureAlgorithm, "none">, signature: string): Uint8Array | null {
  if (algorithm === "sha1") {
    if (signature.length === 40) return /^[0-9a-f]{40}$/.test(signature) ? decodeHex(signature, 20) : null;
    if (signature.length === 28) return canonicalBase64(signature);
    return null;
  }
  return signature.length === 44 ? canonicalBase64(signature) : null;
}

function canonicalBase64(text: string): Uint8Array | null {
  const bytes = decodeBase64(text);
  return bytes !== null && encodeBase64(bytes) === text ? bytes : null;
}

export type SignatureCheck =
  /** `digest`: the digest that verified (empty with `none`); the request's identity for replay detection. */
  | { ok: true; keyIndex: number; digest: Uint8Array }
  | { ok: false; reason: "signature-missing" | "signature-mismatch" };

/**
 * Verifies `signature` under `algorithm` against each candidate key (current first, then a rotation's
 * previous key). Every candidate is always computed and compared in constant time, so which key matched,
 * or whether any did, is not visible in the timing.
 */
export async function verifySignature(
  algorithm: SignatureAlgorithm,
  keys: readonly string[],
  fields: SignedFields,
  signature: string,
): Promise<SignatureCheck> {
  if (algorithm === "none") return { ok: true, keyIndex: 0, digest: new Uint8Array(0) };
  if (signature.length === 0) return { ok: false, reason: "signature-missing" };
  const presented = presentedDigest(algorithm, signature) ?? new Uint8Array(0);
  let matched = -1;
  for (let i = 0; i < keys.length; i++) {
    const expected = algorithm === "sha1" ? await sha1Digest(keys[i]!, fields) : await hmacDigest(keys[i]!, fields);
    if (constantTimeEqual(expected, presented) && matched < 0) matched = i;
  }
  return matched >= 0 ? { ok: true, keyIndex: matched, digest: presented } : { ok: false, reason: "signature-mismatch" };
}

/**
 * Diagnosis without downgrade: after a failed check, says whether the other algorithm would have accepted
 * the request with the same key. The request stays refused; this only tells the operator what to change.
 */
export async function diagnoseOtherAlgorithm(
  configured: SignatureAlgorithm,
  keys: readonly string[],
  fields: SignedFields,
  signature: string,
): Promise<Exclude<SignatureAlgorithm, "none"> | null> {
  if (configured === "none" || signature.length === 0) return null;
  const other = configured === "sha1" ? "hmac-sha256" : "sha1";
  const check = await verifySignature(other, keys, fields, signature);
  return check.ok ? other : null;
}
