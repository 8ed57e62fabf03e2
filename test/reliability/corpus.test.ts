// Issue #7, the malformed-input corpus: CORPUS_SIZE requests (10 000 by default) through the Worker's fetch,
// each of them wrong in one way: broken JSON, wrong types, extra and missing keys, `__proto__` keys, bad
// Base64, truncated ciphertexts, bad padding, invalid UTF-8, deep nesting, huge strings, absurd timestamps,
// bad signatures and bearer tokens, unknown event types, wrong methods and media types, oversized bodies,
// and signed requests whose decrypted payload breaks the rules of contract section 4.
// Pass mark: no uncaught exception, every answer the status and message pinned for its case (the reply's
// code equal to the status), no storage binding used by a request that did not authenticate and the replay
// store reached by every one that did, exactly one log line per request, and no secret, password, payload,
// nonce, signature or ciphertext in any log line (the console is captured).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rng } from "../../sim/core/random";
import { storageSpies } from "../helpers/spies";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import { b64, buildEnvelope, cbcSeal, gcmSeal, randomNonce, toRequest, unb64, type Envelope, type SenderProfile } from "../sender/oneaccess-sender";
import { captureConsole, RUNS, summarize, type Captured } from "./support";

const CORPUS_SIZE = Math.max(10_000, RUNS * 10);
const RUN = randomNonce(6);
const SENTINEL = `CorpusSentinel${RUN}`;
const PASSWORD = `Corpus-Password-${RUN}`;

interface Case {
  family: string;
  request: Request;
  /** The answer this case must get: its status, and the reply's message (the exact text, or a pattern). */
  expected: { status: number; message: string | RegExp };
  /** Whether it gets past authentication (bearer, envelope, window, signature): only then may storage be used. */
  authenticated: boolean;
  /** The profile the Worker is configured with for this request (the request was made for it). */
  p: SenderProfile;
  /** Strings of this request that must not reach a log line (besides the secrets and sentinels). */
  forbidden: string[];
}

const GCM = profile("sha1+gcm", "iv12");
const GCM_PREFIX = profile("sha1+gcm", "iv16-b64-prefix");
const HMAC = profile("hmac+gcm", "iv16");
const CBC = profile("sha1+cbc");
const PROFILES = [GCM, GCM_PREFIX, HMAC, CBC];

const secrets = () => [
  testEnv.ONEACCESS_BEARER_TOKEN,
  testEnv.ONEACCESS_SIGNING_KEY,
  testEnv.ONEACCESS_ENCRYPTION_KEY,
  testEnv.DIRECTORY_API_TOKEN,
  testEnv.VECTORS.keys.cbcKey,
  testEnv.VECTORS.keys.gcmKey256,
];

// --- building blocks --------------------------------------------------------------------------------

const te = new TextEncoder();

function validPayload(rng: Rng): { type: string; message: string } {
  const types = [
    ["CREATE_USER", { username: `${SENTINEL}.u${rng.digits(6)}`, name: `${SENTINEL} name`, password: PASSWORD, email: `${SENTINEL}@example.test` }],
    ["CREATE_ORGANIZATION", { code: `${SENTINEL}-org-${rng.digits(6)}`, name: `${SENTINEL} org` }],
    ["CHECK_URL", `${SENTINEL}-check-${rng.digits(6)}`],
  ] as const;
  const [type, payload] = rng.pick(types);
  return { type, message: typeof payload === "string" ? payload : JSON.stringify(payload) };
}

/** A correctly signed, sealed envelope of a valid event (the starting point of most cases). */
async function validEnvelope(rng: Rng, p = rng.pick(PROFILES), opts: { timestamp?: number | string } = {}) {
  const { type, message } = validPayload(rng);
  const envelope = await buildEnvelope(p, type, message, { timestamp: opts.timestamp ?? (rng.chance(0.5) ? Date.now() : Math.floor(Date.now() / 1000)) });
  return { p, envelope, body: JSON.stringify(envelope) };
}

/** An envelope whose `data` is exactly `data` (not sealed by the sender) but correctly signed. */
async function signedData(p: SenderProfile, eventType: string, data: string): Promise<Envelope> {
  return buildEnvelope({ ...p, encryption: "none" }, eventType, data, { timestamp: Date.now() });
}

function request(
  p: SenderProfile,
  body: string | Uint8Array,
  opts: { authorization?: string | null; contentType?: string; method?: string } = {},
): Request {
  const headers: Record<string, string> = {};
  if (opts.contentType !== "") headers["content-type"] = opts.contentType ?? "application/json; charset=UTF-8";
  const authorization = opts.authorization === undefined ? `Bearer ${p.bearer}` : opts.authorization;
  if (authorization !== null) headers.authorization = authorization;
  const method = opts.method ?? "POST";
  return new Request(CALLBACK_URL, { method, headers, ...(method === "GET" || method === "HEAD" ? {} : { body }) });
}

function forbiddenOf(envelope: Partial<Envelope> | null): string[] {
  if (!envelope) return [];
  return [envelope.nonce, envelope.data, envelope.signature]
    .filter((s): s is string => typeof s === "string" && s.length >= 12)
    .map((s) => s.slice(0, 64));
}

/** Raw AES-GCM (iv12 layout) of arbitrary plaintext bytes, for plaintexts the sender would never make. */
async function gcmRaw(key: string, plain: Uint8Array<ArrayBuffer>): Promise<string> {
  const k = await crypto.subtle.importKey("raw", te.encode(key), "AES-GCM", false, ["encrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, k, plain));
  const out = new Uint8Array(iv.length + ct.length);
  out.set(iv);
  out.set(ct, iv.length);
  return b64(out);
}

/** Raw AES-CBC of the WeCom layout with an arbitrary message (bytes) and padding (bytes for a body length). */
async function cbcRaw(key43: string, message: Uint8Array, receiveId: string, padding: (n: number) => Uint8Array = (n) => new Uint8Array(n).fill(n)): Promise<string> {
  const raw = unb64(`${key43}=`);
  const k = await crypto.subtle.importKey("raw", raw, "AES-CBC", false, ["encrypt"]);
  const len = new Uint8Array([0, 0, (message.length >>> 8) & 255, message.length & 255]);
  const rid = te.encode(receiveId);
  const body = new Uint8Array(16 + 4 + message.length + rid.length);
  body.set(crypto.getRandomValues(new Uint8Array(16)));
  body.set(len, 16);
  body.set(message, 20);
  body.set(rid, 20 + message.length);
  const pad = padding(32 - (body.length % 32));
  const padded = new Uint8Array(body.length + pad.length);
  padded.set(body);
  padded.set(pad, body.length);
  // Whole blocks: Web Crypto appends its own 16-byte padding block, which is dropped.
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: raw.slice(0, 16) }, k, padded));
  return b64(ct.slice(0, padded.length));
}

const INVALID_UTF8: number[][] = [[0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]];
const JUNK_VALUES: unknown[] = [0, -1, 1.5, true, false, null, [], {}, [1, "a"], { a: 1 }, "", 1e308, "0", " ", "\u0000"];
const EXTRA_KEYS = ["extra", "Nonce", "nonce ", "__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "", "eventtype", "sign"];
const KEYS = ["nonce", "timestamp", "eventType", "data", "signature"] as const;

function nested(depth: number, open = "[", close = "]", inner = "1"): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

/** Replaces a top-level field's JSON value text in `body` (the sender's JSON.stringify output). */
function withField(envelope: Envelope, key: string, valueJson: string): string {
  const entries = Object.entries(envelope).map(([k, v]) => `${JSON.stringify(k)}:${k === key ? valueJson : JSON.stringify(v)}`);
  return `{${entries.join(",")}}`;
}

// --- the families -----------------------------------------------------------------------------------
//
// Every case says what it must be answered (status and message), worked out from the contract and from how
// the case was made; the platform's JSON.parse decides only whether a broken text is still JSON.

type Maker = (rng: Rng) => Promise<Case>;
type Expected = Case["expected"];

const UNAUTHORIZED: Expected = { status: 401, message: "authentication failed" };
const bad = (message: string | RegExp): Expected => ({ status: 400, message });

/** What a body that is not an envelope is answered: not JSON, JSON but not an object, or an object missing the nonce. */
function malformed(body: string): Expected {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return bad("body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return bad("body must be a JSON object");
  const keys = Object.keys(value);
  if (keys.some((k) => !(KEYS as readonly string[]).includes(k))) return bad("unexpected field in envelope");
  return bad(`${KEYS.find((k) => !keys.includes(k))} is required`);
}

/** A junk value in one of the envelope's fields (the others valid): the check that field fails, or the signature. */
function junkAnswer(key: (typeof KEYS)[number], value: unknown): Expected {
  const isString = typeof value === "string";
  switch (key) {
    case "nonce":
      return isString && value !== "" ? UNAUTHORIZED : bad("nonce must be a non-empty string");
    case "timestamp":
      if (isString) return bad("timestamp must have 10 or 13 digits");
      return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? bad("timestamp must have 10 or 13 digits") : bad("timestamp must be an integer");
    case "eventType":
      return isString ? bad("unknown eventType") : bad("eventType must be a string");
    case "data":
      return isString ? UNAUTHORIZED : bad("data must be a string");
    case "signature":
      return isString ? UNAUTHORIZED : bad("signature must be a string");
  }
}

/** A signed timestamp: its shape first (10 or 13 digits, an integer), then the window. */
function timestampAnswer(value: unknown): Expected {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) return bad("timestamp must be an integer");
  } else if (typeof value !== "string") {
    return bad("timestamp must be an integer");
  }
  const text = String(value);
  if (!/^(?:[0-9]{10}|[0-9]{13})$/.test(text)) return bad("timestamp must have 10 or 13 digits");
  const ms = text.length === 13 ? Number(text) : Number(text) * 1000;
  return Math.abs(Date.now() - ms) <= 300_000 ? { status: 200, message: "success" } : UNAUTHORIZED;
}

const families: Array<[string, number, Maker]> = [
  [
    "broken-json",
    14,
    async (rng) => {
      const { p, envelope, body } = await validEnvelope(rng);
      const structural = [...body].flatMap((ch, i) => ("{}:,\"".includes(ch) ? [i] : []));
      const between = [...body].flatMap((ch, i) => (ch === ":" || ch === "," ? [i + 1] : []));
      const edits = [
        () => body.slice(0, rng.int(0, body.length - 1)),
        () => {
          const i = rng.pick(structural);
          return body.slice(0, i) + body.slice(i + 1);
        },
        () => {
          const i = rng.pick(between);
          return body.slice(0, i) + rng.pick(["{", "}", "[", "]", '"', ",", ":", "'", "\u0000"]) + body.slice(i);
        },
        () => body.replaceAll('"', "'"),
        () => `${body.slice(0, -1)},}`,
        () => `\uFEFF${body}`,
        () => `${body}}}`,
        () => `${body}${body}`,
        () => rng.pick(["", "null", "[]", '"string"', "123", "{}", "{", "}", "true", "NaN", "undefined", "{'a':1}", "/* */{}", "{\"nonce\":}"]),
        () => Array.from({ length: rng.int(1, 200) }, () => String.fromCharCode(rng.int(32, 126))).join(""),
      ];
      const text = rng.pick(edits)();
      return { family: "broken-json", request: request(p, text), expected: malformed(text), authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "wrong-types",
    12,
    async (rng) => {
      const { p, envelope } = await validEnvelope(rng);
      const key = rng.pick(KEYS);
      const value = rng.pick(JUNK_VALUES);
      return {
        family: "wrong-types",
        request: request(p, withField(envelope, key, JSON.stringify(value))),
        expected: junkAnswer(key, value),
        authenticated: false,
        p,
        forbidden: forbiddenOf(envelope),
      };
    },
  ],
  [
    "extra-missing-keys",
    10,
    async (rng) => {
      const { p, envelope } = await validEnvelope(rng);
      const entries = Object.entries(envelope).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
      const choice = rng.int(0, 2);
      let expected: Expected;
      if (choice === 0) {
        const i = rng.int(0, entries.length - 1);
        expected = bad(`${Object.keys(envelope)[i]} is required`);
        entries.splice(i, 1);
      } else if (choice === 1) {
        entries.splice(rng.int(0, entries.length), 0, `${JSON.stringify(rng.pick(EXTRA_KEYS))}:${JSON.stringify(rng.pick(JUNK_VALUES))}`);
        expected = bad("unexpected field in envelope");
      } else {
        const key = rng.pick(KEYS);
        entries.push(`${JSON.stringify(key)}:${JSON.stringify((envelope as unknown as Record<string, unknown>)[key])}`);
        expected = bad("duplicate field in envelope");
      }
      return { family: "extra-missing-keys", request: request(p, `{${entries.join(",")}}`), expected, authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "proto-keys",
    6,
    async (rng) => {
      const { p, envelope, body } = await validEnvelope(rng);
      const variants: Array<[() => string, Expected]> = [
        [() => `{"__proto__":{"admin":true},${body.slice(1)}`, bad("unexpected field in envelope")],
        [() => `{"__proto__":${JSON.stringify(envelope)}}`, bad("unexpected field in envelope")],
        [() => `{"constructor":{"prototype":{"polluted":1}},${body.slice(1)}`, bad("unexpected field in envelope")],
        [() => withField(envelope, "data", `{"__proto__":{"username":"x"},"constructor":1}`), bad("data must be a string")],
        [() => `{"nonce":${JSON.stringify(envelope.nonce)},"__proto__":null}`, bad("unexpected field in envelope")],
      ];
      const [make, expected] = rng.pick(variants);
      return { family: "proto-keys", request: request(p, make()), expected, authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "absurd-timestamps",
    10,
    async (rng) => {
      const p = rng.pick(PROFILES);
      const now = Math.floor(Date.now() / 1000);
      const values: Array<number | string | unknown> = [
        -1, 0, 1.5, 1e21, 1e308, -0, 2 ** 53, Number.MAX_SAFE_INTEGER, now - 301, now + 301, (now - 86_400 * 365) * 1000, 9_999_999_999_999,
        "", "abc", "１７７７７７７７７７", "0000000000", "9999999999999", "99999999999999", "123456789", `+${now}`, ` ${now}`, `${now} `, "1e10",
        `${now}.0`, `0x${now.toString(16)}`, String(now * 1_000_000), `${now}1`, `${now}12`, true, null, [], {}, [now], { raw: "1e999" }, { raw: "-1e999" }, { raw: `${now}.5e0` },
      ];
      const value = rng.pick(values);
      if (typeof value === "number" || typeof value === "string") {
        // Signed over the absurd value, so the refusal is the timestamp's own.
        const { type, message } = validPayload(rng);
        const envelope = await buildEnvelope(p, type, message, { timestamp: value });
        return { family: "absurd-timestamps", request: request(p, JSON.stringify(envelope)), expected: timestampAnswer(JSON.parse(JSON.stringify(value))), authenticated: false, p, forbidden: forbiddenOf(envelope) };
      }
      const { envelope } = await validEnvelope(rng, p);
      const json = value !== null && typeof value === "object" && "raw" in value ? String((value as { raw: string }).raw) : JSON.stringify(value);
      return { family: "absurd-timestamps", request: request(p, withField(envelope, "timestamp", json)), expected: timestampAnswer(JSON.parse(json)), authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "bad-signature",
    8,
    async (rng) => {
      const { p, envelope } = await validEnvelope(rng, rng.pick([GCM, HMAC, CBC]));
      const hex = Array.from({ length: 40 }, () => "0123456789abcdef"[rng.int(0, 15)]).join("");
      const signatures = [
        "",
        hex,
        hex.slice(0, 39),
        btoa(hex.slice(0, 20)),
        envelope.signature.toUpperCase(),
        envelope.signature.slice(1),
        `${envelope.signature} `,
        "=".repeat(44),
        "x".repeat(rng.int(1, 4000)),
        envelope.signature.split("").reverse().join(""),
      ];
      const body = JSON.stringify({ ...envelope, signature: rng.pick(signatures) });
      return { family: "bad-signature", request: request(p, body), expected: UNAUTHORIZED, authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "bad-bearer",
    6,
    async (rng) => {
      const { p, envelope, body } = await validEnvelope(rng);
      const token = p.bearer;
      const headers: Array<string | null> = [
        null,
        `Basic ${btoa(`user:${token}`)}`,
        "Bearer",
        "Bearer ",
        `Bearer ${token}x`,
        `Bearer ${token.slice(1)}`,
        token,
        "",
        `Bearer ${token.toUpperCase()}`,
        `Bearer ${token} extra`,
        `Bearer\t${token}`,
      ];
      return { family: "bad-bearer", request: request(p, body, { authorization: rng.pick(headers) }), expected: UNAUTHORIZED, authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "unknown-event-type",
    4,
    async (rng) => {
      const p = rng.pick(PROFILES);
      const type = rng.pick(["DROP_TABLE", "create_user", "CREATE_USER\u0000", "", " ", "CHECK_URL2", "CREATE USER", "DELETE_EVERYTHING", "__proto__", "Create_User"]);
      const envelope = await buildEnvelope(p, type, JSON.stringify({ id: `usr_${randomNonce(12)}` }));
      return { family: "unknown-event-type", request: request(p, JSON.stringify(envelope)), expected: bad("unknown eventType"), authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "http",
    6,
    async (rng) => {
      const { p, envelope, body } = await validEnvelope(rng);
      const variants: Array<() => [Request, Expected]> = [
        () => [request(p, body, { method: rng.pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]) }), { status: 405, message: "method not allowed" }],
        () => [
          request(p, body, { contentType: rng.pick(["", "text/plain", "application/jsonx", "application/json-patch+json", "multipart/form-data", "application/x-www-form-urlencoded", "json"]) }),
          { status: 415, message: "content type must be application/json" },
        ],
        // The bearer token is checked first: without it, a wrong content type or method still learns nothing.
        () => [request(p, body, { contentType: "text/plain", authorization: null }), UNAUTHORIZED],
      ];
      const [req, expected] = rng.pick(variants)();
      return { family: "http", request: req, expected, authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "invalid-utf8-body",
    4,
    async (rng) => {
      const { p, envelope, body } = await validEnvelope(rng);
      const bytes = te.encode(body);
      const bad8 = rng.pick(INVALID_UTF8);
      const at = rng.int(0, bytes.length);
      const out = new Uint8Array(bytes.length + bad8.length);
      out.set(bytes.subarray(0, at));
      out.set(bad8, at);
      out.set(bytes.subarray(at), at + bad8.length);
      return { family: "invalid-utf8", request: request(p, out), expected: bad("body is not valid UTF-8"), authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "deep-nesting",
    4,
    async (rng) => {
      const { p, envelope, body } = await validEnvelope(rng);
      const depth = rng.pick([1_000, 10_000, 100_000]);
      const variants: Array<[() => string, Expected | null]> = [
        [() => nested(depth), null],
        [() => nested(depth, '{"a":', "}"), null],
        [() => withField(envelope, "data", nested(depth)), bad("data must be a string")],
        [() => withField(envelope, "nonce", nested(depth, '{"a":', "}")), bad("nonce must be a non-empty string")],
        [() => `${body.slice(0, -1)},"deep":${nested(depth)}}`, bad("unexpected field in envelope")],
      ];
      const [make, ifJson] = rng.pick(variants);
      const text = make();
      // However deep, the text is still JSON (when the parser takes it): then the field's own check answers.
      const expected: Expected =
        te.encode(text).length > 262_144
          ? { status: 413, message: "body too large" }
          : malformed(text).message === "body is not valid JSON" || ifJson === null
            ? malformed(text)
            : ifJson;
      return { family: "deep-nesting", request: request(p, text), expected, authenticated: false, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "huge-strings",
    3,
    async (rng) => {
      const p = rng.pick(PROFILES);
      const { type, message } = validPayload(rng);
      const size = rng.pick([129, 4_096, 100_000, 262_144, 300_000, 700_000]);
      const field = rng.pick(["nonce", "eventType", "signature", "data"] as const);
      // `size` characters: 129 is one over the nonce limit; 研 is three bytes each.
      const big = (rng.chance(0.5) ? "n" : "研").repeat(size);
      const envelope = await buildEnvelope(p, type, message, field === "nonce" ? { nonce: big } : {});
      const body = JSON.stringify(field === "nonce" ? envelope : { ...envelope, [field]: big });
      const expected: Expected =
        te.encode(body).length > 262_144
          ? { status: 413, message: "body too large" }
          : field === "nonce"
            ? bad("nonce exceeds 128 characters")
            : field === "eventType"
              ? bad("unknown eventType")
              : UNAUTHORIZED;
      return { family: "huge-strings", request: request(p, body), expected, authenticated: false, p, forbidden: [...forbiddenOf(envelope), big.slice(0, 64)] };
    },
  ],
  // --- signed correctly: these authenticate, and are refused when the data is opened or read ----------
  [
    "bad-base64",
    3,
    async (rng) => {
      const p = rng.pick([GCM, GCM_PREFIX, CBC]);
      const sealed = p.encryption === "aes-cbc" ? await cbcSeal(p.encryptionKey, `${SENTINEL}`, p.receiveId ?? "") : await gcmSeal(p.encryptionKey, SENTINEL, p.layout!);
      const undecryptable = bad("data cannot be decrypted");
      // Whitespace is ignored when decoding (MIME Base64): those open, to a sentinel that is not a JSON object.
      const notAnObject = bad("data is not a JSON object");
      const [data, expected] = rng.pick<[string, Expected]>([
        [sealed.replaceAll("+", "-").replaceAll("/", "_") + "-_", undecryptable],
        [sealed.endsWith("=") ? sealed.replace(/=+$/, "") : sealed.slice(0, -1), undecryptable],
        [` ${sealed}`, notAnObject],
        [`${sealed.slice(0, 10)}\n${sealed.slice(10)}`, notAnObject],
        ["====", undecryptable],
        ["@@@@", undecryptable],
        [`${sealed}=`, undecryptable],
        ["A", undecryptable],
        [sealed.slice(0, 22) + "**" + sealed.slice(24), undecryptable],
      ]);
      const envelope = await signedData(p, "CREATE_USER", data);
      return { family: "bad-base64", request: request(p, JSON.stringify(envelope)), expected, authenticated: true, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "truncated-ciphertext",
    3,
    async (rng) => {
      const p = rng.pick([GCM, GCM_PREFIX, CBC]);
      const { type, message } = validPayload(rng);
      const sealed = p.encryption === "aes-cbc" ? await cbcSeal(p.encryptionKey, message, p.receiveId ?? "") : await gcmSeal(p.encryptionKey, message, p.layout!);
      const bytes = unb64(p.layout === "iv16-b64-prefix" ? sealed.slice(24) : sealed);
      const cut = rng.int(0, bytes.length - 1);
      const truncated = b64(bytes.slice(0, cut)) || "AAAA";
      const data = p.layout === "iv16-b64-prefix" ? sealed.slice(0, 24) + truncated : truncated;
      const envelope = await signedData(p, type, data);
      return { family: "truncated-ciphertext", request: request(p, JSON.stringify(envelope)), expected: bad("data cannot be decrypted"), authenticated: true, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "bad-padding",
    2,
    async (rng) => {
      const p = CBC;
      const message = te.encode(JSON.stringify({ username: `${SENTINEL}.pad`, name: SENTINEL, password: PASSWORD }));
      // Each a whole number of 32-byte blocks whose padding is wrong: zeros, inconsistent bytes, a value over
      // 32, or 255.
      const paddings: Array<(n: number) => Uint8Array> = [
        (n) => new Uint8Array(n),
        (n) => new Uint8Array(n).fill(n).map((b, i) => (i === 0 && n > 1 ? b ^ 1 : b)),
        (n) => new Uint8Array(n + 32).fill(n + 32),
        (n) => new Uint8Array(n).fill(255),
      ];
      const data = await cbcRaw(p.encryptionKey, message, p.receiveId ?? "", rng.pick(paddings));
      const envelope = await signedData(p, "CREATE_USER", data);
      return { family: "bad-padding", request: request(p, JSON.stringify(envelope)), expected: bad("data cannot be decrypted"), authenticated: true, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "invalid-utf8-plaintext",
    2,
    async (rng) => {
      const p = rng.pick([GCM, CBC]);
      const bad8 = new Uint8Array([...te.encode(`{"username":"${SENTINEL}`), ...rng.pick(INVALID_UTF8), ...te.encode('","name":"x"}')]);
      const prefix = te.encode(`${randomNonce(16)}&`);
      const data =
        p.encryption === "aes-cbc"
          ? await cbcRaw(p.encryptionKey, bad8, p.receiveId ?? "")
          : await gcmRaw(p.encryptionKey, new Uint8Array([...(rng.chance(0.8) ? prefix : te.encode(randomNonce(17))), ...bad8]));
      const envelope = await signedData(p, "CREATE_USER", data);
      return { family: "invalid-utf8", request: request(p, JSON.stringify(envelope)), expected: bad("data cannot be decrypted"), authenticated: true, p, forbidden: forbiddenOf(envelope) };
    },
  ],
  [
    "bad-payload",
    3,
    async (rng) => {
      const p = rng.pick([GCM, HMAC, CBC]);
      const u = `${SENTINEL}.p${rng.digits(6)}`;
      const ext = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`ext${i}`, i]));
      const cases: Array<[string, unknown, string]> = [
        ["CREATE_USER", `{"username":"${u}"`, "data is not a JSON object"],
        ["CREATE_USER", [u], "data is not a JSON object"],
        ["CREATE_USER", { username: 5, name: SENTINEL }, "username must be a string"],
        ["CREATE_USER", { username: u }, "name is required"],
        ["CREATE_USER", { username: u, name: SENTINEL.repeat(5), password: PASSWORD }, "name exceeds 40 characters"],
        ["CREATE_USER", { username: u.repeat(10), name: "x" }, "username exceeds 100 characters"],
        ["CREATE_USER", { id: "usr_x", username: u, name: "x" }, "data does not match eventType"],
        ["CREATE_USER", JSON.parse(`{"username":"${u}","name":"x","__proto__":{"admin":true}}`), "extension attribute name is invalid"],
        ["CREATE_USER", { username: u, name: "x", constructor: PASSWORD }, "extension attribute name is invalid"],
        ["CREATE_USER", { username: u, name: "x", "1abc": 1 }, "extension attribute name is invalid"],
        ["CREATE_USER", { username: u, name: "x", "a b": 1 }, "extension attribute name is invalid"],
        ["CREATE_USER", { username: u, name: "x", ...ext }, "more than 64 extension attributes"],
        ["CREATE_USER", { username: u, name: "x", big: SENTINEL.repeat(500) }, "extension attributes exceed 8192 bytes"],
        ["CREATE_USER", { username: u, name: "x", disabled: "maybe", password: PASSWORD }, "disabled must be a boolean"],
        ["CREATE_USER", { username: u, name: "x", password: 12345 }, "password must be a string"],
        ["CREATE_USER", { username: u, name: "x", code: "c" }, "data does not match eventType"],
        ["CREATE_USER", `{"username":"${u}","name":"x","deep":${nested(rng.pick([5_000, 20_000, 60_000]))}}`, "extension attribute nested deeper than 32 levels"],
        ["CREATE_ORGANIZATION", { code: u, name: "x".repeat(41) }, "name exceeds 40 characters"],
        ["CREATE_ORGANIZATION", { code: u, name: "x", username: u }, "data does not match eventType"],
        ["CREATE_ORGANIZATION", { code: u, name: "x", parentId: 7 }, "parentId must be a string"],
        ["UPDATE_USER", { id: "usr_x", name: "x" }, "username is required"],
        ["UPDATE_USER", { id: "org_x", username: u }, "id must start with usr_"],
        ["UPDATE_ORGANIZATION", { id: "org_x", code: u }, "name is required"],
        ["UPDATE_ORGANIZATION", { id: "usr_x", code: u, name: "x" }, "id must start with org_"],
        ["DELETE_USER", { id: "usr_x", username: u }, "data does not match eventType"],
        ["DELETE_USER", { id: "org_x" }, "id must start with usr_"],
        ["DELETE_ORGANIZATION", {}, "data does not match eventType"],
        ["DELETE_ORGANIZATION", { id: "" }, "id is required"],
        ["DELETE_USER", "null", "data is not a JSON object"],
        ["CHECK_URL", "", "data is required"],
        ["CHECK_URL", { username: u, name: "x" }, "data does not match eventType"],
      ];
      const [type, payload, message] = rng.pick(cases);
      const envelope = await buildEnvelope(p, type, typeof payload === "string" ? payload : JSON.stringify(payload));
      return { family: "bad-payload", request: request(p, JSON.stringify(envelope)), expected: bad(message), authenticated: true, p, forbidden: forbiddenOf(envelope) };
    },
  ],
];

// --- the run ----------------------------------------------------------------------------------------

interface FamilyTally {
  cases: number;
  refused: number;
  byStatus: Record<number, number>;
}

const tally = {
  cases: 0,
  refused: 0,
  uncaught: 0,
  unexpected: [] as string[],
  unauthenticated: 0,
  authenticated: 0,
  storageCalls: 0,
  leaks: [] as string[],
  lines: 0,
  families: new Map<string, FamilyTally>(),
  byStatus: {} as Record<number, number>,
};

let capture: ReturnType<typeof captureConsole>;
beforeAll(() => {
  capture = captureConsole();
});
afterAll(() => capture.restore());

function leaksIn(lines: Captured[], forbidden: string[]): string[] {
  const all = [...secrets(), SENTINEL, PASSWORD, ...forbidden];
  const found: string[] = [];
  for (const { text } of lines) {
    for (const s of all) if (s && text.includes(s)) found.push(`${s.slice(0, 24)}… in ${text.slice(0, 200)}`);
    // A run of Base64 this long is a key, a ciphertext or a signature: no log field holds one.
    if (/[A-Za-z0-9+/]{28,}/.test(text)) found.push(`Base64-like run in ${text.slice(0, 200)}`);
  }
  return found;
}

describe("malformed-input corpus through the Worker", () => {
  it(`${CORPUS_SIZE} malformed requests: answered as pinned, no storage before authentication, nothing secret logged`, { timeout: 60_000 + CORPUS_SIZE * 20 }, async () => {
    const rng = new Rng(`corpus-${CORPUS_SIZE}`);
    // Every family in turn, by weight, so each gets its share whatever the size.
    const schedule = families.flatMap(([, weight], i) => Array.from({ length: weight }, () => i));
    for (let n = 0; n < CORPUS_SIZE; n++) {
      const [name, , make] = families[schedule[n % schedule.length]!]!;
      const c = await make(rng);
      const spies = storageSpies(testEnv);
      const before = capture.lines.length;
      let status = 0;
      let code = "";
      let message = "";
      try {
        const res = await callWorker(c.request, { ...envFor(c.p), DB: spies.DB, EVENT_LEDGER: spies.EVENT_LEDGER });
        status = res.status;
        ({ code, message } = (await res.json()) as { code: string; message: string });
      } catch (e) {
        tally.uncaught++;
        tally.unexpected.push(`${name}: threw ${e instanceof Error ? e.name : typeof e}`);
      }
      const lines = capture.lines.slice(before);
      tally.lines += lines.length;
      tally.cases++;
      const f = tally.families.get(c.family) ?? { cases: 0, refused: 0, byStatus: {} };
      tally.families.set(c.family, f);
      f.cases++;
      const pinned = c.expected;
      const messageMatches = typeof pinned.message === "string" ? message === pinned.message : pinned.message.test(message);
      if (status === pinned.status && code === String(status) && messageMatches) {
        tally.refused++;
        f.refused++;
        f.byStatus[status] = (f.byStatus[status] ?? 0) + 1;
        tally.byStatus[status] = (tally.byStatus[status] ?? 0) + 1;
      } else if (status !== 0) {
        tally.unexpected.push(`${name}: answered ${status} "${message}", pinned ${pinned.status} "${String(pinned.message)}"`);
      }
      if (lines.length !== 1) tally.unexpected.push(`${name}: ${lines.length} log lines`);
      if (lines.some((l) => l.text.includes("unhandled error"))) tally.uncaught++;
      if (c.authenticated) {
        // Authenticated, then refused for its payload: the request reached its replay key's object, which
        // audits the refusal once.
        tally.authenticated++;
        if (!spies.calls.includes("EVENT_LEDGER.get")) tally.unexpected.push(`${name}: labelled authenticated but never reached the replay store`);
      } else {
        tally.unauthenticated++;
        tally.storageCalls += spies.calls.length;
        if (spies.calls.length > 0) tally.unexpected.push(`${name}: storage used before authentication: ${spies.calls.join(", ")}`);
      }
      tally.leaks.push(...leaksIn(lines, c.forbidden));
      if (tally.unexpected.length > 20 || tally.leaks.length > 20) break;
    }
    expect(tally.unexpected).toEqual([]);
    expect(tally.leaks).toEqual([]);
    expect(tally.uncaught).toBe(0);
    expect(tally.refused).toBe(CORPUS_SIZE);
    expect(tally.lines).toBe(CORPUS_SIZE);
  });

  it("summary", async (context) => {
    capture.restore();
    const perFamily = [...tally.families].map(([name, f]) => `${name}:${f.refused}/${f.cases}`).join(",");
    await summarize(context, "corpus", {
      cases: tally.cases,
      "as-pinned": tally.refused,
      "status-400": tally.byStatus[400] ?? 0,
      "status-401": tally.byStatus[401] ?? 0,
      "status-405": tally.byStatus[405] ?? 0,
      "status-413": tally.byStatus[413] ?? 0,
      "status-415": tally.byStatus[415] ?? 0,
      uncaught: tally.uncaught,
      unauthenticated: tally.unauthenticated,
      authenticated: tally.authenticated,
      "storage-calls-unauthenticated": tally.storageCalls,
      leaks: tally.leaks.length,
    });
    // Per-family figures, for the README and for whoever reads the log.
    await context.annotate(`corpus families ${perFamily}`);
    console.log(`corpus families ${perFamily}`);
    // Every family ran and was answered as pinned, each status appeared, and both kinds of case were sent.
    expect(tally.families.size).toBe(families.length - 1); // invalid-utf8 body and plaintext share a family name
    for (const [name, f] of tally.families) expect(f.refused, name).toBe(f.cases);
    for (const status of [400, 401, 405, 413, 415]) expect(tally.byStatus[status] ?? 0, String(status)).toBeGreaterThan(0);
    expect(tally.authenticated).toBeGreaterThan(0);
    expect(tally.unauthenticated + tally.authenticated).toBe(tally.cases);
  });
});

// Found by this corpus: an extension value nested some 20 000 deep made parseEvent throw (JSON.stringify ran
// out of stack) and the request was answered 500, which OneAccess retries for ever. It is a 400 now.
describe("deeply nested extension values", () => {
  it("up to 32 levels are kept, deeper is a 400 naming the limit, however deep", async () => {
    const { parseEvent } = await import("../../src/protocol/events");
    const user = (deep: string) => `{"username":"deep","name":"x","deep":${deep}}`;
    expect(parseEvent("CREATE_USER", user(nested(32))).ok).toBe(true);
    expect(parseEvent("CREATE_USER", user(nested(16, '{"a":', "}")))).toMatchObject({ ok: true });
    for (const depth of [33, 1_000, 20_000, 100_000]) {
      expect(parseEvent("CREATE_USER", user(nested(depth)))).toEqual({
        ok: false,
        failure: { kind: "bad-request", message: "extension attribute nested deeper than 32 levels" },
      });
    }
    const envelope = await buildEnvelope(GCM, "CREATE_USER", user(nested(20_000)));
    const res = await callWorker(toRequest(CALLBACK_URL, GCM, JSON.stringify(envelope)), envFor(GCM));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "400", message: "extension attribute nested deeper than 32 levels" });
  });
});
