// POST /callback through the Worker's fetch, driven by the independent sender.
import { describe, expect, it } from "vitest";
import {
  buildEnvelope,
  buildRequest,
  gcmOpenAny,
  hmacSignature,
  openReply,
  randomNonce,
  toRequest,
  unb64,
  type SenderProfile,
} from "./sender/oneaccess-sender";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "./helpers/worker";
import { storageSpies } from "./helpers/spies";

const nowSeconds = () => Date.now() / 1000;

describe("CHECK_URL in every profile", () => {
  const cases: Array<[string, SenderProfile]> = [
    ["sha1 + aes-gcm iv16-b64-prefix", profile("sha1+gcm", "iv16-b64-prefix")],
    ["sha1 + aes-gcm iv12", profile("sha1+gcm", "iv12")],
    ["sha1 + aes-gcm iv16", profile("sha1+gcm", "iv16")],
    ["hmac-sha256 + aes-gcm", profile("hmac+gcm", "iv16-b64-prefix")],
    ["sha1 + aes-cbc", profile("sha1+cbc")],
    ["none + none", profile("none")],
  ];
  for (const [name, p] of cases) {
    it(`${name}: echoes the random string, sealed so the sender's key opens it`, async () => {
      const random = `chk-${randomNonce(12)}&R&D`;
      const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", random);
      const res = await callWorker(request, envFor(p));
      expect(res.status).toBe(200);
      const reply = await openReply(p, res);
      expect(reply).toMatchObject({ code: "200", message: "success", plaintext: random });
      if (p.encryption === "none") expect(reply.data).toBe(random);
      else expect(reply.data).not.toContain("chk-");
      if (p.encryption === "aes-gcm") expect(reply.layout).toBe(p.layout);
    });
  }

  it("seals the same echo twice with different IVs", async () => {
    const p = profile("sha1+gcm", "iv12");
    const datas: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "same-random");
      const reply = await openReply(p, await callWorker(request, envFor(p)));
      expect(reply.plaintext).toBe("same-random");
      datas.push(reply.data);
    }
    expect(unb64(datas[0]!).slice(0, 12)).not.toEqual(unb64(datas[1]!).slice(0, 12));
  });

  it("accepts stray spaces in eventType (signed as received), digit-string and millisecond timestamps", async () => {
    const p = profile("hmac+gcm", "iv12");
    for (const timestamp of [String(Math.floor(nowSeconds())), Date.now(), String(Date.now())]) {
      const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "spaces", { eventTypeRaw: " CHECK_URL  ", timestamp });
      expect(await openReply(p, await callWorker(request, envFor(p)))).toMatchObject({ code: "200", plaintext: "spaces" });
    }
  });

  it("accepts data as a JSON object when encryption is off (but a CHECK_URL is never an object)", async () => {
    const p = profile("none");
    const envelope = (eventType: string, data: string) =>
      `{"nonce":"${randomNonce()}","timestamp":${Math.floor(nowSeconds())},"eventType":"${eventType}","data":${data},"signature":""}`;
    const code = `obj-${randomNonce(8)}`;
    const created = await callWorker(toRequest(CALLBACK_URL, p, envelope("CREATE_ORGANIZATION", `{"code":"${code}","name":"Object data"}`)), envFor(p));
    expect(await created.json()).toMatchObject({ code: "200", message: "success", data: expect.stringMatching(/^\{"id":"org_/) });
    const check = await callWorker(toRequest(CALLBACK_URL, p, envelope("CHECK_URL", '{"random":"obj"}')), envFor(p));
    expect(await check.json()).toEqual({ code: "400", message: "data does not match eventType", data: "" });
  });
});

describe("timestamp window (300 s)", () => {
  const p = profile("sha1+gcm", "iv12");
  const send = async (timestamp: number | string) => {
    const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "window", { timestamp });
    return (await callWorker(request, { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "300" })).status;
  };
  // Seconds are rounded away from the boundary so the request's own latency cannot cross it.
  it("299 s in the past accepted / 301 s refused (seconds)", async () => {
    expect(await send(Math.ceil(nowSeconds() - 299))).toBe(200);
    expect(await send(Math.floor(nowSeconds() - 301))).toBe(401);
  });
  it("299 s in the future accepted / 301 s refused (seconds)", async () => {
    expect(await send(Math.floor(nowSeconds() + 299))).toBe(200);
    expect(await send(Math.ceil(nowSeconds() + 301))).toBe(401);
  });
  it("299 s in the past accepted / 301 s refused (milliseconds)", async () => {
    expect(await send(Date.now() - 299_000)).toBe(200);
    expect(await send(Date.now() - 301_000)).toBe(401);
  });
  it("299 s in the future accepted / 301 s refused (milliseconds, as digit strings)", async () => {
    expect(await send(String(Date.now() + 299_000))).toBe(200);
    expect(await send(String(Date.now() + 301_500))).toBe(401);
  });
  it("0 turns the window off", async () => {
    const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "old", { timestamp: 1409659589 });
    expect((await callWorker(request, { ...envFor(p), TIMESTAMP_TOLERANCE_SECONDS: "0" })).status).toBe(200);
  });
});

describe("body size limit", () => {
  const p = profile("sha1+gcm", "iv12");
  const LIMIT = 4096;
  async function bodyOfSize(size: number) {
    const envelope = await buildEnvelope(p, "CHECK_URL", "size");
    const json = JSON.stringify(envelope);
    return json + " ".repeat(size - new TextEncoder().encode(json).length); // trailing JSON whitespace
  }
  const overrides = { ...envFor(p), MAX_BODY_BYTES: String(LIMIT) };

  it("a body at the limit is accepted, one byte over is refused with 413", async () => {
    expect((await callWorker(toRequest(CALLBACK_URL, p, await bodyOfSize(LIMIT)), overrides)).status).toBe(200);
    const over = await callWorker(toRequest(CALLBACK_URL, p, await bodyOfSize(LIMIT + 1)), overrides);
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({ code: "413", message: "body too large", data: "" });
  });

  it("is enforced while reading a body of undeclared length", async () => {
    const streamed = (text: string) => {
      const bytes = new TextEncoder().encode(text);
      const body = new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.slice(i, i + 1000));
          controller.close();
        },
      });
      return new Request(CALLBACK_URL, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${p.bearer}` },
        body,
      });
    };
    const at = streamed(await bodyOfSize(LIMIT));
    expect(at.headers.get("content-length")).toBeNull();
    expect((await callWorker(at, overrides)).status).toBe(200);
    expect((await callWorker(streamed(await bodyOfSize(LIMIT + 1)), overrides)).status).toBe(413);
  });
});

describe("authentication failures: 401, one message, no storage touched", () => {
  const p = profile("sha1+gcm", "iv12");
  const cases: Array<[string, () => Promise<Request>]> = [
    ["wrong bearer", async () => (await buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: "u", name: "n" }, { bearer: "wrong" })).request],
    ["missing bearer", async () => (await buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: "u", name: "n" }, { bearer: null })).request],
    ["empty signature while signing is on", async () => (await buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: "u", name: "n" }, { signature: "" })).request],
    ["signature of another key", async () => (await buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: "u", name: "n" }, { signWith: "another-key-1234" })).request],
    [
      "one flipped character in data",
      async () =>
        (await buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: "u", name: "n" }, {
          mutateData: (d) => d.slice(0, 30) + (d[30] === "A" ? "B" : "A") + d.slice(31),
        })).request,
    ],
    ["timestamp outside the window", async () => (await buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: "u", name: "n" }, { timestamp: 1409659589 })).request],
    ["signature in the wrong encoding", async () => (await buildRequest(CALLBACK_URL, p, "CREATE_USER", { username: "u", name: "n" }, { signature: "zz".repeat(20) })).request],
  ];
  for (const [name, make] of cases) {
    it(name, async () => {
      const spies = storageSpies(testEnv);
      const res = await callWorker(await make(), { ...envFor(p), DB: spies.DB, EVENT_LEDGER: spies.EVENT_LEDGER });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ code: "401", message: "authentication failed", data: "" });
      expect(spies.calls).toEqual([]);
    });
  }

  it("a hmac-signed request under sha1 is refused, and the health view names the setting to change", async () => {
    const spies = storageSpies(testEnv);
    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "diag");
    envelope.signature = await hmacSignature(p.signingKey, envelope.nonce, String(envelope.timestamp), envelope.eventType, envelope.data);
    const res = await callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), { ...envFor(p), DB: spies.DB, EVENT_LEDGER: spies.EVENT_LEDGER });
    expect(res.status).toBe(401);
    expect(spies.calls).toEqual([]);
    const operator = new Request("https://receiver.test/healthz", { headers: { authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN}` } });
    const health = (await (await callWorker(operator, envFor(p))).json()) as { seenByThisInstance: { signatureHint: { hint: string } } };
    expect(health.seenByThisInstance.signatureHint.hint).toContain("ONEACCESS_SIGNATURE=hmac-sha256");
    expect(JSON.stringify(health)).not.toContain(p.signingKey);
  });
});

describe("other refusals", () => {
  const p = profile("sha1+gcm", "iv12");
  it("405 for another method, with Allow", async () => {
    const res = await callWorker(new Request(CALLBACK_URL, { method: "GET" }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(await res.json()).toEqual({ code: "405", message: "method not allowed", data: "" });
  });
  it("415 when not JSON", async () => {
    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "x");
    const res = await callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(envelope), { contentType: "text/plain" }), envFor(p));
    expect(res.status).toBe(415);
  });
  it("400 for a malformed envelope, an unknown eventType, and invalid UTF-8, with no storage touched", async () => {
    const spies = storageSpies(testEnv);
    const o = { ...envFor(p), DB: spies.DB, EVENT_LEDGER: spies.EVENT_LEDGER };
    const bad = async (body: BodyInit) =>
      (await callWorker(new Request(CALLBACK_URL, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${p.bearer}` }, body }), o)).json();
    expect(await bad("{nope")).toEqual({ code: "400", message: "body is not valid JSON", data: "" });
    const { envelope } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "x");
    expect(await bad(JSON.stringify({ ...envelope, eventType: "DROP_TABLE" }))).toMatchObject({ code: "400", message: "unknown eventType" });
    expect(await bad(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))).toMatchObject({ code: "400", message: "body is not valid UTF-8" });
    expect(spies.calls).toEqual([]);
  });
  it("400 for data that does not decrypt (signed correctly)", async () => {
    // Signed with the right key, but `data` is Base64 that no key and layout authenticates.
    const signed = await buildEnvelope({ ...p, encryption: "none" }, "CHECK_URL", "bm90LWNpcGhlcnRleHQtYXQtYWxsLCBub3QgZXZlbg==");
    const res = await callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(signed)), envFor(p));
    expect(await res.json()).toEqual({ code: "400", message: "data cannot be decrypted", data: "" });
  });
  it("a CHECK_URL reply in the request's GCM layout, whatever the layout", async () => {
    for (const layout of ["iv16-b64-prefix", "iv12", "iv16"] as const) {
      const q = profile("sha1+gcm", layout);
      const { request } = await buildRequest(CALLBACK_URL, q, "CHECK_URL", "layout");
      const body = (await (await callWorker(request, envFor(q))).json()) as { data: string };
      expect((await gcmOpenAny(q.encryptionKey, body.data)).layout).toBe(layout);
    }
  });
});
