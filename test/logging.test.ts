// Observability: every callback leaves exactly one structured JSON log line (event type, outcome, entity
// id, duration, shard), and no line ever carries a secret, a password or a payload.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildRequest, hmacSignature, randomNonce, toRequest, type Envelope } from "./sender/oneaccess-sender";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "./helpers/worker";
import { withDirectoryDb } from "./helpers/directory-db";

const p = profile("sha1+gcm", "iv12");
const env = envFor(p);
const run = randomNonce(8);

// Strings that must never reach a log line: the configured secrets, and distinctive payload values.
const SENTINELS = {
  password: `Sentinel-Password-${run}`,
  username: `sentinel.user.${run}`,
  name: `SentinelName${run}`,
  email: `sentinel-${run}@example.test`,
  extension: `sentinel-extension-${run}`,
  random: `sentinel-check-${run}`,
  wrongBearer: `sentinel-wrong-bearer-${run}`,
};
const SECRETS = () => [testEnv.ONEACCESS_BEARER_TOKEN, testEnv.ONEACCESS_SIGNING_KEY, testEnv.ONEACCESS_ENCRYPTION_KEY, testEnv.DIRECTORY_API_TOKEN];

let captured: Array<{ level: string; text: string }> = [];
beforeEach(() => {
  captured = [];
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      captured.push({ level, text: args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ") });
    });
  }
});
afterEach(() => vi.restoreAllMocks());

/** Sends one request and returns its response with the single line it logged, parsed. */
async function oneLine(request: Request, overrides: Record<string, unknown> = env, forbidden: string[] = []) {
  captured = [];
  const res = await callWorker(request, overrides);
  const lines = [...captured];
  expect(lines, `log lines of one request: ${JSON.stringify(lines)}`).toHaveLength(1);
  const text = lines[0]!.text;
  for (const s of [...Object.values(SENTINELS), ...SECRETS(), ...forbidden]) expect(text).not.toContain(s);
  const line = JSON.parse(text) as Record<string, unknown>;
  return { res, line, level: lines[0]!.level };
}

function expectFields(line: Record<string, unknown>) {
  expect(line.msg).toBe("callback");
  for (const key of ["eventType", "code", "outcome", "reason", "entityId", "shard", "durationMs"]) expect(line).toHaveProperty(key);
  expect(typeof line.durationMs).toBe("number");
  expect(line.durationMs as number).toBeGreaterThanOrEqual(0);
}

const userPayload = (suffix: string) => ({
  username: `${SENTINELS.username}.${suffix}`,
  name: SENTINELS.name,
  organizationId: "",
  password: SENTINELS.password,
  disabled: false,
  email: SENTINELS.email,
  favouriteColour: SENTINELS.extension,
});

describe("one structured line per callback, nothing secret in it", () => {
  it("CHECK_URL answered: outcome echoed, on its replay key's shard like every event; its copy a duplicate", async () => {
    const { request, envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random);
    const { res, line, level } = await oneLine(request, env, [envelope.data]);
    expect(res.status).toBe(200);
    expectFields(line);
    expect(line).toMatchObject({ eventType: "CHECK_URL", code: "200", outcome: "echoed", entityId: null, shard: expect.any(Number) });
    expect(level).toBe("log");
    const again = await oneLine(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), env, [envelope.data]);
    expect(again.line).toMatchObject({ eventType: "CHECK_URL", code: "200", outcome: "duplicate", shard: line.shard });
  });

  it("CREATE_USER applied, then its exact duplicate: entity id and shard on both lines", async () => {
    const { request, envelope } = await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("a"));
    const body = JSON.stringify(envelope);
    const first = await oneLine(request, env, [envelope.data]);
    expect(first.res.status).toBe(200);
    expectFields(first.line);
    expect(first.line).toMatchObject({ eventType: "CREATE_USER", code: "200", outcome: "applied", reason: null });
    expect(first.line.entityId).toEqual(expect.any(String));
    expect(first.line.shard).toEqual(expect.any(Number));

    const again = await oneLine(toRequest(CALLBACK_URL, p, body), env, [envelope.data]);
    expect(again.res.status).toBe(200);
    expectFields(again.line);
    expect(again.line).toMatchObject({ eventType: "CREATE_USER", code: "200", outcome: "duplicate", entityId: first.line.entityId, shard: first.line.shard });
  });

  it("401 wrong bearer token: one warn line with the reason, no event type yet", async () => {
    const { request } = await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("b"), { bearer: SENTINELS.wrongBearer });
    const { res, line, level } = await oneLine(request);
    expect(res.status).toBe(401);
    expectFields(line);
    expect(line).toMatchObject({ eventType: null, code: "401", outcome: "unauthorized", reason: "bearer-mismatch", entityId: null, shard: null });
    expect(level).toBe("warn");
  });

  it("401 signature of another key, and 401 with the algorithm hint in the same single line", async () => {
    const signed = await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("c"), { signWith: "another-signing-key" });
    const bad = await oneLine(signed.request, env, [signed.envelope.data, "another-signing-key"]);
    expect(bad.line).toMatchObject({ code: "401", reason: "signature-mismatch" });
    expect(bad.line).not.toHaveProperty("hint");

    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random);
    envelope.signature = await hmacSignature(p.signingKey, envelope.nonce, String(envelope.timestamp), envelope.eventType, envelope.data);
    const hinted = await oneLine(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), env, [envelope.data]);
    expectFields(hinted.line);
    expect(hinted.line).toMatchObject({ code: "401", reason: "signature-mismatch", hint: expect.stringContaining("ONEACCESS_SIGNATURE=hmac-sha256") });
  });

  it("the same nonce with another signed body is another request: applied, with its own line", async () => {
    const nonce = randomNonce();
    const first = await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("d"), { nonce });
    expect((await oneLine(first.request, env, [first.envelope.data])).res.status).toBe(200);
    const second = await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("e"), { nonce });
    const { line } = await oneLine(second.request, env, [second.envelope.data, first.envelope.data]);
    expectFields(line);
    expect(line).toMatchObject({ eventType: "CREATE_USER", code: "200", outcome: "applied", shard: expect.any(Number) });
  });

  it("400 malformed envelope and unknown event type: refused before authentication, payload not echoed", async () => {
    const headers = { "content-type": "application/json", authorization: `Bearer ${p.bearer}` };
    const malformed = `{"nonce":"${SENTINELS.random}","password":"${SENTINELS.password}"`;
    const a = await oneLine(new Request(CALLBACK_URL, { method: "POST", headers, body: malformed }));
    expectFields(a.line);
    expect(a.line).toMatchObject({ eventType: null, code: "400", outcome: "bad-request" });

    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random);
    const unknown: Envelope = { ...envelope, eventType: `DROP_${SENTINELS.name}` };
    const b = await oneLine(toRequest(CALLBACK_URL, p, JSON.stringify(unknown)), env, [envelope.data]);
    expect(b.line).toMatchObject({ eventType: null, code: "400", reason: "unknown eventType" });
  });

  it("400 payload refused after authentication: the field is named, the value is not, the line has its shard", async () => {
    const { request, envelope } = await buildRequest(CALLBACK_URL, p, "CREATE_USER", { name: SENTINELS.name, password: SENTINELS.password });
    const { res, line } = await oneLine(request, env, [envelope.data]);
    expect(res.status).toBe(400);
    expectFields(line);
    expect(line).toMatchObject({
      eventType: "CREATE_USER",
      code: "400",
      outcome: "bad-request",
      reason: "username is required",
      shard: expect.any(Number),
      audit: "written",
    });
    // Replayed, it is refused again without a second audit row.
    const again = await oneLine(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), env, [envelope.data]);
    expect(again.line).toMatchObject({ code: "400", reason: "username is required", audit: "already" });
  });

  it("400 undecryptable data (signed correctly)", async () => {
    const { envelope } = await buildRequest(CALLBACK_URL, { ...p, encryption: "none" }, "CREATE_USER", btoa(SENTINELS.password.padEnd(48, "x")));
    const { line } = await oneLine(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), env, [envelope.data]);
    expectFields(line);
    expect(line).toMatchObject({ eventType: "CREATE_USER", code: "400", outcome: "undecryptable", audit: "written" });
  });

  it("405, 413 and 415", async () => {
    const m = await oneLine(new Request(CALLBACK_URL, { method: "PUT", body: SENTINELS.password }));
    expect(m.line).toMatchObject({ code: "405", outcome: "method-not-allowed" });
    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random.repeat(200));
    const big = await oneLine(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), { ...env, MAX_BODY_BYTES: "2048" }, [envelope.data]);
    expect(big.line).toMatchObject({ code: "413", outcome: "body-too-large" });
    const t = await oneLine(toRequest(CALLBACK_URL, p, JSON.stringify(envelope), { contentType: "text/plain" }), env, [envelope.data]);
    expect(t.line).toMatchObject({ code: "415", outcome: "unsupported-media-type" });
    for (const l of [m.line, big.line, t.line]) expectFields(l);
  });

  it("500 when storage fails: one error line with the error's class name only", async () => {
    const failingDb = new Proxy(testEnv.DB, {
      get(target, prop) {
        if (prop === "batch" || prop === "prepare") {
          return () => {
            throw new Error(`D1 said: ${SENTINELS.password}`);
          };
        }
        return Reflect.get(target, prop);
      },
    });
    const { request, envelope } = await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("f"));
    // The directory is written by the replay object: the failing binding goes there too.
    const { res, line, level } = await withDirectoryDb(failingDb, () => oneLine(request, { ...env, DB: failingDb }, [envelope.data, "D1 said"]));
    expect(res.status).toBe(500);
    expectFields(line);
    expect(line).toMatchObject({ eventType: "CREATE_USER", code: "500", outcome: "internal", reason: "storage failed: Error" });
    expect(level).toBe("error");
  });

  it("500 when the event ledger's namespace itself throws: still exactly one line, the class name only", async () => {
    const broken = {
      idFromName() {
        throw new TypeError(`binding broke: ${SENTINELS.password}`);
      },
    };
    const { request, envelope } = await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("g"));
    const { res, line } = await oneLine(request, { ...env, EVENT_LEDGER: broken }, [envelope.data, "binding broke"]);
    expect(res.status).toBe(500);
    expect(line).toMatchObject({ code: "500", outcome: "internal", reason: "event ledger unreachable: TypeError" });
  });

  it("a misconfigured Worker: one line naming the setting, not its value", async () => {
    const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random);
    captured = [];
    const res = await callWorker(request, { ...env, ONEACCESS_ENCRYPTION_KEY: `${SENTINELS.password}-17` });
    expect(res.status).toBe(500);
    expect(captured).toHaveLength(1);
    expect(captured[0]!.text).toContain("ONEACCESS_ENCRYPTION_KEY");
    expect(captured[0]!.text).not.toContain(SENTINELS.password);
  });
});

describe("LOG_LEVEL: which lines are written", () => {
  async function linesOf(request: Request, overrides: Record<string, unknown>) {
    captured = [];
    const res = await callWorker(request, overrides);
    return { res, lines: [...captured] };
  }
  const wrongBearer = async () => {
    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random);
    return toRequest(CALLBACK_URL, { ...p, bearer: SENTINELS.wrongBearer }, JSON.stringify(envelope));
  };
  const broken = { idFromName: () => { throw new TypeError("binding broke"); } };

  it("warn: applied and echoed callbacks write nothing; a refusal and a 500 still write their line", async () => {
    const warn = { ...env, LOG_LEVEL: "warn" };
    const check = await linesOf((await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random)).request, warn);
    expect(check.res.status).toBe(200);
    expect(check.lines).toEqual([]);
    const created = await linesOf((await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("level-warn"))).request, warn);
    expect(created.res.status).toBe(200);
    expect(created.lines).toEqual([]);
    const refused = await linesOf(await wrongBearer(), warn);
    expect(refused.res.status).toBe(401);
    expect(refused.lines.map((l) => l.level)).toEqual(["warn"]);
    const failed = await linesOf((await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("level-warn-500"))).request, { ...warn, EVENT_LEDGER: broken });
    expect(failed.res.status).toBe(500);
    expect(failed.lines.map((l) => l.level)).toEqual(["error"]);
  });

  it("error: only 5xx lines", async () => {
    const error = { ...env, LOG_LEVEL: "error" };
    const refused = await linesOf(await wrongBearer(), error);
    expect(refused.res.status).toBe(401);
    expect(refused.lines).toEqual([]);
    const failed = await linesOf((await buildRequest(CALLBACK_URL, p, "CREATE_USER", userPayload("level-error-500"))).request, { ...error, EVENT_LEDGER: broken });
    expect(failed.res.status).toBe(500);
    expect(failed.lines.map((l) => l.level)).toEqual(["error"]);
    expect(JSON.parse(failed.lines[0]!.text)).toMatchObject({ msg: "callback", code: "500" });
  });

  it("log (the default, also when unset): every callback writes its line", async () => {
    const check = await linesOf((await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random)).request, { ...env, LOG_LEVEL: "log" });
    expect(check.lines.map((l) => l.level)).toEqual(["log"]);
    const unset = await linesOf((await buildRequest(CALLBACK_URL, p, "CHECK_URL", SENTINELS.random)).request, { ...env, LOG_LEVEL: "" });
    expect(unset.lines.map((l) => l.level)).toEqual(["log"]);
  });
});
