// Building, sending and opening OneAccess callbacks, reusing the receiver's own protocol code
// (src/protocol): the same signature, sealing and opening functions, used from the sender's side.
// Web APIs only (fetch, Web Crypto), so this runs in Node for the CLI and in workerd for the tests.
import { openCbc, sealCbc } from "../../src/protocol/cbc";
import { randomLetters } from "../../src/protocol/codec";
import { openGcm, sealGcm, type GcmLayout } from "../../src/protocol/gcm";
import { computeSignature } from "../../src/protocol/signature";
import type { SimProfile } from "./profile";

export type FetchLike = (request: Request) => Promise<Response>;

/** The five-key envelope as sent. */
export interface WireEnvelope {
  nonce: string;
  timestamp: number | string;
  eventType: string;
  data: string;
  signature: string;
}

export interface BuiltRequest {
  envelope: WireEnvelope;
  /** The exact body text sent (a replay sends these bytes again). */
  body: string;
}

export interface Reply {
  status: number;
  /** The reply's `code`, or `network` (no answer) or `HTTP <status>` (an answer not in the reply format). */
  code: string;
  message: string;
  /** `data` as received (ciphertext when encryption is on). */
  data: string;
  /** `data` opened with the profile's key; `null` when it could not be opened (see `openError`). */
  plaintext: string | null;
  /** aes-gcm: the layout the reply was sealed in. */
  layout?: GcmLayout;
  openError?: string;
  latencyMs: number;
  /** How many times the request was sent (retries after a 500 or a network error resend the same bytes). */
  attempts: number;
}

/**
 * Millisecond timestamps that never repeat and never go back, even for events sent within the same
 * millisecond: the receiver keeps the timestamp of the last event applied to each entity and ignores an
 * older (or equal) one, so a later change must carry a later timestamp.
 */
export class MonotonicClock {
  private last = 0;
  nowMs(): number {
    this.last = Math.max(Date.now(), this.last + 1);
    return this.last;
  }
}

export function newNonce(): string {
  return randomLetters(16);
}

export async function sealMessage(profile: SimProfile, message: string): Promise<string> {
  switch (profile.encryption) {
    case "none":
      return message;
    case "aes-gcm":
      return sealGcm(message, profile.encryptionKey, profile.layout);
    case "aes-cbc":
      return sealCbc(message, profile.encryptionKey, profile.receiveId);
  }
}

export async function signEnvelope(profile: SimProfile, e: Omit<WireEnvelope, "signature">): Promise<string> {
  if (profile.signature === "none") return "";
  return computeSignature(profile.signature, profile.signingKey, {
    nonce: e.nonce,
    timestampText: String(e.timestamp),
    eventTypeRaw: e.eventType,
    data: e.data,
  });
}

/** Re-signs an envelope after one of its fields was changed on purpose (for example an old timestamp). */
export async function resign(profile: SimProfile, e: WireEnvelope): Promise<WireEnvelope> {
  return { ...e, signature: await signEnvelope(profile, e) };
}

export function envelopeBody(e: WireEnvelope): string {
  return JSON.stringify({ nonce: e.nonce, timestamp: e.timestamp, eventType: e.eventType, data: e.data, signature: e.signature });
}

export interface SenderOptions {
  url: string;
  fetch: FetchLike;
  /** Resends of the same bytes after a 500 or a network error (OneAccess retries too). Default 2. */
  retries?: number;
  /** Milliseconds between the first and second attempt, doubled for each further one. Default 250. */
  backoffMs?: number;
  /** A high-resolution clock for latencies; default performance.now(). */
  now?: () => number;
}

/** One OneAccess tenant's sending side: a profile, a receiver URL, and a transport. */
export class Sender {
  readonly clock = new MonotonicClock();
  private readonly now: () => number;

  constructor(
    readonly profile: SimProfile,
    readonly options: SenderOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  async build(eventType: string, message: string, opts: { nonce?: string; timestamp?: number } = {}): Promise<BuiltRequest> {
    const unsigned = {
      nonce: opts.nonce ?? newNonce(),
      timestamp: opts.timestamp ?? this.clock.nowMs(),
      eventType,
      data: await sealMessage(this.profile, message),
    };
    const envelope = { ...unsigned, signature: await signEnvelope(this.profile, unsigned) };
    return { envelope, body: envelopeBody(envelope) };
  }

  request(body: string, bearer = this.profile.bearer): Request {
    return new Request(this.options.url, {
      method: "POST",
      headers: { "content-type": "application/json; charset=UTF-8", authorization: `Bearer ${bearer}` },
      body,
    });
  }

  /** Sends `body` once and opens the reply. Never throws: a transport failure is the code `network`. */
  async postOnce(body: string, bearer?: string): Promise<Reply> {
    const started = this.now();
    let response: Response;
    try {
      response = await this.options.fetch(this.request(body, bearer));
    } catch (e) {
      const message = e instanceof Error ? `${e.message}${causeOf(e)}` : String(e);
      return { status: 0, code: "network", message, data: "", plaintext: null, latencyMs: this.now() - started, attempts: 1 };
    }
    const text = await response.text().catch(() => "");
    const latencyMs = this.now() - started;
    return { ...(await this.openReply(response.status, text)), latencyMs, attempts: 1 };
  }

  /** Sends `body`, resending the same bytes after a 500 or a network error, as OneAccess does. */
  async post(body: string, bearer?: string): Promise<Reply> {
    const retries = this.options.retries ?? 2;
    let attempts = 0;
    let latencyMs = 0;
    for (;;) {
      const reply = await this.postOnce(body, bearer);
      attempts++;
      latencyMs += reply.latencyMs;
      // A misconfigured receiver answers 500 to everything: resending cannot help.
      const retryable =
        (reply.code === "network" || reply.code === "500" || reply.status >= 500) && !reply.message.startsWith("server misconfigured");
      if (!retryable || attempts > retries) return { ...reply, attempts, latencyMs };
      await sleep((this.options.backoffMs ?? 250) * 2 ** (attempts - 1));
    }
  }

  async send(eventType: string, message: string, opts: { nonce?: string; timestamp?: number } = {}) {
    const built = await this.build(eventType, message, opts);
    return { ...built, reply: await this.post(built.body) };
  }

  private async openReply(status: number, text: string): Promise<Omit<Reply, "latencyMs" | "attempts">> {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const b = body as { code?: unknown; message?: unknown; data?: unknown } | null;
    if (!b || typeof b !== "object" || typeof b.code !== "string" || typeof b.data !== "string") {
      return { status, code: `HTTP ${status}`, message: text.slice(0, 200), data: "", plaintext: null, openError: "not a {code, message, data} reply" };
    }
    const base = { status, code: b.code, message: typeof b.message === "string" ? b.message : "", data: b.data };
    if (b.data === "" || this.profile.encryption === "none") return { ...base, plaintext: b.data };
    if (this.profile.encryption === "aes-gcm") {
      const opened = await openGcm(b.data, [this.profile.encryptionKey], "auto");
      return opened.ok ? { ...base, plaintext: opened.message, layout: opened.layout } : { ...base, plaintext: null, openError: opened.reason };
    }
    const opened = await openCbc(b.data, [this.profile.encryptionKey], this.profile.receiveId);
    return opened.ok ? { ...base, plaintext: opened.message } : { ...base, plaintext: null, openError: opened.detail };
  }
}

function causeOf(e: Error): string {
  const cause = (e as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? ` (${cause.message})` : "";
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The `id` of a create or update reply, or null. */
export function replyId(reply: Reply): string | null {
  if (reply.plaintext === null || reply.plaintext === "") return null;
  try {
    const parsed = JSON.parse(reply.plaintext) as { id?: unknown };
    return typeof parsed.id === "string" && parsed.id !== "" ? parsed.id : typeof parsed.id === "number" ? String(parsed.id) : null;
  } catch {
    return null;
  }
}
