// One delivery attempt: POST the message, a 2xx answer within the timeout is delivered; anything else is a
// failure described in a few words (a status, a timeout, an error's class name), never with the body of
// either side.
import { errorName } from "../errors";

/** How long one attempt may take before it counts as failed. */
export const REQUEST_TIMEOUT_MS = 10_000;

export type Attempt = { ok: true } | { ok: false; error: string };

export async function postMessage(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<Attempt> {
  try {
    // A redirect is a failure: the message goes to the configured URL or nowhere.
    const res = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel().catch(() => undefined);
    return res.status >= 200 && res.status < 300 ? { ok: true } : { ok: false, error: `HTTP ${res.status}` };
  } catch (e) {
    const name = errorName(e);
    if (name === "TimeoutError" || name === "AbortError") return { ok: false, error: `no answer within ${timeoutMs / 1000} s` };
    return { ok: false, error: `network error (${name})` };
  }
}
