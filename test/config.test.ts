import { describe, expect, it } from "vitest";
import { readConfig } from "../src/config";
import { buildRequest } from "./sender/oneaccess-sender";
import { callWorker, CALLBACK_URL, profile, testEnv } from "./helpers/worker";

const valid = {
  ONEACCESS_BEARER_TOKEN: "bearer",
  ONEACCESS_SIGNING_KEY: "signing-key",
  ONEACCESS_ENCRYPTION_KEY: "u3Hc8VdQ1nYs6FaJ",
};
const problems = (env: Record<string, string>) => {
  const r = readConfig(env);
  return r.ok ? [] : r.problems.map((p) => p.setting);
};

describe("readConfig", () => {
  it("applies the contract's defaults", () => {
    const r = readConfig(valid);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.protocol).toMatchObject({ signature: "sha1", encryption: "aes-gcm", gcmLayout: "auto", toleranceSeconds: 300, receiveId: "" });
    expect(r.config).toMatchObject({ passwordPolicy: "drop", maxBodyBytes: 262144, replayShards: 4, warnings: [], rotations: [] });
  });

  it("names each missing secret", () => {
    expect(problems({})).toEqual(["ONEACCESS_BEARER_TOKEN", "ONEACCESS_SIGNING_KEY", "ONEACCESS_ENCRYPTION_KEY"]);
    expect(problems({ ONEACCESS_BEARER_TOKEN: "b", ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "none" })).toEqual([]);
  });

  it("refuses keys of the wrong length for the cipher", () => {
    expect(problems({ ...valid, ONEACCESS_ENCRYPTION_KEY: "short" })).toEqual(["ONEACCESS_ENCRYPTION_KEY"]);
    expect(problems({ ...valid, ONEACCESS_ENCRYPTION_KEY: "x".repeat(17) })).toEqual(["ONEACCESS_ENCRYPTION_KEY"]);
    expect(problems({ ...valid, ONEACCESS_ENCRYPTION_KEY: "x".repeat(32) })).toEqual([]);
    expect(problems({ ...valid, ONEACCESS_ENCRYPTION: "aes-cbc" })).toEqual(["ONEACCESS_ENCRYPTION_KEY"]);
    expect(problems({ ...valid, ONEACCESS_ENCRYPTION: "aes-cbc", ONEACCESS_ENCRYPTION_KEY: testEnv.VECTORS.keys.cbcKey })).toEqual([]);
    expect(problems({ ...valid, ONEACCESS_ENCRYPTION_KEY_PREVIOUS: "short" })).toEqual(["ONEACCESS_ENCRYPTION_KEY_PREVIOUS"]);
  });

  it("refuses unknown choices and out-of-range numbers", () => {
    expect(
      problems({
        ...valid,
        ONEACCESS_SIGNATURE: "md5",
        ONEACCESS_ENCRYPTION: "des",
        ONEACCESS_GCM_LAYOUT: "iv8",
        TIMESTAMP_TOLERANCE_SECONDS: "-1",
        PASSWORD_POLICY: "plain",
        MAX_BODY_BYTES: "12kb",
        REPLAY_SHARDS: "0",
        LOG_LEVEL: "verbose",
      }),
    ).toEqual([
      "ONEACCESS_SIGNATURE",
      "ONEACCESS_ENCRYPTION",
      "ONEACCESS_GCM_LAYOUT",
      "TIMESTAMP_TOLERANCE_SECONDS",
      "PASSWORD_POLICY",
      "MAX_BODY_BYTES",
      "REPLAY_SHARDS",
      "LOG_LEVEL",
    ]);
  });

  it("warns when signing or encryption is off and reports rotations", () => {
    const r = readConfig({ ...valid, ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "none", ONEACCESS_BEARER_TOKEN_PREVIOUS: "old" });
    expect(r.ok && r.config.warnings.length).toBe(2);
    expect(r.ok && r.config.rotations).toEqual(["ONEACCESS_BEARER_TOKEN"]);
    expect(r.ok && r.config.protocol.bearerTokens).toEqual(["bearer", "old"]);
  });
});

describe("a misconfigured Worker", () => {
  it("answers every callback 500 naming the setting, and /healthz says which, never the value", async () => {
    const p = profile("sha1+gcm");
    const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "x");
    const secretValue = "this-key-is-17chr";
    const res = await callWorker(request, { ONEACCESS_ENCRYPTION_KEY: secretValue });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: "500", message: "server misconfigured: ONEACCESS_ENCRYPTION_KEY", data: "" });
    const health = await callWorker(new Request("https://receiver.test/healthz"), { ONEACCESS_ENCRYPTION_KEY: secretValue });
    expect(health.status).toBe(500);
    const text = await health.text();
    expect(JSON.parse(text)).toMatchObject({ status: "misconfigured", problems: [{ setting: "ONEACCESS_ENCRYPTION_KEY" }] });
    expect(text).not.toContain(secretValue);
  });

  it("a valid configuration reports its profile and warnings on /healthz without values", async () => {
    const res = await callWorker(new Request("https://receiver.test/healthz"), { ONEACCESS_SIGNATURE: "none" });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ status: "ok", profile: { signature: "none", encryption: "aes-gcm" } });
    expect(JSON.parse(text).warnings[0]).toMatch(/signing is off/);
    for (const secret of [testEnv.ONEACCESS_BEARER_TOKEN, testEnv.ONEACCESS_ENCRYPTION_KEY, testEnv.DIRECTORY_API_TOKEN]) {
      expect(text).not.toContain(secret);
    }
  });
});
