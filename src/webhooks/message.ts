// A change as a Standard Webhooks message (https://www.standardwebhooks.com): the body is the change exactly
// as the events API shows it, wrapped in `type` and `timestamp`; the signature is HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>" with each key, Base64, versioned `v1,` and space-separated when a
// rotation sends two. Web Crypto only.
import type { ApiChange } from "../read/changes";

export interface WebhookBody {
  type: ApiChange["type"];
  /** When the receiver applied the change (`data.recorded_at`): the change log's own time. */
  timestamp: string;
  data: ApiChange;
}

/** The body as sent, the same bytes on every attempt (retries re-sign it with a new timestamp). */
export function webhookBody(change: ApiChange): string {
  const body: WebhookBody = { type: change.type, timestamp: change.recorded_at ?? change.occurred_at ?? new Date(0).toISOString(), data: change };
  return JSON.stringify(body);
}

/** HMAC keys from the configured key bytes (current first). */
export function importSigningKeys(keys: readonly Uint8Array[]): Promise<CryptoKey[]> {
  return Promise.all(keys.map((raw) => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])));
}

/** The `webhook-signature` header: one `v1,<base64>` per key, space-separated. */
export async function signatureHeader(keys: readonly CryptoKey[], id: string, timestampSeconds: number, body: string): Promise<string> {
  const signed = new TextEncoder().encode(`${id}.${timestampSeconds}.${body}`);
  const macs = await Promise.all(keys.map((key) => crypto.subtle.sign("HMAC", key, signed)));
  return macs.map((mac) => `v1,${base64(new Uint8Array(mac))}`).join(" ");
}

/** The headers of one attempt: the id is the change's position (the same on every retry), the timestamp this attempt's. */
export async function webhookHeaders(keys: readonly CryptoKey[], id: string, nowMs: number, body: string): Promise<Record<string, string>> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signatureHeader(keys, id, timestamp, body),
  };
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
