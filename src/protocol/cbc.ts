// Section 3, aes-cbc in the DingTalk / WeCom layout:
// key = Base64(configured + "="), IV = key[0..16),
// plaintext = 16 random bytes ‖ uint32 BE length ‖ message ‖ receive id, PKCS#7-padded to a multiple of 32.
import { concatBytes, constantTimeEqual, decodeBase64, decodeUtf8, encodeBase64, utf8 } from "./codec";

const BLOCK = 16;
const PAD_TO = 32;

export type CbcOpen =
  | { ok: true; message: string; receiveId: string; keyIndex: number }
  | { ok: false; reason: "undecryptable" | "receive-id-mismatch"; detail: string };

interface CbcKey {
  key: CryptoKey;
  iv: Uint8Array<ArrayBuffer>;
}

/** 32 raw bytes of a 43-character configured key, or `null` when it is not one. */
export function cbcKeyBytes(configured: string): Uint8Array<ArrayBuffer> | null {
  if (configured.length !== 43) return null;
  const bytes = decodeBase64(`${configured}=`);
  return bytes && bytes.length === 32 ? bytes : null;
}

const cbcKeys = new Map<string, Promise<CbcKey>>();

function cbcKey(configured: string): Promise<CbcKey> {
  let imported = cbcKeys.get(configured);
  if (!imported) {
    const raw = cbcKeyBytes(configured);
    if (!raw) return Promise.reject(new Error("invalid aes-cbc key"));
    if (cbcKeys.size >= 8) cbcKeys.clear();
    imported = crypto.subtle
      .importKey("raw", raw, "AES-CBC", false, ["encrypt", "decrypt"])
      .then((key) => ({ key, iv: raw.slice(0, BLOCK) }));
    cbcKeys.set(configured, imported);
  }
  return imported;
}

/**
 * Web Crypto only accepts PKCS#7 padding of 1-16 bytes, but this layout pads to 32. Appending one block that
 * decrypts to a full block of 0x10 (the encryption of `lastBlock XOR 0x10…`) makes Web Crypto strip only
 * that block, leaving the original 32-byte-aligned padding for us to check.
 */
async function decryptRaw(k: CbcKey, cipher: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const lastBlock = cipher.slice(cipher.length - BLOCK);
  const fullPad = new Uint8Array(BLOCK).fill(BLOCK);
  const extra = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: lastBlock }, k.key, fullPad));
  const extended = concatBytes(cipher, extra.subarray(0, BLOCK));
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv: k.iv }, k.key, extended));
}

export async function openCbc(data: string, keys: readonly string[], expectedReceiveId: string): Promise<CbcOpen> {
  const cipher = decodeBase64(data);
  if (!cipher || cipher.length < PAD_TO || cipher.length % BLOCK !== 0) {
    return { ok: false, reason: "undecryptable", detail: "ciphertext is not Base64 of whole blocks" };
  }
  let lastReason: CbcOpen = { ok: false, reason: "undecryptable", detail: "no key opens the data" };
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    const plain = await decryptRaw(await cbcKey(keys[keyIndex]!), cipher);
    const opened = unpad(plain);
    if (!opened.ok) {
      lastReason = opened;
      continue;
    }
    const result = { ...opened, keyIndex };
    if (expectedReceiveId !== "" && !constantTimeEqual(utf8(result.receiveId), utf8(expectedReceiveId))) {
      return { ok: false, reason: "receive-id-mismatch", detail: "receive id does not match" };
    }
    return result;
  }
  return lastReason;
}

function unpad(plain: Uint8Array): CbcOpen & { keyIndex?: number } {
  const pad = plain[plain.length - 1]!;
  // CBC has no tag: padding and length checks are what tell a wrong key from a right one.
  if (pad < 1 || pad > PAD_TO || plain.length % BLOCK !== 0) {
    return { ok: false, reason: "undecryptable", detail: "bad padding" };
  }
  for (let i = plain.length - pad; i < plain.length; i++) {
    if (plain[i] !== pad) return { ok: false, reason: "undecryptable", detail: "bad padding" };
  }
  const body = plain.subarray(0, plain.length - pad);
  if (body.length < BLOCK + 4) return { ok: false, reason: "undecryptable", detail: "too short" };
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const length = view.getUint32(BLOCK);
  if (BLOCK + 4 + length > body.length) return { ok: false, reason: "undecryptable", detail: "bad length" };
  const message = decodeUtf8(body.subarray(BLOCK + 4, BLOCK + 4 + length));
  const receiveId = decodeUtf8(body.subarray(BLOCK + 4 + length));
  if (message === null || receiveId === null) {
    return { ok: false, reason: "undecryptable", detail: "not valid UTF-8" };
  }
  return { ok: true, message, receiveId, keyIndex: 0 };
}

/** Seals `message` with fresh random bytes; the layout's IV is fixed by the key, as the vendors define it. */
export async function sealCbc(message: string, configuredKey: string, receiveId: string): Promise<string> {
  const k = await cbcKey(configuredKey);
  const msg = utf8(message);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, msg.length);
  const body = concatBytes(crypto.getRandomValues(new Uint8Array(BLOCK)), length, msg, utf8(receiveId));
  const pad = PAD_TO - (body.length % PAD_TO);
  const padded = concatBytes(body, new Uint8Array(pad).fill(pad));
  // Web Crypto adds its own full block of 16-byte padding to the aligned input; drop that block.
  const out = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: k.iv }, k.key, padded));
  return encodeBase64(out.subarray(0, padded.length));
}
