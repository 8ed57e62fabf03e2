// check-url, replay and tamper: small scripted exchanges whose outcome is checked against what the contract
// promises for the profile in use.
import { randomLetters } from "../../src/protocol/codec";
import { resign, envelopeBody, newNonce, replyId, type Reply, type Sender, type WireEnvelope } from "./wire";

export interface CheckUrlResult {
  ok: boolean;
  sent: string;
  reply: Reply;
  /** Human-readable verdict lines. */
  lines: string[];
}

/** Sends CHECK_URL with a random string, as OneAccess does when its settings are saved, and checks the echo. */
export async function checkUrl(sender: Sender): Promise<CheckUrlResult> {
  const sent = randomLetters(16);
  const { reply } = await sender.send("CHECK_URL", sent);
  const p = sender.profile;
  const lines: string[] = [`HTTP ${reply.status}  code ${reply.code}  message "${reply.message}"  (${reply.latencyMs.toFixed(1)} ms)`];
  let ok = reply.code === "200" && reply.plaintext === sent;
  if (reply.code === "200") {
    if (reply.plaintext === null) {
      lines.push(`reply does not open with the configured key: ${reply.openError ?? "unknown reason"}`);
    } else if (reply.plaintext !== sent) {
      lines.push(`reply opens but echoes ${JSON.stringify(reply.plaintext)} instead of ${JSON.stringify(sent)}`);
    } else {
      lines.push(`reply ${p.encryption === "none" ? "is plaintext and" : "opens and"} echoes ${JSON.stringify(sent)}`);
    }
    if (p.encryption === "aes-gcm" && reply.layout !== undefined) {
      if (reply.layout === p.layout) lines.push(`reply sealed in the request's layout (${reply.layout}), fresh IV`);
      else {
        ok = false;
        lines.push(`reply sealed in ${reply.layout}, but the request used ${p.layout}`);
      }
    }
    if (p.encryption !== "none" && reply.data === sent) {
      ok = false;
      lines.push("reply data is not sealed although encryption is on");
    }
  } else {
    lines.push(...diagnose(reply));
  }
  lines.push(ok ? "CHECK_URL OK" : "CHECK_URL FAILED");
  return { ok, sent, reply, lines };
}

/** What a refused CHECK_URL most likely means, in terms of settings. */
export function diagnose(reply: Reply): string[] {
  switch (reply.code) {
    case "network":
      return [`no answer from the receiver: ${reply.message} (is \`npm run dev\` running, and is --url right?)`];
    case "401":
      return [
        "authentication failed: the receiver's ONEACCESS_BEARER_TOKEN, ONEACCESS_SIGNING_KEY or ONEACCESS_SIGNATURE",
        "differs from this side's, or the clocks are further apart than TIMESTAMP_TOLERANCE_SECONDS (the receiver's log says which)",
      ];
    case "400":
      return reply.message === "data cannot be decrypted"
        ? ["the receiver cannot open the data: ONEACCESS_ENCRYPTION, ONEACCESS_ENCRYPTION_KEY or ONEACCESS_GCM_LAYOUT differ"]
        : [`the receiver refused the request: ${reply.message}`];
    case "500":
      return [`the receiver failed: ${reply.message} (GET /healthz names a misconfigured setting)`];
    default:
      return [`unexpected answer: ${reply.message}`];
  }
}

export interface Check {
  name: string;
  expected: string;
  got: string;
  pass: boolean;
  note?: string;
}

function describe(reply: Reply): string {
  const opened = reply.plaintext === null ? "" : reply.plaintext === "" ? "" : ` ${reply.plaintext}`;
  return `${reply.code} ${reply.message}${opened}`.trim();
}

export interface ReplayResult {
  ok: boolean;
  checks: Check[];
}

/**
 * One valid event (a probe organization) sent, then copies of it: the same bytes, and the same signed request
 * with its envelope spelled differently (whitespace, key order: not signed). Each copy is answered from the
 * nonce store (same code, message and id, re-sealed) and changes nothing. With sha1, whose signature does not
 * cover the eventType, a copy relabelled as another event is refused (400) and does not take the genuine
 * request's place. The probe is deleted afterwards.
 */
export async function replay(sender: Sender): Promise<ReplayResult & { probeCode: string; nonce: string; probeId: string | null }> {
  const probeCode = `sim-replay-${randomLetters(8).toLowerCase()}`;
  const nonce = newNonce();
  const message = JSON.stringify({ code: probeCode, name: "重放探针 Replay probe" });
  const first = await sender.build("CREATE_ORGANIZATION", message, { nonce });
  const checks: Check[] = [];

  const r1 = await sender.post(first.body);
  const probeId = r1.code === "200" ? replyId(r1) : null;
  checks.push({
    name: "first delivery",
    expected: "200 with the new organization's id",
    got: describe(r1),
    pass: r1.code === "200" && probeId !== null,
  });

  const sameAs = (r: Reply) => r.code === r1.code && r.message === r1.message && r.plaintext === r1.plaintext;
  const r2 = await sender.post(first.body);
  const resealed = sender.profile.encryption === "none" || r1.data === "" || r2.data !== r1.data;
  checks.push({
    name: "same request again",
    expected: "the first reply again, from the nonce store (nothing applied twice)",
    got: describe(r2),
    pass: sameAs(r2) && resealed,
    note: sender.profile.encryption === "none" ? undefined : resealed ? "same reply, re-sealed with a fresh IV" : "reply ciphertext repeated",
  });

  const { signature, ...rest } = first.envelope;
  const respelled = JSON.stringify({ signature, ...rest }, null, 2);
  const r3 = await sender.post(respelled);
  checks.push({
    name: "same request, envelope re-spelled",
    expected: "the first reply again: the replay key is what was signed, not the bytes",
    got: describe(r3),
    pass: sameAs(r3),
  });

  if (sender.profile.signature === "sha1") {
    const relabelled = envelopeBody({ ...first.envelope, eventType: "CREATE_USER" });
    const r4 = await sender.post(relabelled);
    checks.push({
      name: "same request, relabelled CREATE_USER",
      expected: "400: the payload is not a user (sha1 does not sign the eventType)",
      got: describe(r4),
      pass: r4.code === "400",
    });
  }

  if (probeId !== null) {
    const { reply } = await sender.send("DELETE_ORGANIZATION", JSON.stringify({ id: probeId }));
    checks.push({ name: "clean-up: delete the probe", expected: "200", got: describe(reply), pass: reply.code === "200" });
  }
  return { ok: checks.every((c) => c.pass), checks, probeCode, nonce, probeId };
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Replaces the character at `index` with another of the same kind (hex digit, Base64 character, letter). */
export function flipChar(text: string, index: number): string {
  const c = text[index];
  if (c === undefined) return `${text}x`;
  let replacement: string;
  if (/[0-9]/.test(c)) replacement = String((Number(c) + 5) % 10);
  else if (/[a-f]/.test(c) && /^[0-9a-f]+$/.test(text)) replacement = c === "f" ? "0" : String.fromCharCode(c.charCodeAt(0) + 1);
  else if (B64.includes(c)) replacement = B64[(B64.indexOf(c) + 1) % 64]!;
  else replacement = c === "x" ? "y" : "x";
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

/** Index of a character in the middle of `text` that is not Base64 padding. */
function middle(text: string): number {
  let i = Math.floor(text.length / 2);
  while (i > 0 && text[i] === "=") i--;
  return i;
}

export interface TamperResult {
  ok: boolean;
  checks: Check[];
}

/**
 * Fresh, valid CHECK_URLs, each with one thing altered after signing: a character of `data`, of the
 * signature, of the timestamp, of the bearer token; plus a correctly signed but stale timestamp. CHECK_URL is
 * used because the checks under test (bearer, window, signature, decryption) run before anything is stored,
 * for every event type, and a CHECK_URL that got through would change nothing. An untampered control comes
 * first, so a refusal is known to come from the alteration and not from a misconfiguration.
 */
export async function tamper(sender: Sender): Promise<TamperResult> {
  const p = sender.profile;
  const checks: Check[] = [];
  const fresh = async () => {
    const echo = randomLetters(16);
    const built = await sender.build("CHECK_URL", echo);
    return { echo, envelope: built.envelope };
  };
  const post = (e: WireEnvelope, bearer?: string) => sender.post(envelopeBody(e), bearer);

  const control = await fresh();
  const c = await post(control.envelope);
  checks.push({
    name: "control (untampered)",
    expected: "200, echo",
    got: describe(c),
    pass: c.code === "200" && c.plaintext === control.echo,
  });

  // data
  {
    const { echo, envelope } = await fresh();
    const r = await post({ ...envelope, data: flipChar(envelope.data, middle(envelope.data)) });
    if (p.signature !== "none") {
      checks.push({ name: "data: one character flipped", expected: "401 (signature covers data)", got: describe(r), pass: r.code === "401" });
    } else if (p.encryption === "aes-gcm") {
      checks.push({ name: "data: one character flipped", expected: "400 (GCM tag fails)", got: describe(r), pass: r.code === "400" });
    } else {
      // Nothing authenticates the data: the receiver can only notice when the result no longer parses.
      const undetected = r.code === "200" && r.plaintext !== echo;
      checks.push({
        name: "data: one character flipped",
        expected: p.encryption === "aes-cbc" ? "400, or accepted altered (CBC has no integrity)" : "accepted altered",
        got: describe(r),
        pass: r.code === "400" || undetected,
        note: "undetectable without a signature (ONEACCESS_SIGNATURE=none)",
      });
    }
  }

  // signature
  {
    const { envelope } = await fresh();
    if (p.signature !== "none") {
      const r = await post({ ...envelope, signature: flipChar(envelope.signature, middle(envelope.signature)) });
      checks.push({ name: "signature: one character flipped", expected: "401", got: describe(r), pass: r.code === "401" });
    } else {
      const r = await post({ ...envelope, signature: "0123456789abcdef0123456789abcdef01234567" });
      checks.push({
        name: "signature: a forged one added",
        expected: "200 (not checked)",
        got: describe(r),
        pass: r.code === "200",
        note: "signing is off (ONEACCESS_SIGNATURE=none): the signature is ignored",
      });
    }
  }

  // timestamp: the fourth digit of a millisecond timestamp moves it by 10^9 ms (11.6 days) per unit
  {
    const { envelope } = await fresh();
    const text = String(envelope.timestamp);
    const altered = { ...envelope, timestamp: Number(flipChar(text, 3)) };
    const r = await post(altered);
    const refusedBy = [p.signature !== "none" ? "signature" : "", p.toleranceSeconds > 0 ? "window" : ""].filter(Boolean);
    checks.push({
      name: "timestamp: one digit flipped",
      expected: refusedBy.length > 0 ? `401 (${refusedBy.join(" and ")})` : "200 (window off and signing off)",
      got: describe(r),
      pass: refusedBy.length > 0 ? r.code === "401" : r.code === "200",
      ...(refusedBy.length > 0 ? {} : { note: "undetectable: TIMESTAMP_TOLERANCE_SECONDS=0 and no signature" }),
    });
  }

  // stale timestamp, correctly signed: only the window can refuse it
  {
    const { envelope } = await fresh();
    const skewMs = (p.toleranceSeconds + 60) * 1000;
    const stale = await resign(p, { ...envelope, timestamp: Number(envelope.timestamp) - skewMs });
    const r = await post(stale);
    checks.push({
      name: `timestamp: re-signed, ${p.toleranceSeconds + 60} s old`,
      expected: p.toleranceSeconds > 0 ? "401 (outside the window)" : "200 (window off)",
      got: describe(r),
      pass: p.toleranceSeconds > 0 ? r.code === "401" : r.code === "200",
      ...(p.toleranceSeconds > 0 ? {} : { note: "TIMESTAMP_TOLERANCE_SECONDS=0 turns the window off" }),
    });
  }

  // bearer
  {
    const { envelope } = await fresh();
    const r = await post(envelope, flipChar(p.bearer, middle(p.bearer)));
    checks.push({ name: "bearer token: one character flipped", expected: "401", got: describe(r), pass: r.code === "401" });
  }

  return { ok: checks.every((c) => c.pass), checks };
}
