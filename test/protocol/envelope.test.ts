import { describe, expect, it } from "vitest";
import { parseEnvelope, withinWindow } from "../../src/protocol/envelope";

const base = { nonce: "abcdefghijklmnop", timestamp: 1763870400, eventType: "CHECK_URL", data: "x", signature: "" };
const parse = (body: unknown) => parseEnvelope(typeof body === "string" ? body : JSON.stringify(body));
const message = (body: unknown) => {
  const r = parse(body);
  return r.ok ? "ok" : r.failure.kind === "bad-request" ? r.failure.message : r.failure.kind;
};

describe("parseEnvelope", () => {
  it("accepts the five keys", () => {
    const r = parse(base);
    expect(r).toMatchObject({ ok: true, value: { nonce: base.nonce, timestampText: "1763870400", timestampMs: 1763870400000 } });
  });

  it("refuses broken JSON and non-objects", () => {
    expect(message("{")).toBe("body is not valid JSON");
    expect(message("[]")).toBe("body must be a JSON object");
    expect(message("null")).toBe("body must be a JSON object");
  });

  it("refuses extra, missing and duplicated keys", () => {
    expect(message({ ...base, extra: 1 })).toBe("unexpected field in envelope");
    const { nonce: _n, ...noNonce } = base;
    expect(message(noNonce)).toBe("nonce is required");
    const dup = JSON.stringify(base).replace('"nonce":', '"nonce":"x","nonce":');
    expect(message(dup)).toBe("duplicate field in envelope");
  });

  it("reads timestamps as integers or digit strings, seconds or milliseconds", () => {
    expect(parse({ ...base, timestamp: "1763870400" })).toMatchObject({ ok: true, value: { timestampMs: 1763870400000 } });
    expect(parse({ ...base, timestamp: 1763870400123 })).toMatchObject({ ok: true, value: { timestampMs: 1763870400123 } });
    expect(parse({ ...base, timestamp: "1763870400123" })).toMatchObject({ ok: true, value: { timestampText: "1763870400123" } });
    // The digit count decides the unit, not the value: 13 digits are milliseconds even with leading zeros.
    expect(parse({ ...base, timestamp: "0999999999999" })).toMatchObject({ ok: true, value: { timestampMs: 999999999999 } });
    expect(parse({ ...base, timestamp: 1000000000000 })).toMatchObject({ ok: true, value: { timestampMs: 1000000000000 } });
  });

  it("refuses 11 and 12 digits (neither seconds nor milliseconds), as numbers or strings", () => {
    for (const t of [17638704001, "17638704001", 176387040012, "176387040012"]) {
      expect(message({ ...base, timestamp: t })).toBe("timestamp must have 10 or 13 digits");
    }
  });

  it("refuses other timestamps", () => {
    for (const t of [1.5, -1763870400, "17638704", "17638704001234", " 1763870400", "1e9", true, null, 123456789]) {
      expect(message({ ...base, timestamp: t })).toMatch(/^timestamp/);
    }
  });

  it("trims eventType for matching but keeps it as received for signing", () => {
    const r = parse({ ...base, eventType: "  CREATE_USER " });
    expect(r).toMatchObject({ ok: true, value: { eventType: "CREATE_USER", eventTypeRaw: "  CREATE_USER " } });
    expect(message({ ...base, eventType: "create_user" })).toBe("unknown eventType");
    expect(message({ ...base, eventType: 1 })).toBe("eventType must be a string");
  });

  it("accepts data as an object, kept as its exact transmitted text", () => {
    const raw = '{"nonce":"n1234567","timestamp":1763870400,"eventType":"CREATE_USER","data": {"username" : "a\\u0026b","name":"x"},"signature":""}';
    expect(parse(raw)).toMatchObject({ ok: true, value: { data: '{"username" : "a\\u0026b","name":"x"}', dataWasObject: true } });
    expect(message({ ...base, data: ["x"] })).toBe("data must be a string");
    expect(message({ ...base, data: 5 })).toBe("data must be a string");
  });

  it("refuses wrong types for nonce and signature", () => {
    expect(message({ ...base, nonce: "" })).toBe("nonce must be a non-empty string");
    expect(message({ ...base, nonce: 5 })).toBe("nonce must be a non-empty string");
    expect(message({ ...base, nonce: "n".repeat(129) })).toBe("nonce exceeds 128 characters");
    expect(message({ ...base, signature: null })).toBe("signature must be a string");
  });
});

describe("withinWindow", () => {
  const now = 1_763_870_400_000;
  it("accepts 299 s and refuses 301 s, both directions", () => {
    expect(withinWindow(now - 299_000, now, 300)).toBe(true);
    expect(withinWindow(now + 299_000, now, 300)).toBe(true);
    expect(withinWindow(now - 300_000, now, 300)).toBe(true);
    expect(withinWindow(now - 301_000, now, 300)).toBe(false);
    expect(withinWindow(now + 301_000, now, 300)).toBe(false);
  });
  it("is off at 0", () => expect(withinWindow(0, now, 0)).toBe(true));
});
