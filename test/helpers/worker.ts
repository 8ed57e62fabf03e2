// Sending requests through the Worker's own fetch, with per-test configuration overrides.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";
import type { SenderProfile } from "../sender/oneaccess-sender";
import type { TestEnv } from "./env";

export const testEnv = env as unknown as TestEnv;
export const CALLBACK_URL = "https://receiver.test/callback";

/** Calls the Worker's fetch with the test env, optionally overriding settings for this call. */
export async function callWorker(request: Request, overrides: Partial<Record<keyof Env, unknown>> = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, { ...testEnv, ...overrides } as unknown as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

const keys = () => testEnv.VECTORS.keys;

/** Sender profiles matching the env overrides of the same name. */
export function profile(name: "sha1+gcm" | "hmac+gcm" | "sha1+cbc" | "none", layout?: SenderProfile["layout"]) {
  const k = keys();
  const bearer = testEnv.ONEACCESS_BEARER_TOKEN;
  switch (name) {
    case "sha1+gcm":
      return { signature: "sha1", encryption: "aes-gcm", layout, bearer, signingKey: k.signingKey, encryptionKey: k.gcmKey } as SenderProfile;
    case "hmac+gcm":
      return { signature: "hmac-sha256", encryption: "aes-gcm", layout, bearer, signingKey: k.signingKey, encryptionKey: k.gcmKey } as SenderProfile;
    case "sha1+cbc":
      return { signature: "sha1", encryption: "aes-cbc", bearer, signingKey: k.signingKey, encryptionKey: k.cbcKey, receiveId: k.receiveId } as SenderProfile;
    case "none":
      return { signature: "none", encryption: "none", bearer, signingKey: "", encryptionKey: "" } as SenderProfile;
  }
}

/** The env overrides that configure the Worker for a sender profile. */
export function envFor(p: SenderProfile): Partial<Record<keyof Env, unknown>> {
  return {
    ONEACCESS_SIGNATURE: p.signature,
    ONEACCESS_ENCRYPTION: p.encryption,
    ONEACCESS_ENCRYPTION_KEY: p.encryptionKey,
    ONEACCESS_RECEIVE_ID: p.encryption === "aes-cbc" ? (p.receiveId ?? "") : "",
  };
}
