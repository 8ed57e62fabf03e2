// Our ids for directory entities. OneAccess stores them and sends them back in `id`, `parentId` and
// `organizationId`, so they are short, URL-safe and free of `&` (the GCM plaintext separator).
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LENGTH = 12; // 62^12 ≈ 2^71
/** 4 × 62: bytes at or above it are skipped so every character is equally likely. */
const UNBIASED_LIMIT = 248;

export type IdPrefix = "org" | "usr";

export function newId(prefix: IdPrefix): string {
  let random = "";
  while (random.length < RANDOM_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(RANDOM_LENGTH * 2))) {
      if (byte < UNBIASED_LIMIT && random.length < RANDOM_LENGTH) random += BASE62[byte % 62];
    }
  }
  return `${prefix}_${random}`;
}
