// Every case of ../shared/vectors/oneaccess-vectors.json (made by an independent implementation).
import { describe, expect, it } from "vitest";
import { authenticateEnvelope, openEnvelope, type ProtocolSettings } from "../../src/protocol/callback";
import { openCbc } from "../../src/protocol/cbc";
import { openGcm } from "../../src/protocol/gcm";
import { computeSignature, verifySignature } from "../../src/protocol/signature";
import { testEnv } from "../helpers/worker";

const V = testEnv.VECTORS;
const NOW = Date.now();

function settingsFor(profile: { signature: string; encryption: string }): ProtocolSettings {
  return {
    bearerTokens: ["t"],
    signature: profile.signature as ProtocolSettings["signature"],
    signingKeys: profile.signature === "none" ? [] : [V.keys.signingKey],
    encryption: profile.encryption as ProtocolSettings["encryption"],
    encryptionKeys: profile.encryption === "aes-cbc" ? [V.keys.cbcKey] : profile.encryption === "aes-gcm" ? [V.keys.gcmKey] : [],
    gcmLayout: "auto",
    receiveId: profile.encryption === "aes-cbc" ? V.keys.receiveId : "",
    // The vectors carry fixed timestamps: the window is off, as the contract allows for this purpose.
    toleranceSeconds: 0,
  };
}

describe("signature vectors", () => {
  it("has cases", () => expect(V.signature.length).toBeGreaterThanOrEqual(20));
  for (const [i, v] of V.signature.entries()) {
    it(`#${i} ${v.algorithm} ${v.eventType} ${v.note ?? v.source ?? ""}`, async () => {
      const fields = { nonce: v.nonce, timestampText: String(v.timestamp), eventTypeRaw: v.eventType, data: v.data };
      expect(await verifySignature(v.algorithm, [v.key], fields, v.signature)).toMatchObject({ ok: true, keyIndex: 0 });
      // A key that is not the vector's never verifies.
      expect((await verifySignature(v.algorithm, [`${v.key}x`], fields, v.signature)).ok).toBe(false);
      if (v.algorithm === "hmac-sha256" || /^[0-9a-f]{40}$/.test(v.signature)) {
        expect(await computeSignature(v.algorithm, v.key, fields)).toBe(v.signature);
      }
    });
  }
});

describe("aes-gcm vectors", () => {
  it("has cases in all three layouts", () => {
    expect(new Set(V.gcm.map((v) => v.layout))).toEqual(new Set(["iv16-b64-prefix", "iv12", "iv16"]));
  });
  for (const [i, v] of V.gcm.entries()) {
    it(`#${i} ${v.layout} key ${v.key.length} opens to its msg (auto and pinned)`, async () => {
      expect(await openGcm(v.data, [v.key], "auto")).toEqual({ ok: true, message: v.msg, layout: v.layout, keyIndex: 0 });
      expect(await openGcm(v.data, [v.key], v.layout)).toMatchObject({ ok: true, message: v.msg });
      const other = v.layout === "iv12" ? "iv16" : "iv12";
      expect((await openGcm(v.data, [v.key], other)).ok).toBe(false);
    });
  }
});

describe("aes-cbc vectors", () => {
  for (const [i, v] of V.cbc.entries()) {
    it(`#${i} ${v.source ?? "own"} opens to its msg with its receive id`, async () => {
      expect(await openCbc(v.data, [v.aesKey], v.receiveId)).toEqual({
        ok: true,
        message: v.msg,
        receiveId: v.receiveId,
        keyIndex: 0,
      });
      expect(await openCbc(v.data, [v.aesKey], "")).toMatchObject({ ok: true, message: v.msg });
      expect(await openCbc(v.data, [v.aesKey], `${v.receiveId}-other`)).toMatchObject({ ok: false, reason: "receive-id-mismatch" });
    });
  }
});

describe("whole envelopes", () => {
  const profiles = new Set(V.envelopes.map((e) => `${e.profile.signature}+${e.profile.encryption}`));
  it("cover the four profiles", () => {
    expect(profiles).toEqual(new Set(["sha1+aes-gcm", "hmac-sha256+aes-gcm", "sha1+aes-cbc", "none+none"]));
  });
  for (const [i, v] of V.envelopes.entries()) {
    it(`#${i} ${v.profile.signature}+${v.profile.encryption} ${v.body.eventType} is accepted and opens to its msg`, async () => {
      const settings = settingsFor(v.profile);
      const auth = await authenticateEnvelope(settings, JSON.stringify(v.body), NOW, 0);
      expect(auth.ok).toBe(true);
      if (!auth.ok) return;
      const opened = await openEnvelope(settings, auth.value.envelope);
      expect(opened.ok).toBe(true);
      if (!opened.ok) return;
      const event = opened.value.event;
      if (event.type === "CHECK_URL") expect(event.echo).toBe(v.msg);
      else expect(event.type).toBe(v.body.eventType.trim());
      // The opened event carries the msg's fields (spot checks of what the directory will use).
      const msg = JSON.parse(v.body.eventType === "CHECK_URL" ? "{}" : v.msg) as Record<string, unknown>;
      if ("id" in event) expect(event.id).toBe(msg.id);
      if (event.type === "CREATE_USER") expect(event.username).toBe(msg.username);
      if (event.type === "CREATE_ORGANIZATION") expect(event.org.code).toBe(msg.code);
    });
  }
});

describe("one plaintext, one event type: every whole-envelope vector relabelled to each of the seven types", () => {
  const TYPES = ["CHECK_URL", "CREATE_ORGANIZATION", "UPDATE_ORGANIZATION", "DELETE_ORGANIZATION", "CREATE_USER", "UPDATE_USER", "DELETE_USER"];
  for (const [i, v] of V.envelopes.entries()) {
    it(`#${i} ${v.profile.signature}+${v.profile.encryption} ${v.body.eventType.trim()} is accepted under its own type only`, async () => {
      const settings = settingsFor(v.profile);
      const accepted: string[] = [];
      const keys = new Set<string>();
      for (const type of TYPES) {
        const auth = await authenticateEnvelope(settings, JSON.stringify({ ...v.body, eventType: type }), NOW, 0);
        if (!auth.ok) continue;
        keys.add(auth.value.replayKey);
        if ((await openEnvelope(settings, auth.value.envelope)).ok) accepted.push(type);
      }
      expect(accepted).toEqual([v.body.eventType.trim()]);
      // Under sha1 every relabelled copy has the original's replay key (the eventType is not signed).
      if (v.profile.signature === "sha1") expect(keys.size).toBe(1);
    });
  }
});

describe("negative vectors are refused", () => {
  for (const [i, v] of V.negative.entries()) {
    it(`#${i} ${v.why}`, async () => {
      if (v.body && v.profile) {
        const auth = await authenticateEnvelope(settingsFor(v.profile), JSON.stringify(v.body), NOW, 0);
        expect(auth).toMatchObject({ ok: false, failure: { kind: "unauthorized" } });
      } else {
        const opened = await openGcm(v.data!, [v.key!], "auto");
        expect(opened.ok).toBe(false);
      }
    });
  }
});
