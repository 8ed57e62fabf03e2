// What a user event does to the stored password. Dropped on arrival by default; PASSWORD_POLICY=pbkdf2
// stores a PBKDF2-SHA256 hash instead, the only form a password is ever kept in (Web Crypto; 100 000
// iterations is the ceiling Workers' PBKDF2 accepts).
import type { PasswordPolicy } from "../config";
import { encodeBase64, utf8 } from "../protocol/codec";
import type { DirectoryEvent } from "../protocol/events";

export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;

/**
 * What the event asks of the stored hash: keep it (no password sent), clear it (drop policy: a new password
 * is not stored, and the old hash no longer matches), or hash the sent password (pbkdf2 policy). Decided
 * when the event is prepared; the hash itself is made by `resolvePassword` once the request is known to be
 * new, so an exact duplicate never pays for it.
 */
export type PasswordIntent = { kind: "keep" } | { kind: "clear" } | { kind: "hash"; password: string };

/** The stored hash as a user write leaves it: kept, or set (null clears). */
export type PasswordWrite = { kind: "keep" } | { kind: "set"; hash: string | null };

export function passwordIntent(event: DirectoryEvent, policy: PasswordPolicy): PasswordIntent {
  const sent = event.type === "CREATE_USER" || event.type === "UPDATE_USER" ? event.user.password : undefined;
  if (sent === undefined) return { kind: "keep" };
  return policy === "pbkdf2" ? { kind: "hash", password: sent } : { kind: "clear" };
}

export async function resolvePassword(intent: PasswordIntent): Promise<PasswordWrite> {
  switch (intent.kind) {
    case "keep":
      return { kind: "keep" };
    case "clear":
      return { kind: "set", hash: null };
    case "hash":
      return { kind: "set", hash: await hashPassword(intent.password) };
  }
}

/** `pbkdf2-sha256$<iterations>$<salt, Base64>$<hash, Base64>`: self-describing, so it can be verified later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const key = await crypto.subtle.importKey("raw", utf8(password), "PBKDF2", false, ["deriveBits"]);
  const hash = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: PBKDF2_ITERATIONS }, key, HASH_BITS);
  return ["pbkdf2-sha256", String(PBKDF2_ITERATIONS), encodeBase64(salt), encodeBase64(new Uint8Array(hash))].join("$");
}
