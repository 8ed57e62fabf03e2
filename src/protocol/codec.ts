// Byte/text helpers shared by the protocol code. Pure, no bindings.

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

/** Strict UTF-8 decode: invalid sequences give `null`, never replacement characters. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * With a length that is a multiple of 4, exactly the padded Base64 shape: whole groups of four, the last one
 * possibly ending in "=" or "==". (A plain character class, not a repeated group: V8 checks it in one tight
 * pass, where the grouped form cost tens of microseconds on a 1 KiB event.)
 */
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * `data` as Base64 may arrive MIME-style (a line break every 76 characters, as Python's base64.encodebytes
 * writes it): the signature covers the text as received, and decoding ignores ASCII whitespace.
 */
export function withoutAsciiWhitespace(text: string): string {
  return /[\t\n\f\r ]/.test(text) ? text.replace(/[\t\n\f\r ]+/g, "") : text;
}

/** Standard, padded Base64 only; anything else (whitespace, URL alphabet, bad padding) gives `null`. */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> | null {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64_CHARS.test(text)) return null;
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Lower- or upper-case hex of an exact byte length; `null` otherwise. */
export function decodeHex(text: string, byteLength: number): Uint8Array | null {
  if (text.length !== byteLength * 2 || !/^[0-9a-fA-F]+$/.test(text)) return null;
  const out = new Uint8Array(byteLength);
  for (let i = 0; i < byteLength; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Compares two byte strings without an early exit, so the time taken does not reveal where they differ.
 * Lengths are folded into the result instead of short-circuiting.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * `length` random ASCII letters (the vendors' random prefix), from `bytes` (random bytes the caller drew
 * along with others, so one call to the generator serves a whole seal) and then fresh ones as needed.
 */
export function randomLetters(length: number, bytes: Uint8Array = crypto.getRandomValues(new Uint8Array(length * 2))): string {
  let out = "";
  let i = 0;
  while (out.length < length) {
    if (i === bytes.length) {
      bytes = crypto.getRandomValues(new Uint8Array(length));
      i = 0;
    }
    // 256 = 4 * 52 + 48: reject the top 48 values so every letter is equally likely.
    const b = bytes[i++]!;
    if (b < 208) out += LETTERS[b % 52];
  }
  return out;
}

export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
