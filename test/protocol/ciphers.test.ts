// Our seal/open against the independent sender's, in both directions.
import { describe, expect, it } from "vitest";
import { openCbc, sealCbc } from "../../src/protocol/cbc";
import { openGcm, sealGcm } from "../../src/protocol/gcm";
import { cbcOpen, cbcSeal, gcmOpen, gcmSeal, unb64 } from "../sender/oneaccess-sender";
import { testEnv } from "../helpers/worker";

const K = testEnv.VECTORS.keys;
const LAYOUTS = ["iv16-b64-prefix", "iv12", "iv16"] as const;
const MESSAGES = ["", "R&D", "&&&", "a&b=c&d", "研发中心 & 😀", "x".repeat(65_536)];

describe("aes-gcm", () => {
  for (const layout of LAYOUTS) {
    it(`${layout}: sender seal → our open, our seal → sender open, '&' kept`, async () => {
      for (const key of [K.gcmKey, K.gcmKey256, "123456789012345678901234"]) {
        for (const msg of MESSAGES) {
          expect(await openGcm(await gcmSeal(key, msg, layout), [key], "auto")).toEqual({ ok: true, message: msg, layout, keyIndex: 0 });
          expect(await gcmOpen(key, await sealGcm(msg, key, layout), layout)).toBe(msg);
        }
      }
    });
  }

  it("never repeats an IV or random prefix across seals", async () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const data = await sealGcm("same message", K.gcmKey, "iv12");
      ivs.add(data.slice(0, 16));
    }
    expect(ivs.size).toBe(200);
    const a = await sealGcm("m", K.gcmKey, "iv16-b64-prefix");
    const b = await sealGcm("m", K.gcmKey, "iv16-b64-prefix");
    expect(a.slice(0, 24)).not.toBe(b.slice(0, 24));
  });

  it("refuses a flipped tag bit, a wrong key, and bad Base64", async () => {
    const data = await sealGcm("hello", K.gcmKey, "iv12");
    const bytes = unb64(data);
    bytes[bytes.length - 1]! ^= 1;
    const flipped = btoa(String.fromCharCode(...bytes));
    expect((await openGcm(flipped, [K.gcmKey], "auto")).ok).toBe(false);
    expect((await openGcm(data, [K.gcmKey256], "auto")).ok).toBe(false);
    expect((await openGcm(`${data}!`, [K.gcmKey], "auto")).ok).toBe(false);
    expect((await openGcm("", [K.gcmKey], "auto")).ok).toBe(false);
  });

  it("opens with the previous key during a rotation and says which key", async () => {
    const data = await gcmSeal(K.gcmKey256, "rotating", "iv16");
    expect(await openGcm(data, [K.gcmKey, K.gcmKey256], "auto")).toMatchObject({ ok: true, message: "rotating", keyIndex: 1 });
  });
});

describe("aes-cbc (32-byte padding)", () => {
  it("round-trips every padding length 1..32 in both directions", async () => {
    const pads = new Set<number>();
    for (let n = 0; n < 64; n++) {
      const msg = "m".repeat(n) + "&";
      const theirs = await cbcSeal(K.cbcKey, msg, K.receiveId);
      expect(await openCbc(theirs, [K.cbcKey], K.receiveId)).toMatchObject({ ok: true, message: msg, receiveId: K.receiveId });
      const ours = await sealCbc(msg, K.cbcKey, K.receiveId);
      expect(await cbcOpen(K.cbcKey, ours)).toEqual({ message: msg, receiveId: K.receiveId });
      pads.add(32 - ((16 + 4 + n + 1 + K.receiveId.length) % 32));
    }
    expect(pads.size).toBe(32);
  });

  it("refuses bad padding, a wrong key and a wrong receive id", async () => {
    const badPad = await cbcSeal(K.cbcKey, "hello", K.receiveId, 33);
    expect(await openCbc(badPad, [K.cbcKey], "")).toMatchObject({ ok: false, reason: "undecryptable" });
    const good = await cbcSeal(K.cbcKey, "hello", K.receiveId);
    const otherKey = "A".repeat(42) + "E";
    expect((await openCbc(good, [otherKey], "")).ok).toBe(false);
    expect(await openCbc(good, [K.cbcKey], "someone-else")).toMatchObject({ ok: false, reason: "receive-id-mismatch" });
    expect(await openCbc(good.slice(0, 24), [K.cbcKey], "")).toMatchObject({ ok: false, reason: "undecryptable" });
  });
});
