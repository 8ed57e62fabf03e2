import { describe, expect, it } from "vitest";
import { readConfig } from "../src/config";
import { buildRequest } from "./sender/oneaccess-sender";
import { callWorker, CALLBACK_URL, profile, testEnv } from "./helpers/worker";

const BEARER = "bearer-token-of-thirty-two-chars";
const OLD_BEARER = "old-bearer-token-thirty-two-char";
const valid = {
  ONEACCESS_BEARER_TOKEN: BEARER,
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
    expect(problems({ ONEACCESS_BEARER_TOKEN: BEARER, ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "none" })).toEqual([]);
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
    const r = readConfig({ ...valid, ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "none", ONEACCESS_BEARER_TOKEN_PREVIOUS: OLD_BEARER });
    expect(r.ok && r.config.warnings.length).toBe(2);
    expect(r.ok && r.config.rotations).toEqual(["ONEACCESS_BEARER_TOKEN"]);
    expect(r.ok && r.config.protocol.bearerTokens).toEqual([BEARER, OLD_BEARER]);
  });

  it("needs bearer and API tokens of at least 32 characters (31 is refused, 32 accepted)", () => {
    for (const name of ["ONEACCESS_BEARER_TOKEN", "ONEACCESS_BEARER_TOKEN_PREVIOUS", "DIRECTORY_API_TOKEN"]) {
      expect(problems({ ...valid, [name]: "x".repeat(31) }), name).toEqual([name]);
      expect(problems({ ...valid, [name]: "x".repeat(32) }), name).toEqual([]);
    }
  });

  it("caps MAX_BODY_BYTES at 4 MiB", () => {
    expect(problems({ ...valid, MAX_BODY_BYTES: "4194304" })).toEqual([]);
    expect(problems({ ...valid, MAX_BODY_BYTES: "4194305" })).toEqual(["MAX_BODY_BYTES"]);
  });

  it("refuses aes-cbc without a signature, and warns when the timestamp window is off", () => {
    const cbc = { ...valid, ONEACCESS_ENCRYPTION: "aes-cbc", ONEACCESS_ENCRYPTION_KEY: testEnv.VECTORS.keys.cbcKey };
    expect(problems({ ...cbc, ONEACCESS_SIGNATURE: "none" })).toEqual(["ONEACCESS_ENCRYPTION"]);
    expect(problems({ ...cbc, ONEACCESS_SIGNATURE: "hmac-sha256" })).toEqual([]);
    const r = readConfig({ ...valid, TIMESTAMP_TOLERANCE_SECONDS: "0" });
    expect(r.ok && r.config.warnings).toEqual([expect.stringContaining("TIMESTAMP_TOLERANCE_SECONDS=0")]);
  });

  it("refuses every public development value unless LOCAL_DEV is exactly true", () => {
    const dev = Object.fromEntries([...testEnv.DEV_VARS_EXAMPLE.matchAll(/^([A-Z_]+)="([^"]*)"$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(dev.LOCAL_DEV).toBe("true");
    const secrets = Object.entries(dev).filter(([name, value]) => name !== "LOCAL_DEV" && value !== "");
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    // The webhook URL and secret come as a pair: each is tried with a production value of the other.
    const partner: Record<string, Record<string, string>> = {
      WEBHOOK_URL: { WEBHOOK_SECRET: `whsec_${btoa("production webhook key: 32 bytes")}` },
      WEBHOOK_SECRET: { WEBHOOK_URL: "https://hooks.example.com/oneaccess" },
    };
    for (const [name, value] of secrets) {
      const base = { ...valid, ...partner[name] };
      expect(problems({ ...base, [name]: value }), name).toEqual([name]);
      expect(problems({ ...base, [name]: value, LOCAL_DEV: "yes" }), name).toEqual([name]);
      expect(problems({ ...base, [name]: value, LOCAL_DEV: "true" }), name).toEqual([]);
    }
    // The example file as a whole is a valid development configuration.
    expect(readConfig(dev).ok).toBe(true);
  });
});

const operatorHealthz = () =>
  new Request("https://receiver.test/healthz", { headers: { authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN}` } });

describe("a misconfigured Worker", () => {
  it("answers every callback 500 naming the setting, and /healthz says which, never the value", async () => {
    const p = profile("sha1+gcm");
    const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "x");
    const secretValue = "this-key-is-17chr";
    const res = await callWorker(request, { ONEACCESS_ENCRYPTION_KEY: secretValue });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: "500", message: "server misconfigured: ONEACCESS_ENCRYPTION_KEY", data: "" });
    const health = await callWorker(operatorHealthz(), { ONEACCESS_ENCRYPTION_KEY: secretValue });
    expect(health.status).toBe(500);
    const text = await health.text();
    expect(JSON.parse(text)).toMatchObject({ status: "misconfigured", problems: [{ setting: "ONEACCESS_ENCRYPTION_KEY" }] });
    expect(text).not.toContain(secretValue);
  });

  it("a valid configuration reports its profile and warnings on /healthz without values", async () => {
    const res = await callWorker(operatorHealthz(), { ONEACCESS_SIGNATURE: "none" });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ status: "ok", profile: { signature: "none", encryption: "aes-gcm" } });
    expect(JSON.parse(text).warnings[0]).toMatch(/signing is off/);
    for (const secret of [testEnv.ONEACCESS_BEARER_TOKEN, testEnv.ONEACCESS_ENCRYPTION_KEY, testEnv.DIRECTORY_API_TOKEN]) {
      expect(text).not.toContain(secret);
    }
  });
});
