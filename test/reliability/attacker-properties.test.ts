// What someone holding the bearer token and one captured request would send: the request's signature-preserving
// variants. For random signing keys, nonces of letters and of digits, 10- and 13-digit timestamps and every
// event type, each run builds an accepted request and one variant of it:
//   - the boundary shift (digits moved between the timestamp and the nonce, either way, when the sorted sha1
//     text stays the same),
//   - the timestamp as a number or as a string,
//   - the envelope re-serialised (whitespace, key order, \u escapes),
//   - the same digest in hex and in Base64 (sha1),
//   - the eventType relabelled to each of the other six types (not signed under sha1),
// and sends variant and original in both orders, each in a world of its own, next to a twin world that gets
// the original alone. Oracle: the directory after the pair is what the original alone produces, the audit
// table holds the original's rows plus at most one refusal (a refused payload is audited once per replay
// key), and the genuine request is never answered 401. Independent of src/: requests come from the test's
// sender, variants are built here from the contract.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { callWorker, CALLBACK_URL, testEnv } from "../helpers/worker";
import { b64, buildEnvelope, openReply, randomNonce, sha1Signature, toRequest, unb64, type Envelope, type SenderProfile } from "../sender/oneaccess-sender";
import { RUNS, summarize } from "./support";

const RUN_COUNT = Math.max(40, Math.floor(RUNS / 10));
/** Per-test timeout: each run sends about a dozen requests through the Worker. */
const TIMEOUT_MS = 60_000 + RUN_COUNT * 400;

const TYPES = ["CHECK_URL", "CREATE_ORGANIZATION", "UPDATE_ORGANIZATION", "DELETE_ORGANIZATION", "CREATE_USER", "UPDATE_USER", "DELETE_USER"] as const;
type EventType = (typeof TYPES)[number];
const VARIANTS = ["shift", "timestamp-type", "respell", "digest-encoding", "relabel"] as const;
type VariantKind = (typeof VARIANTS)[number];

const tally = {
  runs: 0,
  pairs: 0,
  byVariant: {} as Record<string, number>,
  byType: {} as Record<string, number>,
  shiftsFound: 0,
  relabelRefusals: 0,
  genuine401: 0,
  mismatches: 0,
};
const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

// --- the world a run plays in ------------------------------------------------------------------------------

/** Sends a body with the profile's bearer token under a Worker configured for the profile. */
async function post(p: SenderProfile, body: string) {
  const env = {
    ONEACCESS_SIGNATURE: p.signature,
    ONEACCESS_ENCRYPTION: p.encryption,
    ONEACCESS_SIGNING_KEY: p.signingKey,
    ONEACCESS_ENCRYPTION_KEY: p.encryptionKey,
    ONEACCESS_RECEIVE_ID: p.receiveId ?? "",
  };
  return openReply(p, await callWorker(toRequest(CALLBACK_URL, p, body), env));
}

interface World {
  tag: string;
  orgId: string;
  emptyOrgId: string;
  userId: string;
}

/** A small directory of the world's own: an organization with one member, and an empty organization. */
async function setUp(p: SenderProfile, tag: string): Promise<World> {
  const at = Date.now() - 20_000;
  const create = async (type: EventType, payload: object, ts: number) => {
    const e = await buildEnvelope(p, type, JSON.stringify(payload), { timestamp: ts });
    const r = await post(p, JSON.stringify(e));
    if (r.code !== "200") throw new Error(`set-up ${type} answered ${r.code} ${r.message}`);
    return (JSON.parse(r.plaintext) as { id: string }).id;
  };
  const orgId = await create("CREATE_ORGANIZATION", { code: `${tag}-org`, name: "Org" }, at);
  const emptyOrgId = await create("CREATE_ORGANIZATION", { code: `${tag}-empty`, name: "Empty" }, at + 1);
  const userId = await create("CREATE_USER", { username: `${tag}-user`, name: "User", organizationId: orgId, disabled: false }, at + 2);
  return { tag, orgId, emptyOrgId, userId };
}

/** The event under test, in this world. */
function payloadFor(type: EventType, w: World): string {
  switch (type) {
    case "CHECK_URL":
      return `echo-${w.tag.length}-random`;
    case "CREATE_ORGANIZATION":
      return JSON.stringify({ code: `${w.tag}-new-org`, name: "New org", parentId: w.orgId });
    case "UPDATE_ORGANIZATION":
      return JSON.stringify({ id: w.orgId, code: `${w.tag}-org`, name: "Renamed org" });
    case "DELETE_ORGANIZATION":
      return JSON.stringify({ id: w.emptyOrgId });
    case "CREATE_USER":
      return JSON.stringify({ username: `${w.tag}-new-user`, name: "New user", organizationId: w.orgId });
    case "UPDATE_USER":
      return JSON.stringify({ id: w.userId, username: `${w.tag}-user`, name: "Disabled user", disabled: true });
    case "DELETE_USER":
      return JSON.stringify({ id: w.userId });
  }
}

/** What a world looks like, without what differs between worlds (ids, the tag, wall-clock times). */
async function observe(w: World, nonces: string[]) {
  const strip = (v: string | null) => (v === null ? null : v.split(w.tag).join("<w>"));
  const ids = new Map<string, string>();
  const idOf = (id: string | null) => (id === null ? null : (ids.get(id) ?? id));
  const orgs = await testEnv.DB.prepare("SELECT id, code, name, parent_id, deleted_at, version, event_ts FROM organizations WHERE code LIKE ? ORDER BY code")
    .bind(`${w.tag}-%`)
    .all<{ id: string; code: string; name: string; parent_id: string | null; deleted_at: number | null; version: number; event_ts: number }>();
  for (const o of orgs.results) ids.set(o.id, `org:${strip(o.code)}`);
  const users = await testEnv.DB.prepare("SELECT username, name, organization_id, disabled, deleted_at, version, event_ts FROM users WHERE username LIKE ? ORDER BY username")
    .bind(`${w.tag}-%`)
    .all<{ username: string; name: string; organization_id: string | null; disabled: number; deleted_at: number | null; version: number; event_ts: number }>();
  const placeholders = nonces.map(() => "?").join(", ");
  const audit = await testEnv.DB.prepare(`SELECT event_type, code, message FROM deliveries WHERE nonce IN (${placeholders}) ORDER BY id`)
    .bind(...nonces)
    .all<{ event_type: string; code: string; message: string }>();
  return {
    directory: {
      organizations: orgs.results.map((o) => ({ code: strip(o.code), name: o.name, parent: idOf(o.parent_id), deleted: o.deleted_at !== null, version: o.version })),
      users: users.results.map((u) => ({
        username: strip(u.username),
        name: u.name,
        organization: idOf(u.organization_id),
        disabled: u.disabled === 1,
        deleted: u.deleted_at !== null,
        version: u.version,
      })),
    },
    eventTimes: [...orgs.results, ...users.results].map((r) => r.event_ts),
    audit: audit.results,
  };
}

// --- variants ------------------------------------------------------------------------------------------------

function sha1Joined(key: string, e: Envelope): string {
  return [key, String(e.timestamp), e.nonce, e.data].sort().join("");
}

/** Digits moved across the timestamp / nonce boundary, keeping the sorted sha1 text (and 10 or 13 digits). */
function boundaryShift(key: string, e: Envelope): Envelope | null {
  const ts = String(e.timestamp);
  const candidates: Array<[string, string]> = [];
  if (ts.length === 13) candidates.push([ts.slice(0, 10), ts.slice(10) + e.nonce]);
  if (ts.length === 10 && /^[0-9]{4}/.test(e.nonce)) candidates.push([ts + e.nonce.slice(0, 3), e.nonce.slice(3)]);
  for (const [timestamp, nonce] of candidates) {
    const variant = { ...e, timestamp: typeof e.timestamp === "number" ? Number(timestamp) : timestamp, nonce };
    if (sha1Joined(key, variant) === sha1Joined(key, e)) return variant;
  }
  return null;
}

/** A JSON string literal with its first character written as a \u escape. */
function escapedLiteral(text: string): string {
  if (text === "") return '""';
  const first = `\\u${text.charCodeAt(0).toString(16).padStart(4, "0")}`;
  return `"${first}${JSON.stringify(text.slice(1)).slice(1)}`;
}

/** The same envelope, spelled otherwise: reversed key order, other whitespace, \u escapes in every string. */
function respelled(e: Envelope): string {
  const value = (k: keyof Envelope) => (typeof e[k] === "number" ? String(e[k]) : escapedLiteral(String(e[k])));
  const keys: Array<keyof Envelope> = ["signature", "data", "eventType", "timestamp", "nonce"];
  return `{\n\t${keys.map((k) => `${escapedLiteral(k)} :\r\n ${value(k)}`).join(" ,\n\t")}\n}  `;
}

interface Variant {
  kind: VariantKind;
  label: string;
  body: string;
  /** The nonce the variant carries (a shift changes it), for finding its audit row. */
  nonce: string;
}

function variantOf(kind: VariantKind, relabel: EventType, p: SenderProfile, e: Envelope): Variant | null {
  switch (kind) {
    case "shift": {
      if (p.signature !== "sha1") return null;
      const v = boundaryShift(p.signingKey, e);
      return v ? { kind, label: `shift ${String(e.timestamp).length}→${String(v.timestamp).length}`, body: JSON.stringify(v), nonce: v.nonce } : null;
    }
    case "timestamp-type": {
      const timestamp = typeof e.timestamp === "number" ? String(e.timestamp) : Number(e.timestamp);
      return { kind, label: `timestamp as ${typeof timestamp}`, body: JSON.stringify({ ...e, timestamp }), nonce: e.nonce };
    }
    case "respell":
      return { kind, label: "respelled", body: respelled(e), nonce: e.nonce };
    case "digest-encoding": {
      if (p.signature !== "sha1") return null;
      const bytes = new Uint8Array(e.signature.match(/../g)!.map((h) => parseInt(h, 16)));
      return { kind, label: "digest in Base64", body: JSON.stringify({ ...e, signature: b64(bytes) }), nonce: e.nonce };
    }
    case "relabel":
      if (relabel === e.eventType) return null;
      return { kind, label: `relabelled ${relabel}`, body: JSON.stringify({ ...e, eventType: relabel }), nonce: e.nonce };
  }
}

// --- the property ------------------------------------------------------------------------------------------

const keyArb = fc
  .tuple(fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz"), fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), minLength: 11, maxLength: 31 }))
  .map(([first, rest]) => first + rest);

const runArb = fc.record({
  profile: fc.constantFrom("sha1+gcm", "hmac+gcm", "sha1+cbc"),
  signingKey: keyArb,
  digitNonce: fc.boolean(),
  millis: fc.boolean(),
  type: fc.constantFrom(...TYPES),
  variant: fc.constantFrom(...VARIANTS),
  relabel: fc.constantFrom(...TYPES),
  timestampAsString: fc.boolean(),
});

function profileOf(name: string, signingKey: string): SenderProfile {
  const k = testEnv.VECTORS.keys;
  const bearer = testEnv.ONEACCESS_BEARER_TOKEN;
  if (name === "sha1+cbc") return { signature: "sha1", encryption: "aes-cbc", bearer, signingKey, encryptionKey: k.cbcKey, receiveId: k.receiveId };
  return { signature: name === "sha1+gcm" ? "sha1" : "hmac-sha256", encryption: "aes-gcm", layout: "iv12", bearer, signingKey, encryptionKey: k.gcmKey };
}

/**
 * The nonce and timestamp of the request under test. A boundary shift is only possible when the digits that
 * move sort right (the last three digits of a millisecond timestamp must sort after its first ten; a digit
 * nonce must start with a digit above the timestamp's first): those runs draw the values that allow it.
 */
function stamp(run: { digitNonce: boolean; millis: boolean; variant: VariantKind }) {
  const seconds = Math.floor(Date.now() / 1000) - 1;
  const digits = (n: number) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b % 10).join("");
  const upper = () => "ABCDEFGHIJ"[crypto.getRandomValues(new Uint8Array(1))[0]! % 10]!;
  if (run.variant === "shift") {
    return run.millis ? { timestamp: `${seconds}${700 + (Number(digits(2)) % 100)}`, nonce: () => upper() + randomNonce(15) } : { timestamp: String(seconds), nonce: () => `9${digits(15)}` };
  }
  return {
    timestamp: run.millis ? `${seconds}${digits(3)}` : String(seconds),
    nonce: () => (run.digitNonce ? digits(16) : randomNonce(16)),
  };
}

describe("signature-preserving variants of a captured request never change what the original does", () => {
  it(`variant and original in both orders, against the original alone (${RUN_COUNT} runs)`, { timeout: TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(runArb, async (run) => {
        const p = profileOf(run.profile, run.signingKey);
        // Variants that do not exist for this request: hmac has one encoding and signs the eventType.
        fc.pre(!((run.variant === "shift" || run.variant === "digest-encoding") && p.signature !== "sha1"));
        fc.pre(!(run.variant === "relabel" && run.relabel === run.type));
        const tag = `atk${randomNonce(10).toLowerCase()}`;
        const worlds = { alone: `${tag}a`, originalFirst: `${tag}b`, variantFirst: `${tag}c` };
        const set = {
          alone: await setUp(p, worlds.alone),
          originalFirst: await setUp(p, worlds.originalFirst),
          variantFirst: await setUp(p, worlds.variantFirst),
        };
        const { timestamp, nonce } = stamp(run);
        const ts = run.timestampAsString ? timestamp : Number(timestamp);
        // The same request in each world (each world has its own ids), and its variant there.
        const build = async (w: World) => {
          for (let attempt = 0; attempt < 60; attempt++) {
            const e = await buildEnvelope(p, run.type, payloadFor(run.type, w), { timestamp: ts, nonce: nonce() });
            const v = variantOf(run.variant, run.relabel, p, e);
            if (v !== null || run.variant !== "shift") return { e, v };
          }
          return { e: await buildEnvelope(p, run.type, payloadFor(run.type, w), { timestamp: ts, nonce: nonce() }), v: null };
        };

        const alone = await build(set.alone);
        const aloneReply = await post(p, JSON.stringify(alone.e));
        expect(aloneReply.code, `${run.type} alone`).not.toBe("401");
        const expected = await observe(set.alone, [alone.e.nonce]);

        for (const order of ["originalFirst", "variantFirst"] as const) {
          const w = set[order];
          const { e, v } = await build(w);
          if (v === null) return; // this variant does not exist for this request (hmac, no shift, same label)
          const first = order === "originalFirst" ? JSON.stringify(e) : v.body;
          const second = order === "originalFirst" ? v.body : JSON.stringify(e);
          const r1 = await post(p, first);
          const r2 = await post(p, second);
          const genuine = order === "originalFirst" ? r1 : r2;
          const other = order === "originalFirst" ? r2 : r1;
          if (genuine.code === "401") tally.genuine401++;
          expect(genuine.code, `${v.label}, ${order}: the genuine request`).not.toBe("401");
          expect({ code: genuine.code, message: genuine.message }, `${v.label}, ${order}`).toMatchObject(
            // A duplicate answers the first reply: the variant's, when it came first and was accepted.
            order === "variantFirst" && other.code === "200" ? { code: other.code, message: other.message } : { code: aloneReply.code, message: aloneReply.message },
          );
          if (run.variant === "relabel" && other.code === "400") tally.relabelRefusals++;

          const seen = await observe(w, [...new Set([e.nonce, v.nonce])]);
          expect(seen.directory, `${v.label}, ${order}: the directory`).toEqual(expected.directory);
          // A shifted copy applied first carries a timestamp up to a second off the original's.
          seen.eventTimes.forEach((t, i) => expect(Math.abs(t - expected.eventTimes[i]!)).toBeLessThan(1000));
          const refusals = seen.audit.filter((row) => row.code === "400" && !expected.audit.some((x) => x.code === "400"));
          expect(refusals.length, `${v.label}, ${order}: refusal rows`).toBeLessThanOrEqual(1);
          expect(seen.audit.filter((row) => !refusals.includes(row)), `${v.label}, ${order}: audit`).toEqual(expected.audit);
          tally.pairs++;
          if (run.variant === "shift") tally.shiftsFound++;
        }
        tally.runs++;
        bump(tally.byVariant, run.variant === "relabel" ? `relabel-${p.signature}` : run.variant);
        bump(tally.byType, run.type);
      }),
      { numRuns: RUN_COUNT },
    );
  });

  it("summary", async (context) => {
    await summarize(context, "properties/attacker", {
      runs: RUN_COUNT,
      "runs-with-a-variant": tally.runs,
      pairs: tally.pairs,
      ...Object.fromEntries(Object.entries(tally.byVariant).sort()),
      "shift-pairs": tally.shiftsFound,
      "relabel-refused": tally.relabelRefusals,
      "genuine-401": tally.genuine401,
    });
    // Every kind of variant met a request it applies to, and both orders were sent for each run that had one.
    for (const kind of ["shift", "timestamp-type", "respell", "digest-encoding", "relabel-sha1"]) {
      expect(tally.byVariant[kind] ?? 0, kind).toBeGreaterThan(0);
    }
    expect(tally.pairs).toBe(2 * tally.runs);
    expect(Object.keys(tally.byType).length).toBe(TYPES.length);
    expect(tally.genuine401).toBe(0);
  });
});

// The shared vectors relabelled: every whole envelope is accepted under at most one event type (the test of
// that is in test/protocol/vectors.test.ts, at the protocol level, and here through the Worker).
describe("every shared vector relabelled to the seven types, through the Worker", () => {
  it("is answered 200 under at most one type", async () => {
    const V = testEnv.VECTORS;
    for (const [i, v] of V.envelopes.entries()) {
      if (v.profile.signature !== "sha1") continue;
      const p: SenderProfile =
        v.profile.encryption === "aes-cbc"
          ? { signature: "sha1", encryption: "aes-cbc", bearer: testEnv.ONEACCESS_BEARER_TOKEN, signingKey: V.keys.signingKey, encryptionKey: V.keys.cbcKey, receiveId: V.keys.receiveId }
          : { signature: "sha1", encryption: "aes-gcm", bearer: testEnv.ONEACCESS_BEARER_TOKEN, signingKey: V.keys.signingKey, encryptionKey: V.keys.gcmKey };
      const accepted: string[] = [];
      for (const type of TYPES) {
        const body = JSON.stringify({ ...v.body, eventType: type });
        const res = await callWorker(toRequest(CALLBACK_URL, p, body), {
          ONEACCESS_SIGNATURE: "sha1",
          ONEACCESS_ENCRYPTION: p.encryption,
          ONEACCESS_ENCRYPTION_KEY: p.encryptionKey,
          ONEACCESS_RECEIVE_ID: p.receiveId ?? "",
          TIMESTAMP_TOLERANCE_SECONDS: "0",
        });
        const status = res.status;
        await res.body?.cancel();
        expect([200, 400, 404], `vector #${i} as ${type}`).toContain(status);
        if (status !== 400) accepted.push(type);
      }
      expect(accepted.length, `vector #${i} (${v.body.eventType}) accepted as ${accepted.join(", ")}`).toBeLessThanOrEqual(1);
    }
  });
});

// Keep the helpers honest: a shift really keeps the sha1 signature (computed by the independent sender).
it("a boundary shift keeps the sha1 signature valid", async () => {
  const key = "kq7pzr2xw9mb4tle";
  const e: Envelope = { nonce: "HwlbdBYicKikoIjk", timestamp: "1795944793768", eventType: "CREATE_USER", data: "zzzz", signature: "" };
  e.signature = await sha1Signature(key, String(e.timestamp), e.nonce, e.data);
  const v = boundaryShift(key, e)!;
  expect(v).toMatchObject({ timestamp: "1795944793", nonce: "768HwlbdBYicKikoIjk" });
  expect(await sha1Signature(key, String(v.timestamp), v.nonce, v.data)).toBe(e.signature);
  expect(unb64(b64(new Uint8Array([1, 2, 3])))).toEqual(new Uint8Array([1, 2, 3]));
});
