// The attacker's review of the default profile (sha1 + aes-gcm), one test per finding, through the Worker.
// The attacker holds the bearer token and one captured request; every variant below keeps the signature
// valid, so only the receiver's rules stand between it and the directory.
import { describe, expect, it, vi } from "vitest";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "../helpers/worker";
import {
  buildEnvelope,
  cbcSeal,
  gcmSeal,
  openReply,
  randomNonce,
  sha1Signature,
  toRequest,
  type Envelope,
  type SenderProfile,
} from "../sender/oneaccess-sender";

const SHA1_GCM = profile("sha1+gcm");
const UNAUTHORIZED = { code: "401", message: "authentication failed" };

async function send(p: SenderProfile, body: string, env: Partial<Record<keyof Env, unknown>> = {}) {
  return openReply(p, await callWorker(toRequest(CALLBACK_URL, p, body), { ...envFor(p), ...env }));
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The text sha1 signs: the four strings sorted in code-unit order and joined without a separator. */
function sha1Joined(key: string, e: Envelope): string {
  return [key, String(e.timestamp), e.nonce, e.data].sort().join("");
}

/**
 * The boundary shifts of an envelope: `digits` characters moved between the end of the timestamp and the start
 * of the nonce, in either direction, keeping only those whose signed text is unchanged (so the signature is
 * still valid) and whose timestamp still has 10 or 13 digits.
 */
function boundaryShifts(key: string, e: Envelope): Envelope[] {
  const ts = String(e.timestamp);
  const out: Envelope[] = [];
  const candidates: Array<[string, string]> = [];
  if (ts.length === 13) candidates.push([ts.slice(0, 10), ts.slice(10) + e.nonce]);
  if (ts.length === 10 && /^[0-9]{3}/.test(e.nonce)) candidates.push([ts + e.nonce.slice(0, 3), e.nonce.slice(3)]);
  for (const [timestamp, nonce] of candidates) {
    const variant = { ...e, timestamp, nonce };
    if (nonce !== "" && sha1Joined(key, variant) === sha1Joined(key, e)) out.push(variant);
  }
  return out;
}

/** Builds envelopes until one has a boundary shift (the shift depends on where the ciphertext sorts). */
async function shiftable(eventType: string, payload: unknown, opts: { timestamp: string; nonce: () => string }) {
  for (let attempt = 0; attempt < 400; attempt++) {
    const envelope = await buildEnvelope(SHA1_GCM, eventType, JSON.stringify(payload), { timestamp: opts.timestamp, nonce: opts.nonce() });
    const [variant] = boundaryShifts(SHA1_GCM.signingKey, envelope);
    if (variant) return { envelope, variant };
  }
  throw new Error("no shiftable envelope found");
}

async function userRow(username: string) {
  return testEnv.DB.prepare("SELECT id, disabled, deleted_at FROM users WHERE username = ?")
    .bind(username)
    .first<{ id: string; disabled: number; deleted_at: number | null }>();
}

async function auditRows(where: string, ...binds: unknown[]) {
  const { results } = await testEnv.DB.prepare(`SELECT event_type, code, message, nonce FROM deliveries WHERE ${where} ORDER BY id`)
    .bind(...binds)
    .all<{ event_type: string; code: string; message: string; nonce: string }>();
  return results;
}

async function create(username: string, extra: Record<string, unknown>, timestamp: string) {
  const e = await buildEnvelope(SHA1_GCM, "CREATE_USER", JSON.stringify({ username, name: "Finding Test", ...extra }), { timestamp });
  const reply = await send(SHA1_GCM, JSON.stringify(e));
  expect(reply.code, reply.message).toBe("200");
  return { envelope: e, id: (JSON.parse(reply.plaintext) as { id: string }).id };
}

describe("1. boundary shift between timestamp and nonce (sha1)", () => {
  it("a millisecond timestamp's last digits moved into a letter nonce: answered as the duplicate it is", async () => {
    const username = `shift-ms-${randomNonce(8)}`;
    // The shifted digits must sort after the 10-digit prefix ("768" does; "0xx" would not).
    const ts = `${nowSeconds() - 1}768`;
    const { envelope, variant } = await shiftable("CREATE_USER", { username, name: "Shift" }, { timestamp: ts, nonce: () => randomNonce() });
    expect(String(variant.timestamp)).toHaveLength(10);

    const first = await send(SHA1_GCM, JSON.stringify(envelope));
    expect(first.code).toBe("200");
    const again = await send(SHA1_GCM, JSON.stringify(variant));
    expect({ code: again.code, message: again.message, plaintext: again.plaintext }).toEqual({
      code: "200",
      message: first.message,
      plaintext: first.plaintext,
    });
    // One audit row: the shifted copy was answered from the nonce store, not applied a second time.
    expect(await auditRows("nonce IN (?, ?)", envelope.nonce, variant.nonce)).toHaveLength(1);
  });

  it("a seconds timestamp with a digit nonce, shifted to a newer millisecond timestamp, cannot re-enable a disabled user", async () => {
    const username = `shift-s-${randomNonce(8)}`;
    const ts = String(nowSeconds());
    const { envelope: captured, variant } = await shiftable(
      "CREATE_USER",
      { username, name: "Shift", disabled: false },
      { timestamp: ts, nonce: () => `9${Array.from(crypto.getRandomValues(new Uint8Array(15)), (b) => b % 10).join("")}` },
    );
    expect(String(variant.timestamp)).toHaveLength(13);

    const created = await send(SHA1_GCM, JSON.stringify(captured));
    expect(created.code).toBe("200");
    const id = (JSON.parse(created.plaintext) as { id: string }).id;
    // OneAccess disables the user in the same second.
    const disable = await buildEnvelope(SHA1_GCM, "UPDATE_USER", JSON.stringify({ id, username, disabled: true }), { timestamp: ts });
    expect((await send(SHA1_GCM, JSON.stringify(disable))).code).toBe("200");
    expect((await userRow(username))?.disabled).toBe(1);

    const replayed = await send(SHA1_GCM, JSON.stringify(variant));
    expect(replayed.code).toBe("200");
    expect((await userRow(username))?.disabled).toBe(1);
  });
});

describe("2. timestamps of 11 or 12 digits", () => {
  for (const tolerance of ["0", "300"]) {
    it(`are refused with 400 (window ${tolerance === "0" ? "off" : "on"}), so no event can claim a far-future time`, async () => {
      for (const timestamp of [`${nowSeconds()}1`, `${nowSeconds()}12`]) {
        const e = await buildEnvelope(SHA1_GCM, "CREATE_USER", JSON.stringify({ username: `ts-${randomNonce(8)}`, name: "T" }), { timestamp });
        const reply = await send(SHA1_GCM, JSON.stringify(e), { TIMESTAMP_TOLERANCE_SECONDS: tolerance });
        expect({ code: reply.code, message: reply.message }).toEqual({ code: "400", message: "timestamp must have 10 or 13 digits" });
      }
    });
  }
});

describe("3. CHECK_URL goes through the nonce store, and a relabelled event is not a CHECK_URL", () => {
  it("a captured event relabelled CHECK_URL is refused, and audited once however often it is replayed", async () => {
    const e = await buildEnvelope(SHA1_GCM, "CREATE_USER", JSON.stringify({ username: `relabel-${randomNonce(8)}`, name: "R" }));
    const relabelled = JSON.stringify({ ...e, eventType: "CHECK_URL" });
    for (let i = 0; i < 5; i++) {
      const reply = await send(SHA1_GCM, relabelled);
      expect({ code: reply.code, message: reply.message }).toEqual({ code: "400", message: "data does not match eventType" });
    }
    expect(await auditRows("nonce = ?", e.nonce)).toHaveLength(1);
  });

  it("a genuine CHECK_URL sent twice is echoed twice and audited once", async () => {
    const echo = randomNonce(20);
    const e = await buildEnvelope(SHA1_GCM, "CHECK_URL", echo);
    for (let i = 0; i < 2; i++) {
      const reply = await send(SHA1_GCM, JSON.stringify(e));
      expect({ code: reply.code, plaintext: reply.plaintext }).toEqual({ code: "200", plaintext: echo });
    }
    expect(await auditRows("nonce = ?", e.nonce)).toEqual([{ event_type: "CHECK_URL", code: "200", message: "success", nonce: e.nonce }]);
  });
});

describe("4. a copy sent first cannot suppress the genuine request", () => {
  it("DELETE_USER relabelled DELETE_ORGANIZATION is refused and the genuine delete still applies", async () => {
    const username = `suppress-${randomNonce(8)}`;
    const { id } = await create(username, {}, String(Date.now() - 1000));
    const genuine = await buildEnvelope(SHA1_GCM, "DELETE_USER", JSON.stringify({ id }));
    const relabelled = await send(SHA1_GCM, JSON.stringify({ ...genuine, eventType: "DELETE_ORGANIZATION" }));
    expect({ code: relabelled.code, message: relabelled.message }).toEqual({ code: "400", message: "id must start with org_" });

    const reply = await send(SHA1_GCM, JSON.stringify(genuine));
    expect({ code: reply.code, message: reply.message }).toEqual({ code: "200", message: "success" });
    expect((await userRow(username))?.deleted_at).not.toBeNull();
  });

  it("a copy with other whitespace sent first is the same request: the genuine one gets its reply, not a 401", async () => {
    const username = `spaced-${randomNonce(8)}`;
    const { id } = await create(username, {}, String(Date.now() - 1000));
    const genuine = await buildEnvelope(SHA1_GCM, "DELETE_USER", JSON.stringify({ id }));
    const spaced = JSON.stringify(genuine, null, 1);
    const first = await send(SHA1_GCM, spaced);
    expect(first.code).toBe("200");
    const reply = await send(SHA1_GCM, JSON.stringify(genuine));
    expect({ code: reply.code, message: reply.message }).toEqual({ code: first.code, message: first.message });
    expect((await userRow(username))?.deleted_at).not.toBeNull();
    expect(await auditRows("nonce = ?", genuine.nonce)).toHaveLength(1);
  });
});

describe("5. a create never re-enables a disabled user (fail closed)", () => {
  it("CREATE_USER for an existing disabled user that does not mention disabled keeps it disabled", async () => {
    const username = `closed-${randomNonce(8)}`;
    await create(username, { disabled: true }, String(Date.now() - 2000));
    expect((await userRow(username))?.disabled).toBe(1);
    await create(username, { mobile: "+86 138 0000 0000" }, String(Date.now() - 1000));
    expect((await userRow(username))?.disabled).toBe(1);
  });

  it("a revived tombstone keeps its stored disabled state when the create does not say", async () => {
    const username = `revive-${randomNonce(8)}`;
    const { id } = await create(username, { disabled: true }, String(Date.now() - 3000));
    const del = await buildEnvelope(SHA1_GCM, "DELETE_USER", JSON.stringify({ id }), { timestamp: String(Date.now() - 2000) });
    expect((await send(SHA1_GCM, JSON.stringify(del))).code).toBe("200");
    const revived = await create(username, {}, String(Date.now() - 1000));
    expect(revived.id).toBe(id);
    expect(await userRow(username)).toMatchObject({ disabled: 1, deleted_at: null });
  });
});

describe("6. PASSWORD_POLICY=pbkdf2: an exact duplicate costs no hash", () => {
  it("the duplicate is answered from the store without deriving a key", async () => {
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    try {
      const e = await buildEnvelope(SHA1_GCM, "CREATE_USER", JSON.stringify({ username: `pw-${randomNonce(8)}`, name: "P", password: "Secret-123" }));
      const env = { PASSWORD_POLICY: "pbkdf2" };
      expect((await send(SHA1_GCM, JSON.stringify(e), env)).code).toBe("200");
      expect(derive).toHaveBeenCalledTimes(1);
      for (let i = 0; i < 3; i++) expect((await send(SHA1_GCM, JSON.stringify(e), env)).code).toBe("200");
      expect(derive).toHaveBeenCalledTimes(1);
    } finally {
      derive.mockRestore();
    }
  });
});

describe("7. the bearer token is checked before the body is read, and the body limit is capped", () => {
  it("a request with a wrong token is refused without reading its body", async () => {
    let pulled = false;
    // highWaterMark 0: the stream is pulled only when someone reads the body.
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulled = true;
          controller.enqueue(new Uint8Array(1024));
        },
      },
      { highWaterMark: 0 },
    );
    const request = new Request(CALLBACK_URL, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer not-the-token-but-long-enough-to-look-real" },
      body,
      // @ts-expect-error workerd's RequestInit accepts duplex for streaming bodies
      duplex: "half",
    });
    const res = await callWorker(request);
    expect(res.status).toBe(401);
    expect(pulled).toBe(false);
  });

  it("an oversized declared body without a token is a 401, not a 413", async () => {
    const res = await callWorker(
      new Request(CALLBACK_URL, { method: "POST", headers: { "content-type": "application/json", "content-length": "999999999" }, body: "{}" }),
    );
    expect(res.status).toBe(401);
  });

  it("MAX_BODY_BYTES above 4 MiB is a configuration problem", async () => {
    const e = await buildEnvelope(SHA1_GCM, "CHECK_URL", randomNonce(12));
    const over = await callWorker(toRequest(CALLBACK_URL, SHA1_GCM, JSON.stringify(e)), { MAX_BODY_BYTES: "4194305" });
    expect(await over.json()).toEqual({ code: "500", message: "server misconfigured: MAX_BODY_BYTES", data: "" });
    const at = await callWorker(toRequest(CALLBACK_URL, SHA1_GCM, JSON.stringify(e)), { MAX_BODY_BYTES: "4194304" });
    expect(at.status).toBe(200);
  });
});

async function healthz(headers: Record<string, string> = {}, env: Partial<Record<keyof Env, unknown>> = {}) {
  const res = await callWorker(new Request("https://receiver.test/healthz", { headers }), env);
  return { status: res.status, cache: res.headers.get("cache-control"), body: (await res.json()) as Record<string, any> };
}
const operator = () => ({ authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN}` });

describe("8. /healthz: public ok / misconfigured only, details for the operator", () => {
  it("the public view says only ok, and is not cached", async () => {
    expect(await healthz()).toEqual({ status: 200, cache: "no-store", body: { status: "ok" } });
  });

  it("the public view of a broken configuration says only misconfigured", async () => {
    expect(await healthz({}, { ONEACCESS_SIGNATURE: "md5" })).toEqual({ status: 500, cache: "no-store", body: { status: "misconfigured" } });
  });

  it("the operator's token shows the profile, the problems and what this instance saw", async () => {
    const ok = await healthz(operator(), { TIMESTAMP_TOLERANCE_SECONDS: "0" });
    expect(ok.status).toBe(200);
    expect(ok.cache).toBe("no-store");
    expect(ok.body).toMatchObject({ status: "ok", profile: { signature: "sha1", timestampToleranceSeconds: 0 }, seenByThisInstance: { recentRefusals: expect.any(Array) } });
    const broken = await healthz(operator(), { ONEACCESS_SIGNATURE: "md5" });
    expect(broken.body).toMatchObject({ status: "misconfigured", problems: [{ setting: "ONEACCESS_SIGNATURE" }] });
  });

  it("a wrong operator token is refused", async () => {
    const res = await healthz({ authorization: "Bearer wrong-token-wrong-token-wrong-token" });
    expect(res.status).toBe(401);
  });
});

describe("9. weak settings are refused or warned about", () => {
  it("a window of 0 is a warning in the operator's health view", async () => {
    const h = await healthz(operator(), { TIMESTAMP_TOLERANCE_SECONDS: "0" });
    expect(h.body.warnings).toEqual([expect.stringMatching(/timestamp window is off.*TIMESTAMP_TOLERANCE_SECONDS=0/)]);
  });

  it("signature none with aes-cbc is refused at start-up", async () => {
    const h = await healthz(operator(), { ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "aes-cbc", ONEACCESS_ENCRYPTION_KEY: testEnv.VECTORS.keys.cbcKey });
    expect(h.body).toMatchObject({ status: "misconfigured", problems: [{ setting: "ONEACCESS_ENCRYPTION" }] });
  });

  it("bearer and API tokens shorter than 32 characters are configuration problems", async () => {
    const short = "x".repeat(31);
    for (const name of ["ONEACCESS_BEARER_TOKEN", "ONEACCESS_BEARER_TOKEN_PREVIOUS", "DIRECTORY_API_TOKEN"] as const) {
      const reply = await healthz({}, { [name]: short });
      expect(reply.body, name).toEqual({ status: "misconfigured" });
    }
    expect((await healthz({}, { ONEACCESS_BEARER_TOKEN: "y".repeat(32) })).body).toEqual({ status: "ok" });
  });

  it("the public development values are refused unless LOCAL_DEV=true", async () => {
    const dev = { ONEACCESS_BEARER_TOKEN: "dev-bearer-token-public-never-deploy-0001" };
    expect((await healthz({}, dev)).body).toEqual({ status: "misconfigured" });
    expect((await healthz({}, { ...dev, LOCAL_DEV: "true" })).body).toEqual({ status: "ok" });
  });
});

/** MIME Base64 as Python's base64.encodebytes writes it: a line break every 76 characters and at the end. */
function mime(base64: string): string {
  return `${base64.match(/.{1,76}/g)!.join("\n")}\n`;
}

describe("10. MIME Base64 data (the DingTalk Python 3 port)", () => {
  it("aes-cbc data with line breaks is signed as received and opens", async () => {
    const p = profile("sha1+cbc");
    const data = mime(await cbcSeal(p.encryptionKey, JSON.stringify({ username: `mime-${randomNonce(8)}`, name: "M" }), p.receiveId ?? ""));
    expect(data).toContain("\n");
    const timestamp = String(nowSeconds());
    const nonce = randomNonce();
    const envelope = { nonce, timestamp, eventType: "CREATE_USER", data, signature: await sha1Signature(p.signingKey, timestamp, nonce, data) };
    const reply = await send(p, JSON.stringify(envelope));
    expect({ code: reply.code, message: reply.message }).toEqual({ code: "200", message: "success" });
  });

  it("aes-gcm data (iv12) with line breaks opens too", async () => {
    const data = mime(await gcmSeal(SHA1_GCM.encryptionKey, randomNonce(120), "iv12"));
    const timestamp = String(nowSeconds());
    const nonce = randomNonce();
    const envelope = { nonce, timestamp, eventType: "CHECK_URL", data, signature: await sha1Signature(SHA1_GCM.signingKey, timestamp, nonce, data) };
    expect((await send(SHA1_GCM, JSON.stringify(envelope))).code).toBe("200");
  });
});

describe("11. a wrong receive id is diagnosed for the operator", () => {
  it("401 to the caller, the reason in the operator's view of this instance", async () => {
    const p = { ...profile("sha1+cbc"), receiveId: "wrong-corp-id" };
    const e = await buildEnvelope(p, "CHECK_URL", randomNonce(12));
    const reply = await send(p, JSON.stringify(e), { ONEACCESS_RECEIVE_ID: testEnv.VECTORS.keys.receiveId });
    expect({ code: reply.code, message: reply.message }).toEqual(UNAUTHORIZED);
    const h = await healthz(operator(), { ...envFor(profile("sha1+cbc")) });
    expect(h.body.seenByThisInstance.recentRefusals).toContainEqual(expect.objectContaining({ reason: "receive-id-mismatch", code: "401" }));
  });
});

describe("through the Worker, what was only unit-tested", () => {
  it("a pinned ONEACCESS_GCM_LAYOUT opens its own layout only, and the reply uses it", async () => {
    for (const pinned of ["iv16-b64-prefix", "iv12", "iv16"] as const) {
      for (const sent of ["iv16-b64-prefix", "iv12", "iv16"] as const) {
        const p = profile("sha1+gcm", sent);
        const e = await buildEnvelope(p, "CHECK_URL", `layout-${randomNonce(8)}`);
        const reply = await send(p, JSON.stringify(e), { ONEACCESS_GCM_LAYOUT: pinned });
        if (pinned === sent) expect({ code: reply.code, layout: reply.layout }, `${pinned} ← ${sent}`).toEqual({ code: "200", layout: sent });
        else expect({ code: reply.code, message: reply.message }, `${pinned} ← ${sent}`).toEqual({ code: "400", message: "data cannot be decrypted" });
      }
    }
  });

  it("the operator's view lists this instance's latest refusals, newest first, with their reasons and no values", async () => {
    const p = profile("sha1+gcm");
    const e = await buildEnvelope(p, "CHECK_URL", randomNonce(12), { signWith: "not-the-signing-key" });
    expect((await send(p, JSON.stringify(e))).code).toBe("401");
    const stale = await buildEnvelope(p, "CHECK_URL", randomNonce(12), { timestamp: nowSeconds() - 3600 });
    expect((await send(p, JSON.stringify(stale))).code).toBe("401");
    const h = await healthz(operator());
    const [newest, before] = h.body.seenByThisInstance.recentRefusals as Array<Record<string, unknown>>;
    expect(newest).toMatchObject({ code: "401", reason: "timestamp-outside-window" });
    expect(before).toMatchObject({ code: "401", reason: "signature-mismatch" });
    expect(JSON.stringify(h.body)).not.toContain("not-the-signing-key");
  });
});
