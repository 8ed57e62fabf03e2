// GET /healthz, the operator's view: safe defaults are visible (a warning when signing or encryption is off),
// names never values.
import { describe, expect, it } from "vitest";
import { callWorker, testEnv } from "./helpers/worker";

/** The operator's view (the public one says only ok / misconfigured: see test/security/findings.test.ts). */
async function health(overrides: Partial<Record<keyof Env, unknown>> = {}) {
  const headers = { authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN}` };
  const res = await callWorker(new Request("https://receiver.test/healthz", { headers }), overrides);
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { status: string; warnings: string[]; profile: Record<string, unknown> } };
}

const secrets = () => [testEnv.ONEACCESS_BEARER_TOKEN, testEnv.ONEACCESS_SIGNING_KEY, testEnv.ONEACCESS_ENCRYPTION_KEY, testEnv.DIRECTORY_API_TOKEN];

describe("/healthz safe-default warnings", () => {
  it("the default profile (sha1 + aes-gcm) has no warning", async () => {
    const h = await health();
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: "ok", profile: { signature: "sha1", encryption: "aes-gcm", auditRetentionDays: 30 }, warnings: [] });
  });

  it("signing off: one warning naming ONEACCESS_SIGNATURE", async () => {
    const h = await health({ ONEACCESS_SIGNATURE: "none" });
    expect(h.status).toBe(200);
    expect(h.body.warnings).toHaveLength(1);
    expect(h.body.warnings[0]).toMatch(/signing is off.*ONEACCESS_SIGNATURE=none/);
  });

  it("encryption off: one warning naming ONEACCESS_ENCRYPTION", async () => {
    const h = await health({ ONEACCESS_ENCRYPTION: "none" });
    expect(h.body.warnings).toHaveLength(1);
    expect(h.body.warnings[0]).toMatch(/encryption is off.*ONEACCESS_ENCRYPTION=none/);
  });

  it("both off: both warnings, and the Worker still serves (status ok)", async () => {
    const h = await health({ ONEACCESS_SIGNATURE: "none", ONEACCESS_ENCRYPTION: "none" });
    expect(h.body.status).toBe("ok");
    expect(h.body.warnings).toHaveLength(2);
  });

  it("no secret value appears in any of these views", async () => {
    for (const o of [{}, { ONEACCESS_SIGNATURE: "none" }, { ONEACCESS_ENCRYPTION: "none" }, { ONEACCESS_SIGNING_KEY_PREVIOUS: "previous-signing-key-x" }]) {
      const h = await health(o);
      for (const value of [...secrets(), "previous-signing-key-x"]) expect(h.text).not.toContain(value);
    }
  });
});
