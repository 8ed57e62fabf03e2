// Section 3, aes-gcm: key = UTF-8 bytes of the configured key; plaintext = 16 random letters, "&", message.
import { concatBytes, decodeBase64, decodeUtf8, encodeBase64, randomLetters, utf8 } from "./codec";

export const GCM_LAYOUTS = ["iv16-b64-prefix", "iv12", "iv16"] as const;
export type GcmLayout = (typeof GCM_LAYOUTS)[number];
export type GcmLayoutSetting = GcmLayout | "auto";

const TAG_BYTES = 16;
const RANDOM_PREFIX = 16;

export type GcmOpen =
  | { ok: true; message: string; layout: GcmLayout; keyIndex: number }
  | { ok: false; reason: string };

const gcmKeys = new Map<string, Promise<CryptoKey>>();

/** Imported once per isolate and key. */
function gcmKey(key: string): Promise<CryptoKey> {
  let imported = gcmKeys.get(key);
  if (!imported) {
    if (gcmKeys.size >= 8) gcmKeys.clear();
    imported = crypto.subtle.importKey("raw", utf8(key), "AES-GCM", false, ["encrypt", "decrypt"]);
    gcmKeys.set(key, imported);
  }
  return imported;
}

export function isValidGcmKey(key: string): boolean {
  const n = utf8(key).length;
  return n === 16 || n === 24 || n === 32;
}

interface Split {
  layout: GcmLayout;
  iv: Uint8Array<ArrayBuffer>;
  sealed: Uint8Array<ArrayBuffer>;
}

/** The ways `data` can be cut into IV and ciphertext‖tag, most specific first. */
function candidateSplits(data: string, setting: GcmLayoutSetting): Split[] {
  const splits: Split[] = [];
  const want = (layout: GcmLayout) => setting === "auto" || setting === layout;
  if (want("iv16-b64-prefix") && data.length > 24 && data.slice(22, 24) === "==") {
    const iv = decodeBase64(data.slice(0, 24));
    const sealed = decodeBase64(data.slice(24));
    if (iv && sealed && iv.length === 16 && sealed.length >= TAG_BYTES) {
      splits.push({ layout: "iv16-b64-prefix", iv, sealed });
    }
  }
  if (want("iv12") || want("iv16")) {
    const whole = decodeBase64(data);
    if (whole) {
      for (const layout of ["iv12", "iv16"] as const) {
        const ivBytes = layout === "iv12" ? 12 : 16;
        if (want(layout) && whole.length >= ivBytes + TAG_BYTES) {
          splits.push({ layout, iv: whole.slice(0, ivBytes), sealed: whole.slice(ivBytes) });
        }
      }
    }
  }
  return splits;
}

/**
 * Opens `data` with each key in turn (current, then previous), trying the layouts the setting allows.
 * Each attempt is authenticated by the GCM tag, so trying several is safe.
 */
export async function openGcm(data: string, keys: readonly string[], setting: GcmLayoutSetting): Promise<GcmOpen> {
  const splits = candidateSplits(data, setting);
  if (splits.length === 0) return { ok: false, reason: "data is not Base64 in any accepted layout" };
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    const key = await gcmKey(keys[keyIndex]!);
    for (const split of splits) {
      let plain: Uint8Array;
      try {
        plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: split.iv }, key, split.sealed));
      } catch {
        continue;
      }
      return unwrapPlaintext(plain, split.layout, keyIndex);
    }
  }
  return { ok: false, reason: "no key and layout authenticates the data" };
}

function unwrapPlaintext(plain: Uint8Array, layout: GcmLayout, keyIndex: number): GcmOpen {
  if (plain.length < RANDOM_PREFIX + 1 || plain[RANDOM_PREFIX] !== 0x26 /* & */) {
    return { ok: false, reason: "plaintext lacks the random prefix and '&'" };
  }
  for (let i = 0; i < RANDOM_PREFIX; i++) {
    const b = plain[i]!;
    const alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
    if (!alnum) return { ok: false, reason: "random prefix is not ASCII letters or digits" };
  }
  // Everything after the first "&" is the message: "R&D" stays whole.
  const message = decodeUtf8(plain.subarray(RANDOM_PREFIX + 1));
  if (message === null) return { ok: false, reason: "message is not valid UTF-8" };
  return { ok: true, message, layout, keyIndex };
}

/** Seals `message` in `layout` with a fresh random IV and random prefix on every call. */
export async function sealGcm(message: string, key: string, layout: GcmLayout): Promise<string> {
  // One draw from the generator for the IV and the random prefix (letters are drawn by rejection: 2 bytes each
  // is plenty, and randomLetters draws more in the unlikely case it is not).
  const ivBytes = layout === "iv12" ? 12 : 16;
  const random = crypto.getRandomValues(new Uint8Array(ivBytes + 2 * RANDOM_PREFIX));
  const iv = random.slice(0, ivBytes);
  const plain = utf8(`${randomLetters(RANDOM_PREFIX, random.subarray(ivBytes))}&${message}`);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await gcmKey(key), plain));
  if (layout === "iv16-b64-prefix") return encodeBase64(iv) + encodeBase64(sealed);
  return encodeBase64(concatBytes(iv, sealed));
}
