// The webhook settings (contract section 7): https only, plain http to localhost only with LOCAL_DEV; the
// secret's shape; a URL without a secret or the reverse; a problem names the setting, never its value. Each
// rule with the pair on either side of its boundary.
import { describe, expect, it } from "vitest";
import { PUBLIC_DEVELOPMENT_VALUES, readConfig, readWebhookSettings, type ConfigProblem } from "../../src/config";
import { testEnv } from "../helpers/worker";
import { b64 } from "../sender/oneaccess-sender";

const HOOK_URL = "https://hooks.receiver.test/oneaccess?token=path-secret-9f3c";
const SECRET = `whsec_${b64(new TextEncoder().encode("test webhook key one, 32 bytes!!"))}`;

const base = { ONEACCESS_BEARER_TOKEN: "bearer-token-of-thirty-two-chars", ONEACCESS_SIGNING_KEY: "signing-key", ONEACCESS_ENCRYPTION_KEY: "u3Hc8VdQ1nYs6FaJ" };
const secretOf = (bytes: number) => `whsec_${b64(new Uint8Array(bytes).map((_, i) => (i * 37 + 11) % 256))}`;

function problems(env: Record<string, string>): ConfigProblem[] {
  const r = readConfig({ ...base, ...env });
  return r.ok ? [] : r.problems;
}
const settings = (env: Record<string, string>) => problems(env).map((p) => p.setting);

describe("WEBHOOK_URL and WEBHOOK_SECRET", () => {
  it("off when all three are empty or blank; on with an https URL and a secret", () => {
    for (const empty of [{}, { WEBHOOK_URL: "", WEBHOOK_SECRET: "", WEBHOOK_SECRET_PREVIOUS: "" }, { WEBHOOK_URL: "  ", WEBHOOK_SECRET: " " }]) {
      const r = readConfig({ ...base, ...empty });
      expect(r.ok && r.config.webhook).toBeNull();
    }
    const r = readConfig({ ...base, WEBHOOK_URL: HOOK_URL, WEBHOOK_SECRET: SECRET });
    expect(r.ok).toBe(true);
    expect(r.ok && r.config.webhook).toEqual({ url: HOOK_URL, keys: [new TextEncoder().encode("test webhook key one, 32 bytes!!")] });
  });

  it("one without the other is a problem naming the missing one", () => {
    expect(problems({ WEBHOOK_URL: HOOK_URL })).toEqual([{ setting: "WEBHOOK_SECRET", problem: "is required when WEBHOOK_URL is set" }]);
    expect(problems({ WEBHOOK_SECRET: SECRET })).toEqual([{ setting: "WEBHOOK_URL", problem: "is required when WEBHOOK_SECRET is set" }]);
    expect(settings({ WEBHOOK_SECRET_PREVIOUS: SECRET })).toEqual(["WEBHOOK_URL", "WEBHOOK_SECRET"]);
    expect(settings({ WEBHOOK_URL: HOOK_URL, WEBHOOK_SECRET_PREVIOUS: SECRET })).toEqual(["WEBHOOK_SECRET"]);
  });

  it("the URL must be https: plain http only to localhost or 127.0.0.1, and only with LOCAL_DEV=true", () => {
    const url = (WEBHOOK_URL: string, LOCAL_DEV = "") => settings({ WEBHOOK_URL, WEBHOOK_SECRET: SECRET, LOCAL_DEV });
    expect(url("https://hooks.example.com/in")).toEqual([]);
    expect(url("https://localhost:8443/in")).toEqual([]);
    expect(url("http://hooks.example.com/in")).toEqual(["WEBHOOK_URL"]);
    expect(url("http://hooks.example.com/in", "true")).toEqual(["WEBHOOK_URL"]);
    for (const local of ["http://localhost:8790/webhooks", "http://127.0.0.1:8790/webhooks", "http://localhost/"]) {
      expect(url(local), local).toEqual(["WEBHOOK_URL"]);
      expect(url(local, "yes"), local).toEqual(["WEBHOOK_URL"]);
      expect(url(local, "true"), local).toEqual([]);
    }
    // Only those two names: not a look-alike, another loopback address, or IPv6.
    for (const other of ["http://localhost.example.com/", "http://127.0.0.2/", "http://[::1]/", "http://0.0.0.0/"]) {
      expect(url(other, "true"), other).toEqual(["WEBHOOK_URL"]);
    }
    for (const bad of ["hooks.example.com/in", "/webhooks", "https//hooks", "ftp://hooks.example.com/", "javascript:alert(1)"]) {
      expect(url(bad, "true"), bad).toEqual(["WEBHOOK_URL"]);
    }
  });

  it("the secret is whsec_ and strict Base64 of 24 to 64 bytes", () => {
    const secret = (WEBHOOK_SECRET: string) => settings({ WEBHOOK_URL: HOOK_URL, WEBHOOK_SECRET });
    expect(secret(secretOf(23))).toEqual(["WEBHOOK_SECRET"]);
    expect(secret(secretOf(24))).toEqual([]);
    expect(secret(secretOf(64))).toEqual([]);
    expect(secret(secretOf(65))).toEqual(["WEBHOOK_SECRET"]);
    const good = secretOf(32);
    expect(secret(good.slice("whsec_".length))).toEqual(["WEBHOOK_SECRET"]); // no prefix
    expect(secret(`WHSEC_${good.slice(6)}`)).toEqual(["WEBHOOK_SECRET"]);
    expect(secret(good.replace(/=+$/, ""))).toEqual(["WEBHOOK_SECRET"]); // padding missing
    expect(secret(`${good.slice(0, 10)}-${good.slice(11)}`)).toEqual(["WEBHOOK_SECRET"]); // base64url
    expect(secret("whsec_")).toEqual(["WEBHOOK_SECRET"]);
    expect(settings({ WEBHOOK_URL: HOOK_URL, WEBHOOK_SECRET: good, WEBHOOK_SECRET_PREVIOUS: secretOf(23) })).toEqual(["WEBHOOK_SECRET_PREVIOUS"]);
    const r = readConfig({ ...base, WEBHOOK_URL: HOOK_URL, WEBHOOK_SECRET: good, WEBHOOK_SECRET_PREVIOUS: SECRET });
    expect(r.ok && r.config.webhook?.keys.length).toBe(2);
  });

  it("a problem never quotes the value it refuses", () => {
    const url = "http://user:pa55word@hooks.example.com/in?token=abc123secret";
    const secret = "whsec_c2hvcnQtYnV0LXNlY3JldA==";
    const found = problems({ WEBHOOK_URL: url, WEBHOOK_SECRET: secret, WEBHOOK_SECRET_PREVIOUS: "not-a-secret-at-all" });
    expect(found.map((p) => p.setting)).toEqual(["WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS"]);
    const text = JSON.stringify(found);
    for (const value of [url, "pa55word", "abc123secret", secret, "c2hvcnQtYnV0LXNlY3JldA", "not-a-secret-at-all"]) expect(text).not.toContain(value);
  });

  it("the development secret of .dev.vars.example is public: refused without LOCAL_DEV, in readConfig and where the dispatcher reads it", () => {
    const dev = Object.fromEntries([...testEnv.DEV_VARS_EXAMPLE.matchAll(/^([A-Z_]+)="([^"]*)"$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(dev.WEBHOOK_URL).toBe("http://127.0.0.1:8789/webhooks");
    expect(PUBLIC_DEVELOPMENT_VALUES).toContain(dev.WEBHOOK_SECRET);
    const deployed = { WEBHOOK_URL: HOOK_URL, WEBHOOK_SECRET: dev.WEBHOOK_SECRET! };
    expect(problems(deployed)).toEqual([{ setting: "WEBHOOK_SECRET", problem: "is the public development value from .dev.vars.example: set your own secret" }]);
    expect(readWebhookSettings(deployed)).toBeNull();
    expect(settings({ ...deployed, WEBHOOK_SECRET: SECRET, WEBHOOK_SECRET_PREVIOUS: dev.WEBHOOK_SECRET! })).toEqual(["WEBHOOK_SECRET_PREVIOUS"]);
    expect(readWebhookSettings({ ...deployed, LOCAL_DEV: "true" })).not.toBeNull();
    // The whole example file is a valid development configuration, webhooks on.
    const r = readConfig(dev);
    expect(r.ok && r.config.webhook?.url).toBe("http://127.0.0.1:8789/webhooks");
  });
});

