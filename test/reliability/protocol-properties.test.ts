// Issue #7, property tests of the protocol (fast-check, RUNS runs per property; RELIABILITY_RUNS for more):
// - seal → open round-trips any message (`&`, emoji, NUL, 64 KiB), between our code and the independent
//   sender in both directions, in every layout, at the cipher level, at the envelope level, and through the
//   Worker (CHECK_URL echo);
// - any single change to a signed request (one bit of any field's value or name, of the signature, of the
//   signing key, of the bearer token) is refused with the status and message pinned for that change, with no
//   storage binding touched at all.
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { openCbc, sealCbc } from "../../src/protocol/cbc";
import { authenticateEnvelope, checkBearer, openEnvelope, sealReply, type ProtocolSettings } from "../../src/protocol/callback";
import { openGcm, sealGcm, GCM_LAYOUTS } from "../../src/protocol/gcm";
import { storageSpies } from "../helpers/spies";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import {
  buildEnvelope,
  cbcOpen,
  cbcSeal,
  gcmOpen,
  gcmOpenAny,
  gcmSeal,
  openReply,
  randomNonce,
  toRequest,
  type Envelope,
  type SenderProfile,
} from "../sender/oneaccess-sender";
import { RUNS, summarize } from "./support";

const keys = () => testEnv.VECTORS.keys;
/** Per-test timeout, growing with RELIABILITY_RUNS (about 6 ms a run through the Worker on 2 shared cores, 4× that). */
const TIMEOUT_MS = Math.max(60_000, RUNS * 25);
const tally = {
  roundTrips: 0,
  workerEchoes: 0,
  tampered: 0,
  storageCalls: 0,
  byStatus: {} as Record<number, number>,
  /** Per mutation family ("value:nonce", "name", "bearer"…): how many runs changed that. */
  byFamily: {} as Record<string, number>,
};

// --- messages ---------------------------------------------------------------------------------------

const SPECIALS = ["&", "R&D", "研发部 R&D", "a&b&c", "&&&", "😀", "👩‍👩‍👧‍👦", "\u0000", "\u2028", "\"}", "\\", "é", "São Paulo", "=", "=="];

/** A string of exactly `bytes` UTF-8 bytes: `unit`'s code points repeated while they fit, then ASCII. */
function sized(unit: string, bytes: number): string {
  const points = [...unit].map((c) => [c, new TextEncoder().encode(c).length] as const);
  const parts: string[] = [];
  let used = 0;
  for (let i = 0; ; i = (i + 1) % points.length) {
    const [c, n] = points[i]!;
    if (used + n > bytes) break;
    parts.push(c);
    used += n;
  }
  return parts.join("") + "x".repeat(bytes - used);
}

const message = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 300 }) },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.oneof(fc.constantFrom(...SPECIALS), fc.string({ unit: "grapheme", maxLength: 6 })), { maxLength: 40 })
      .map((parts) => parts.join("")),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.string({ unit: "binary", minLength: 1, maxLength: 40 }), fc.constantFrom(65_535, 65_536, 65_537, 60_000, 70_000))
      .map(([unit, bytes]) => sized(unit, bytes)),
  },
);
/** A CHECK_URL's random string: not empty, and never a JSON object (that is another event's data: refused). */
function isJsonObjectText(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}
const nonEmpty = message.filter((m) => m.length > 0 && !isJsonObjectText(m));

function settingsFor(p: SenderProfile): ProtocolSettings {
  return {
    bearerTokens: [p.bearer],
    signature: p.signature,
    signingKeys: p.signature === "none" ? [] : [p.signingKey],
    encryption: p.encryption,
    encryptionKeys: p.encryption === "none" ? [] : [p.encryptionKey],
    gcmLayout: "auto",
    receiveId: p.encryption === "aes-cbc" ? (p.receiveId ?? "") : "",
    toleranceSeconds: 300,
  };
}

const PROFILES: SenderProfile[] = [
  profile("sha1+gcm", "iv16-b64-prefix"),
  profile("sha1+gcm", "iv12"),
  profile("hmac+gcm", "iv16"),
  profile("sha1+cbc"),
  { ...profile("hmac+gcm"), encryption: "none", encryptionKey: "" },
];
const profileArb = fc.constantFrom(...PROFILES.map((_, i) => i)).map((i) => PROFILES[i]!);

describe("seal → open round-trips any message", () => {
  it(`cipher level: ours ↔ ours and ours ↔ the independent sender, every GCM layout and CBC (${RUNS} runs)`, { timeout: TIMEOUT_MS }, async () => {
    const gcmKey = keys().gcmKey;
    const cbcKey = keys().cbcKey;
    const receiveId = keys().receiveId;
    await fc.assert(
      fc.asyncProperty(message, async (msg) => {
        for (const layout of GCM_LAYOUTS) {
          const ours = await sealGcm(msg, gcmKey, layout);
          expect(await openGcm(ours, [gcmKey], "auto")).toEqual({ ok: true, message: msg, layout, keyIndex: 0 });
          expect(await gcmOpen(gcmKey, ours, layout)).toBe(msg);
          const theirs = await gcmSeal(gcmKey, msg, layout);
          expect(await openGcm(theirs, [gcmKey], layout)).toMatchObject({ ok: true, message: msg, layout });
        }
        const ours = await sealCbc(msg, cbcKey, receiveId);
        expect(await openCbc(ours, [cbcKey], receiveId)).toEqual({ ok: true, message: msg, receiveId, keyIndex: 0 });
        expect(await cbcOpen(cbcKey, ours)).toEqual({ message: msg, receiveId });
        const theirs = await cbcSeal(cbcKey, msg, receiveId);
        expect(await openCbc(theirs, [cbcKey], receiveId)).toMatchObject({ ok: true, message: msg, receiveId });
        tally.roundTrips += 4 * GCM_LAYOUTS.length + 4;
      }),
      { numRuns: RUNS },
    );
  });

  it(`envelope level: the sender's signed, sealed CHECK_URL authenticates, opens to the message, and the sealed reply opens to it again (${RUNS} runs)`, { timeout: TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(profileArb, nonEmpty, async (p, msg) => {
        const settings = settingsFor(p);
        const envelope = await buildEnvelope(p, "CHECK_URL", msg);
        const auth = await authenticateEnvelope(settings, JSON.stringify(envelope), Date.now(), 0);
        if (!auth.ok) throw new Error(`refused: ${JSON.stringify(auth.failure)}`);
        const opened = await openEnvelope(settings, auth.value.envelope);
        if (!opened.ok) throw new Error(`not opened: ${JSON.stringify(opened.failure)}`);
        expect(opened.value.event).toEqual({ type: "CHECK_URL", echo: msg });
        const reply = await sealReply(settings, opened.value.seal, "200", "success", msg);
        const back =
          p.encryption === "none"
            ? reply.data
            : p.encryption === "aes-cbc"
              ? (await cbcOpen(p.encryptionKey, reply.data)).message
              : (await gcmOpenAny(p.encryptionKey, reply.data)).message;
        expect(back).toBe(msg);
        tally.roundTrips += 2;
      }),
      { numRuns: RUNS },
    );
  });

  const workerRuns = Math.max(50, Math.floor(RUNS / 5));
  it(`through the Worker: CHECK_URL echoes any message, sealed in the request's layout (${workerRuns} runs)`, { timeout: TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(profileArb, nonEmpty, async (p, msg) => {
        const envelope = await buildEnvelope(p, "CHECK_URL", msg);
        // A 64 KiB message of control characters is six times that once JSON-escaped (encryption off):
        // raise the body limit so this property tests the round trip, not MAX_BODY_BYTES.
        const res = await callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), { ...envFor(p), MAX_BODY_BYTES: "4194304" });
        const reply = await openReply(p, res);
        expect(reply).toMatchObject({ status: 200, code: "200", plaintext: msg });
        if (p.encryption === "aes-gcm") expect(reply.layout).toBe(p.layout);
        tally.workerEchoes++;
      }),
      { numRuns: workerRuns },
    );
  });
});

// --- tampering --------------------------------------------------------------------------------------

/** The last Base64 character before the padding with its lowest bit flipped: unused bits, same digest. */
function withSpareBit(b64: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const i = b64.indexOf("=") - 1;
  return b64.slice(0, i) + alphabet[alphabet.indexOf(b64[i]!) ^ 1] + b64.slice(i + 1);
}

const FIELDS = ["nonce", "timestamp", "eventType", "data", "signature"] as const;
type Field = (typeof FIELDS)[number];

type Mutation =
  | { kind: "value"; field: Field; at: number; bit: number }
  | { kind: "name"; field: Field; at: number; bit: number }
  | { kind: "signing-key"; at: number; bit: number }
  | { kind: "bearer"; at: number; bit: number };

/** One bit of one UTF-16 code unit flipped (bits 0-7: an ASCII character stays in the BMP, never a surrogate). */
export function flipBit(text: string, at: number, bit: number): string {
  const i = at % text.length;
  return text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ (1 << bit)) + text.slice(i + 1);
}

const bitArb = fc.integer({ min: 0, max: 7 });
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("value" as const), field: fc.constantFrom(...FIELDS), at: fc.nat(), bit: bitArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("name" as const), field: fc.constantFrom(...FIELDS), at: fc.nat(), bit: bitArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("signing-key" as const), at: fc.nat(), bit: bitArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("bearer" as const), at: fc.nat(), bit: bitArb }) },
);

const EVENT_TYPES = ["CHECK_URL", "CREATE_ORGANIZATION", "UPDATE_ORGANIZATION", "DELETE_ORGANIZATION", "CREATE_USER", "UPDATE_USER", "DELETE_USER"] as const;
const eventArb = fc.record({
  type: fc.constantFrom(...EVENT_TYPES),
  text: fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }),
  millis: fc.boolean(),
});

function payloadOf(type: (typeof EVENT_TYPES)[number], text: string): string {
  const id = `usr_${randomNonce(12)}`;
  switch (type) {
    case "CHECK_URL":
      return text;
    case "CREATE_ORGANIZATION":
      return JSON.stringify({ code: `tamper-${randomNonce(10)}`, name: text.slice(0, 20) });
    case "UPDATE_ORGANIZATION":
      return JSON.stringify({ id, code: `tamper-${randomNonce(10)}`, name: text.slice(0, 20) });
    case "CREATE_USER":
      return JSON.stringify({ username: `tamper-${randomNonce(10)}`, name: text.slice(0, 20), password: "Tamper-Secret-1" });
    case "UPDATE_USER":
      return JSON.stringify({ id, username: `tamper-${randomNonce(10)}`, name: text.slice(0, 20) });
    default:
      return JSON.stringify({ id });
  }
}

/** The envelope as a key → value list, so that a key can be renamed in place. */
function mutateEnvelope(envelope: Envelope, m: Mutation & { kind: "value" | "name" }): string {
  const entries = Object.entries(envelope) as Array<[string, unknown]>;
  const index = entries.findIndex(([k]) => k === m.field);
  const [key, value] = entries[index]!;
  if (m.kind === "name") {
    entries[index] = [flipBit(key, m.at, m.bit), value];
  } else if (typeof value === "number") {
    const flipped = flipBit(String(value), m.at, m.bit);
    entries[index] = [key, /^[1-9][0-9]*$/.test(flipped) ? Number(flipped) : flipped];
  } else {
    entries[index] = [key, flipBit(String(value), m.at, m.bit)];
  }
  return JSON.stringify(Object.fromEntries(entries));
}

/**
 * What each kind of change must be answered with (status and message), and the reason the operator's log
 * line gives. A change to a signed field is an authentication failure; a change that breaks the envelope's
 * shape is a 400 naming it, found before anything is verified.
 */
function pinnedAnswer(m: Mutation, body: string): { status: number; message: string | RegExp; reason: string | RegExp } {
  const UNAUTHORIZED = "authentication failed";
  switch (m.kind) {
    case "name":
      return { status: 400, message: "unexpected field in envelope", reason: "unexpected field in envelope" };
    case "signing-key":
      return { status: 401, message: UNAUTHORIZED, reason: "signature-mismatch" };
    case "bearer":
      return { status: 401, message: UNAUTHORIZED, reason: "bearer-mismatch" };
    case "value":
      switch (m.field) {
        case "eventType":
          return { status: 400, message: "unknown eventType", reason: "unknown eventType" };
        case "timestamp": {
          // Still 10 or 13 digits: signed, so a mismatch (or outside the window first); else its shape is wrong.
          const ts = (JSON.parse(body) as { timestamp: unknown }).timestamp;
          if (/^(?:[0-9]{10}|[0-9]{13})$/.test(String(ts)) && (typeof ts === "number" || typeof ts === "string")) {
            return { status: 401, message: UNAUTHORIZED, reason: /^(signature-mismatch|timestamp-outside-window)$/ };
          }
          return { status: 400, message: /^timestamp must /, reason: /^timestamp must / };
        }
        case "nonce":
        case "data":
          return { status: 401, message: UNAUTHORIZED, reason: "signature-mismatch" };
        case "signature":
          return { status: 401, message: UNAUTHORIZED, reason: /^signature-(mismatch|missing)$/ };
      }
  }
}

function familyOf(m: Mutation): string {
  return m.kind === "value" ? `value:${m.field}` : m.kind;
}

describe("any single change to a signed request is refused as pinned, and no storage is touched", () => {
  it(`one bit of a field's value or name, of the signature, of the signing key or of the bearer token (${RUNS} runs through the Worker)`, { timeout: TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(profileArb.filter((p) => p.signature !== "none"), eventArb, mutationArb, async (p, event, m) => {
        const timestamp = event.millis ? Date.now() : Math.floor(Date.now() / 1000);
        const original = await buildEnvelope(p, event.type, payloadOf(event.type, event.text), { timestamp });
        // Control: untouched, the request authenticates (so the refusal below is the change's doing).
        const control = await authenticateEnvelope(settingsFor(p), JSON.stringify(original), Date.now(), 0);
        expect(control.ok).toBe(true);
        expect((await checkBearer(`Bearer ${p.bearer}`, [p.bearer])).ok).toBe(true);

        let body: string;
        let bearer = p.bearer;
        switch (m.kind) {
          case "value":
          case "name":
            body = mutateEnvelope(original, m);
            break;
          case "signing-key": {
            const forged = await buildEnvelope(p, event.type, payloadOf(event.type, event.text), {
              timestamp,
              signWith: flipBit(p.signingKey, m.at, m.bit),
            });
            body = JSON.stringify(forged);
            break;
          }
          case "bearer":
            body = JSON.stringify(original);
            // A header carries visible ASCII: a flip to a control or non-ASCII character takes the next bit.
            for (let b = m.bit; ; b = (b + 1) % 8) {
              bearer = flipBit(p.bearer, m.at, b);
              if (/^[\x21-\x7e]+$/.test(bearer)) break;
            }
            break;
        }
        const spies = storageSpies(testEnv);
        const lines: string[] = [];
        const warn = vi.spyOn(console, "warn").mockImplementation((line: unknown) => void lines.push(String(line)));
        let res: Response;
        try {
          res = await callWorker(toRequest(CALLBACK_URL, p, body, { bearer }), { ...envFor(p), DB: spies.DB, EVENT_LEDGER: spies.EVENT_LEDGER });
        } finally {
          warn.mockRestore();
        }
        const reply = (await res.json()) as { code: string; message: string; data: string };
        const pinned = pinnedAnswer(m, body);
        const what = `${JSON.stringify(m)} answered ${res.status} ${reply.message}`;
        expect(res.status, what).toBe(pinned.status);
        expect(reply, what).toMatchObject({ code: String(pinned.status), message: pinned.message, data: "" });
        const line = JSON.parse(lines.find((l) => l.includes('"msg":"callback"'))!) as { reason: string };
        expect(line.reason, what).toMatch(typeof pinned.reason === "string" ? new RegExp(`^${pinned.reason}$`) : pinned.reason);
        tally.storageCalls += spies.calls.length;
        expect(spies.calls, `${JSON.stringify(m)} touched storage`).toEqual([]);
        tally.tampered++;
        tally.byStatus[res.status] = (tally.byStatus[res.status] ?? 0) + 1;
        tally.byFamily[familyOf(m)] = (tally.byFamily[familyOf(m)] ?? 0) + 1;
      }),
      { numRuns: RUNS },
    );
  });

  // Found by the property above: the signature was accepted in another encoding of the same digest.
  it("another text of the same digest is a change too: uppercase hex, and Base64 with its spare low bits set", async () => {
    const sha1 = profile("sha1+gcm", "iv12");
    const hmac = profile("hmac+gcm", "iv12");
    const sha1Base64 = async () => {
      const e = await buildEnvelope(sha1, "CHECK_URL", "canonical");
      const hex = e.signature.match(/../g)!.map((h) => String.fromCharCode(parseInt(h, 16))).join("");
      return { ...e, signature: btoa(hex) };
    };
    const variants: Array<[string, SenderProfile, () => Promise<Envelope>]> = [
      ["sha1 hex in uppercase", sha1, async () => {
        const e = await buildEnvelope(sha1, "CHECK_URL", "canonical");
        return { ...e, signature: e.signature.toUpperCase() };
      }],
      ["sha1 Base64 with a spare bit set", sha1, async () => {
        const e = await sha1Base64();
        return { ...e, signature: withSpareBit(e.signature) };
      }],
      ["hmac-sha256 Base64 with a spare bit set", hmac, async () => {
        const e = await buildEnvelope(hmac, "CHECK_URL", "canonical");
        return { ...e, signature: withSpareBit(e.signature) };
      }],
    ];
    // The canonical texts are accepted (the 28-character Base64 SHA-1 digest included).
    expect((await authenticateEnvelope(settingsFor(sha1), JSON.stringify(await sha1Base64()), Date.now(), 0)).ok).toBe(true);
    for (const [name, p, make] of variants) {
      const envelope = await make();
      const auth = await authenticateEnvelope(settingsFor(p), JSON.stringify(envelope), Date.now(), 0);
      expect(auth.ok, name).toBe(false);
      const res = await callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), envFor(p));
      expect(res.status, name).toBe(401);
    }
  });

  it("summary", async (context) => {
    const families = ["value:nonce", "value:timestamp", "value:eventType", "value:data", "value:signature", "name", "signing-key", "bearer"];
    await summarize(context, "properties/protocol", {
      runs: RUNS,
      "round-trips": tally.roundTrips,
      "worker-echoes": tally.workerEchoes,
      tampered: tally.tampered,
      "refused-400": tally.byStatus[400] ?? 0,
      "refused-401": tally.byStatus[401] ?? 0,
      ...Object.fromEntries(families.map((f) => [f, tally.byFamily[f] ?? 0])),
      "storage-calls": tally.storageCalls,
    });
    // Every answer was one of the two pinned statuses, and every family of change was exercised.
    expect((tally.byStatus[400] ?? 0) + (tally.byStatus[401] ?? 0)).toBe(tally.tampered);
    expect(tally.tampered).toBe(RUNS);
    for (const f of families) expect(tally.byFamily[f] ?? 0, f).toBeGreaterThan(0);
    expect(tally.storageCalls).toBe(0);
  });
});
