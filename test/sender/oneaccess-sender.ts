// An independent OneAccess sender for tests, written from the contract alone: it must not import anything
// under src/, so that a misreading of the contract in src/ cannot be mirrored here and pass unnoticed.

export type Signing = "sha1" | "hmac-sha256" | "none";
export type Encryption = "aes-gcm" | "aes-cbc" | "none";
export type Layout = "iv16-b64-prefix" | "iv12" | "iv16";

export interface SenderProfile {
  signature: Signing;
  encryption: Encryption;
  layout?: Layout;
  bearer: string;
  signingKey: string;
  /** aes-gcm: 16/24/32 characters; aes-cbc: 43 Base64 characters. */
  encryptionKey: string;
  receiveId?: string;
}

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

export function b64(bytes: Uint8Array): string {
  let s = "";
  bytes.forEach((b) => (s += String.fromCharCode(b)));
  return btoa(s);
}

export function unb64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function join(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function randomNonce(length = 16): string {
  const abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => abc[b % abc.length]).join("");
}

// --- signatures -------------------------------------------------------------------------------------

export async function sha1Signature(key: string, timestamp: string, nonce: string, data: string, base64 = false) {
  const sorted = [key, timestamp, nonce, data].sort();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", te.encode(sorted.join(""))));
  return base64 ? b64(digest) : Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function hmacSignature(key: string, nonce: string, timestamp: string, eventType: string, data: string) {
  const k = await crypto.subtle.importKey("raw", te.encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", k, te.encode([nonce, timestamp, eventType, data].join("&")));
  return b64(new Uint8Array(mac));
}

// --- aes-gcm ----------------------------------------------------------------------------------------

export async function gcmSeal(key: string, message: string, layout: Layout, random = randomNonce(16)) {
  const k = await crypto.subtle.importKey("raw", te.encode(key), "AES-GCM", false, ["encrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(layout === "iv12" ? 12 : 16));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, k, te.encode(`${random}&${message}`)));
  return layout === "iv16-b64-prefix" ? b64(iv) + b64(ct) : b64(join(iv, ct));
}

export async function gcmOpen(key: string, data: string, layout: Layout): Promise<string> {
  const k = await crypto.subtle.importKey("raw", te.encode(key), "AES-GCM", false, ["decrypt"]);
  let iv: Uint8Array<ArrayBuffer>;
  let ct: Uint8Array<ArrayBuffer>;
  if (layout === "iv16-b64-prefix") {
    iv = unb64(data.slice(0, 24));
    ct = unb64(data.slice(24));
  } else {
    const all = unb64(data);
    const n = layout === "iv12" ? 12 : 16;
    iv = all.slice(0, n);
    ct = all.slice(n);
  }
  const plain = td.decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, k, ct));
  if (plain[16] !== "&") throw new Error("no & after the random prefix");
  return plain.slice(17);
}

/** Which layout a GCM reply used, judged by shape and by which one opens. */
export async function gcmOpenAny(key: string, data: string): Promise<{ layout: Layout; message: string }> {
  for (const layout of ["iv16-b64-prefix", "iv12", "iv16"] as const) {
    try {
      return { layout, message: await gcmOpen(key, data, layout) };
    } catch {
      // next layout
    }
  }
  throw new Error("reply does not open in any layout");
}

// --- aes-cbc (DingTalk / WeCom) ---------------------------------------------------------------------

async function cbcKey(key43: string) {
  const raw = unb64(`${key43}=`);
  const key = await crypto.subtle.importKey("raw", raw, "AES-CBC", false, ["encrypt", "decrypt"]);
  return { key, iv: raw.slice(0, 16) };
}

export async function cbcSeal(key43: string, message: string, receiveId: string, padOverride?: number) {
  const { key, iv } = await cbcKey(key43);
  const msg = te.encode(message);
  const len = new Uint8Array([msg.length >>> 24, (msg.length >>> 16) & 255, (msg.length >>> 8) & 255, msg.length & 255]);
  const body = join(crypto.getRandomValues(new Uint8Array(16)), len, msg, te.encode(receiveId));
  const pad = padOverride ?? 32 - (body.length % 32);
  const padded = join(body, new Uint8Array(pad).fill(pad));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, padded));
  return b64(ct.slice(0, padded.length)); // drop the block Web Crypto's own padding added
}

export async function cbcOpen(key43: string, data: string): Promise<{ message: string; receiveId: string }> {
  const { key, iv } = await cbcKey(key43);
  const ct = unb64(data);
  // Make Web Crypto's 16-byte padding check pass by appending a block that decrypts to sixteen 0x10 bytes.
  const last = ct.slice(ct.length - 16);
  const tail = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: last }, key, new Uint8Array(16).fill(16)));
  const plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, join(ct, tail.slice(0, 16))));
  const pad = plain[plain.length - 1]!;
  const body = plain.slice(16, plain.length - pad);
  const n = (body[0]! << 24) | (body[1]! << 16) | (body[2]! << 8) | body[3]!;
  return { message: td.decode(body.slice(4, 4 + n)), receiveId: td.decode(body.slice(4 + n)) };
}

// --- whole requests ---------------------------------------------------------------------------------

export interface SendOptions {
  nonce?: string;
  /** Seconds or milliseconds, as a number or a digit string; default now in seconds. */
  timestamp?: number | string;
  /** eventType as transmitted (may carry stray spaces). */
  eventTypeRaw?: string;
  /** Replace the computed signature. */
  signature?: string;
  /** Sign with another key than the profile's. */
  signWith?: string;
  /** Change `data` after signing. */
  mutateData?: (data: string) => string;
  bearer?: string | null;
  contentType?: string;
}

export interface Envelope {
  nonce: string;
  timestamp: number | string;
  eventType: string;
  data: string;
  signature: string;
}

export async function sealData(profile: SenderProfile, message: string): Promise<string> {
  switch (profile.encryption) {
    case "none":
      return message;
    case "aes-gcm":
      return gcmSeal(profile.encryptionKey, message, profile.layout ?? "iv16-b64-prefix");
    case "aes-cbc":
      return cbcSeal(profile.encryptionKey, message, profile.receiveId ?? "");
  }
}

export async function buildEnvelope(
  profile: SenderProfile,
  eventType: string,
  message: string,
  opts: SendOptions = {},
): Promise<Envelope> {
  const nonce = opts.nonce ?? randomNonce();
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const ts = String(timestamp);
  const eventTypeRaw = opts.eventTypeRaw ?? eventType;
  let data = await sealData(profile, message);
  const key = opts.signWith ?? profile.signingKey;
  let signature = "";
  if (profile.signature === "sha1") signature = await sha1Signature(key, ts, nonce, data);
  if (profile.signature === "hmac-sha256") signature = await hmacSignature(key, nonce, ts, eventTypeRaw, data);
  if (opts.signature !== undefined) signature = opts.signature;
  if (opts.mutateData) data = opts.mutateData(data);
  return { nonce, timestamp, eventType: eventTypeRaw, data, signature };
}

export function toRequest(
  url: string,
  profile: SenderProfile,
  body: string,
  opts: Pick<SendOptions, "bearer" | "contentType"> = {},
): Request {
  const headers: Record<string, string> = { "content-type": opts.contentType ?? "application/json; charset=UTF-8" };
  const bearer = opts.bearer === undefined ? profile.bearer : opts.bearer;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  return new Request(url, { method: "POST", headers, body });
}

export async function buildRequest(
  url: string,
  profile: SenderProfile,
  eventType: string,
  payload: unknown,
  opts: SendOptions = {},
): Promise<{ request: Request; envelope: Envelope }> {
  const message = typeof payload === "string" ? payload : JSON.stringify(payload);
  const envelope = await buildEnvelope(profile, eventType, message, opts);
  return { request: toRequest(url, profile, JSON.stringify(envelope), opts), envelope };
}

export interface OpenedReply {
  status: number;
  code: string;
  message: string;
  /** `data` as sent. */
  data: string;
  /** `data` opened with the profile's key ("" stays ""). */
  plaintext: string;
  layout?: Layout;
}

export async function openReply(profile: SenderProfile, response: Response): Promise<OpenedReply> {
  const body = (await response.json()) as { code: string; message: string; data: string };
  const base = { status: response.status, code: body.code, message: body.message, data: body.data };
  if (body.data === "" || profile.encryption === "none") return { ...base, plaintext: body.data };
  if (profile.encryption === "aes-cbc") {
    const opened = await cbcOpen(profile.encryptionKey, body.data);
    return { ...base, plaintext: opened.message };
  }
  const opened = await gcmOpenAny(profile.encryptionKey, body.data);
  return { ...base, plaintext: opened.message, layout: opened.layout };
}
