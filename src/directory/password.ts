// PASSWORD_POLICY=pbkdf2: the only form in which a password is ever stored. Web Crypto only; 100 000
// iterations is the ceiling Workers' PBKDF2 accepts.
import { encodeBase64, utf8 } from "../protocol/codec";

export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;

/** `pbkdf2-sha256$<iterations>$<salt, Base64>$<hash, Base64>`: self-describing, so it can be verified later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const key = await crypto.subtle.importKey("raw", utf8(password), "PBKDF2", false, ["deriveBits"]);
  const hash = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: PBKDF2_ITERATIONS },
    key,
    HASH_BITS,
  );
  return ["pbkdf2-sha256", String(PBKDF2_ITERATIONS), encodeBase64(salt), encodeBase64(new Uint8Array(hash))].join("$");
}
