// Rotating a secret without downtime (contract section 7): while a `*_PREVIOUS` twin holds the old value,
// requests authorized, signed or sealed with either value are accepted and the reply is sealed with the key
// the request used; once the twin is unset (the cut-over), the old value is refused. Driven through the
// Worker's fetch by the independent sender.
import { afterEach, describe, expect, it, vi } from "vitest";
import { b64, buildRequest, cbcOpen, gcmOpenAny, openReply, randomNonce, toRequest, type SenderProfile } from "./sender/oneaccess-sender";
import { callWorker, CALLBACK_URL, envFor, profile, testEnv } from "./helpers/worker";

type Overrides = Partial<Record<keyof Env, unknown>>;

const NEW_BEARER = "rotated-bearer-token-0b7e-5c1d9a3f";
const NEW_SIGNING_KEY = "rotatedSigningKey9Q";
const NEW_GCM_KEY = "R0tatedGcmKey16c"; // 16 characters: AES-128
const NEW_CBC_KEY = b64(crypto.getRandomValues(new Uint8Array(32))).slice(0, 43);

const SECRETS = ["ONEACCESS_BEARER_TOKEN", "ONEACCESS_SIGNING_KEY", "ONEACCESS_ENCRYPTION_KEY"] as const;
type Secret = (typeof SECRETS)[number];

/** The env a sender profile's settings need, with every secret at the profile's (old) value and no twin. */
function baseEnv(p: SenderProfile): Overrides {
  return {
    ...envFor(p),
    ONEACCESS_BEARER_TOKEN: p.bearer,
    ONEACCESS_SIGNING_KEY: p.signingKey,
    ONEACCESS_BEARER_TOKEN_PREVIOUS: "",
    ONEACCESS_SIGNING_KEY_PREVIOUS: "",
    ONEACCESS_ENCRYPTION_KEY_PREVIOUS: "",
  };
}

function field(secret: Secret): keyof SenderProfile {
  return secret === "ONEACCESS_BEARER_TOKEN" ? "bearer" : secret === "ONEACCESS_SIGNING_KEY" ? "signingKey" : "encryptionKey";
}

function newValue(secret: Secret, p: SenderProfile): string {
  if (secret === "ONEACCESS_BEARER_TOKEN") return NEW_BEARER;
  if (secret === "ONEACCESS_SIGNING_KEY") return NEW_SIGNING_KEY;
  return p.encryption === "aes-cbc" ? NEW_CBC_KEY : NEW_GCM_KEY;
}

/** The Worker mid-rotation: `secret` is the new value, its twin the old one. */
function duringRotation(p: SenderProfile, secret: Secret): Overrides {
  return { ...baseEnv(p), [secret]: newValue(secret, p), [`${secret}_PREVIOUS`]: p[field(secret)] };
}

/** The Worker after the cut-over: `secret` is the new value and the twin is unset. */
function afterCutOver(p: SenderProfile, secret: Secret): Overrides {
  return { ...baseEnv(p), [secret]: newValue(secret, p), [`${secret}_PREVIOUS`]: "" };
}

/** The sender still on the old value (the profile) or already on the new one. */
function senderWith(p: SenderProfile, secret: Secret, value: "old" | "new"): SenderProfile {
  return value === "old" ? p : { ...p, [field(secret)]: newValue(secret, p) };
}

async function checkUrl(sender: SenderProfile, env: Overrides) {
  const random = `rot-${randomNonce(10)}`;
  const { request } = await buildRequest(CALLBACK_URL, sender, "CHECK_URL", random);
  const res = await callWorker(request, env);
  return { res, random };
}

/** Opens a reply's `data` with the sender's encryption key (throws, or yields garbage, with a wrong key). */
async function openData(sender: SenderProfile, data: string): Promise<string> {
  return sender.encryption === "aes-cbc" ? (await cbcOpen(sender.encryptionKey, data)).message : (await gcmOpenAny(sender.encryptionKey, data)).message;
}

/** The operator's /healthz view (behind DIRECTORY_API_TOKEN). */
async function health(env: Overrides) {
  const headers = { authorization: `Bearer ${testEnv.DIRECTORY_API_TOKEN}` };
  const res = await callWorker(new Request("https://receiver.test/healthz", { headers }), env);
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as Record<string, unknown> };
}

const profiles: Array<[string, SenderProfile]> = [
  ["sha1 + aes-gcm", profile("sha1+gcm", "iv12")],
  ["hmac-sha256 + aes-gcm", profile("hmac+gcm", "iv16-b64-prefix")],
  ["sha1 + aes-cbc", profile("sha1+cbc")],
];

afterEach(() => vi.restoreAllMocks());

for (const secret of SECRETS) {
  describe(`rotating ${secret}`, () => {
    for (const [name, p] of profiles) {
      it(`${name}: while ${secret}_PREVIOUS is set, the old value and the new one are both accepted`, async () => {
        const env = duringRotation(p, secret);
        for (const value of ["old", "new"] as const) {
          const sender = senderWith(p, secret, value);
          const { res, random } = await checkUrl(sender, env);
          expect(res.status, `${value} value`).toBe(200);
          expect(await openReply(sender, res)).toMatchObject({ code: "200", plaintext: random });
        }
      });

      it(`${name}: after the cut-over (${secret}_PREVIOUS unset) the old value is refused, the new one accepted`, async () => {
        const env = afterCutOver(p, secret);
        const old = await checkUrl(senderWith(p, secret, "old"), env);
        if (secret === "ONEACCESS_ENCRYPTION_KEY") {
          expect(await old.res.json()).toEqual({ code: "400", message: "data cannot be decrypted", data: "" });
        } else {
          expect(await old.res.json()).toEqual({ code: "401", message: "authentication failed", data: "" });
        }
        const sender = senderWith(p, secret, "new");
        const fresh = await checkUrl(sender, env);
        expect(await openReply(sender, fresh.res)).toMatchObject({ code: "200", plaintext: fresh.random });
      });
    }

    it("the new value is accepted before, during and after the rotation; the old one until the cut-over", async () => {
      const p = profile("sha1+gcm", "iv16");
      const before: Overrides = { ...baseEnv(p), [secret]: p[field(secret)] }; // nothing rotated yet
      const statuses = async (env: Overrides) => ({
        old: (await checkUrl(senderWith(p, secret, "old"), env)).res.status,
        new: (await checkUrl(senderWith(p, secret, "new"), env)).res.status,
      });
      const refused = secret === "ONEACCESS_ENCRYPTION_KEY" ? 400 : 401;
      expect(await statuses(before)).toEqual({ old: 200, new: refused }); // the new value is not configured yet
      expect(await statuses(duringRotation(p, secret))).toEqual({ old: 200, new: 200 });
      expect(await statuses(afterCutOver(p, secret))).toEqual({ old: refused, new: 200 });
    });

    it("/healthz lists the rotation by name while the twin is set, never a value, and stops after the cut-over", async () => {
      const p = profile("sha1+gcm", "iv12");
      const during = await health(duringRotation(p, secret));
      expect(during.status).toBe(200);
      expect(during.body).toMatchObject({ status: "ok", rotationInProgress: [secret] });
      for (const value of [p[field(secret)] as string, newValue(secret, p)]) expect(during.text).not.toContain(value);
      const after = await health(afterCutOver(p, secret));
      expect(after.body).toMatchObject({ status: "ok", rotationInProgress: [] });
    });

    it("the log line names the secret whose previous value was used (never a value); /healthz says when", async () => {
      const p = profile("sha1+gcm", "iv12");
      const env = duringRotation(p, secret);
      const captured: string[] = [];
      for (const level of ["log", "warn", "error"] as const) {
        vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void captured.push(args.map(String).join(" ")));
      }
      await checkUrl(senderWith(p, secret, "new"), env);
      await checkUrl(senderWith(p, secret, "old"), env);
      const lines = captured.filter((l) => l.includes('"msg":"callback"'));
      expect(lines).toHaveLength(2);
      expect(JSON.parse(lines[0]!).previousKeys).toBeUndefined();
      expect(JSON.parse(lines[1]!).previousKeys).toEqual([secret]);
      for (const line of lines) {
        for (const value of [p[field(secret)] as string, newValue(secret, p)]) expect(line).not.toContain(value);
      }
      const h = await health(env);
      const seen = h.body.seenByThisInstance as { previousKeyLastUsed: Record<string, string> };
      expect(Object.keys(seen.previousKeyLastUsed)).toContain(secret);
    });
  });
}

describe("replies are sealed with the key the request used", () => {
  const cases: Array<[string, SenderProfile]> = [
    ["aes-gcm", profile("sha1+gcm", "iv12")],
    ["aes-cbc", profile("sha1+cbc")],
  ];
  const open = openData;
  for (const [name, p] of cases) {
    it(`${name}: a request sealed with the old key gets a reply that opens with the old key, not the new one, and vice versa`, async () => {
      const env = duringRotation(p, "ONEACCESS_ENCRYPTION_KEY");
      const oldSender = senderWith(p, "ONEACCESS_ENCRYPTION_KEY", "old");
      const newSender = senderWith(p, "ONEACCESS_ENCRYPTION_KEY", "new");
      for (const [used, other] of [
        [oldSender, newSender],
        [newSender, oldSender],
      ] as const) {
        const { res, random } = await checkUrl(used, env);
        const body = (await res.json()) as { code: string; data: string };
        expect(body.code).toBe("200");
        expect(await open(used, body.data)).toBe(random);
        // The other key does not open it: GCM's tag fails; CBC yields no valid message.
        const withOther = await open(other, body.data).catch(() => null);
        expect(withOther).not.toBe(random);
      }
    });
  }

  it("aes-gcm: the reply keeps the request's layout under the old key too", async () => {
    for (const layout of ["iv16-b64-prefix", "iv12", "iv16"] as const) {
      const p = profile("sha1+gcm", layout);
      const { res, random } = await checkUrl(p, duringRotation(p, "ONEACCESS_ENCRYPTION_KEY"));
      const body = (await res.json()) as { data: string };
      expect(await gcmOpenAny(p.encryptionKey, body.data)).toEqual({ layout, message: random });
    }
  });
});

describe("directory events during a rotation", () => {
  for (const [name, p] of [
    ["aes-gcm", profile("hmac+gcm", "iv16-b64-prefix")],
    ["aes-cbc", profile("sha1+cbc")],
  ] as const) {
    it(`${name}: CREATE_USER sealed with the old key is applied; its reply and a duplicate's open with the old key only`, async () => {
      const env = duringRotation(p, "ONEACCESS_ENCRYPTION_KEY");
      const newSender = senderWith(p, "ONEACCESS_ENCRYPTION_KEY", "new");
      const { request, envelope } = await buildRequest(CALLBACK_URL, p, "CREATE_USER", {
        username: `rotation.${name}.${randomNonce(8)}`,
        name: "Rotation User",
        organizationId: "",
        disabled: false,
      });
      const first = await openReply(p, await callWorker(request, env));
      expect(first).toMatchObject({ status: 200, code: "200" });
      const id = (JSON.parse(first.plaintext) as { id: string }).id;
      expect(id).toMatch(/\S/);
      expect(await openData(newSender, first.data).catch(() => null)).not.toBe(first.plaintext);

      // OneAccess retries the same request: the stored reply, re-sealed with the same (old) key.
      const again = await openReply(p, await callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), env));
      expect(again).toMatchObject({ status: 200, code: "200", plaintext: first.plaintext });
      expect(again.data).not.toBe(first.data);

      // The same retry after the cut-over no longer opens: refused like a new request, never answered unsealed.
      const late = await callWorker(toRequest(CALLBACK_URL, p, JSON.stringify(envelope)), afterCutOver(p, "ONEACCESS_ENCRYPTION_KEY"));
      const text = await late.text();
      expect(JSON.parse(text)).toEqual({ code: "400", message: "data cannot be decrypted", data: "" });
      expect(text).not.toContain(id);
    });
  }
});

describe("rotating all three secrets at once", () => {
  const p = profile("hmac+gcm", "iv12");
  const all = (state: "during" | "after"): Overrides => {
    let env = baseEnv(p);
    for (const secret of SECRETS) env = { ...env, ...(state === "during" ? duringRotation(p, secret) : afterCutOver(p, secret)) };
    // Each helper starts from baseEnv, so restore the other secrets' rotation state.
    for (const secret of SECRETS) {
      env[secret] = newValue(secret, p);
      env[`${secret}_PREVIOUS` as keyof Env] = state === "during" ? (p[field(secret)] as string) : "";
    }
    return env;
  };
  const allNew: SenderProfile = { ...p, bearer: NEW_BEARER, signingKey: NEW_SIGNING_KEY, encryptionKey: NEW_GCM_KEY };

  it("old, new and mixed senders are accepted during the rotation; /healthz lists all three", async () => {
    const env = all("during");
    const mixed: SenderProfile = { ...p, bearer: NEW_BEARER, encryptionKey: NEW_GCM_KEY }; // old signing key only
    for (const sender of [p, allNew, mixed]) {
      const { res, random } = await checkUrl(sender, env);
      expect(await openReply(sender, res)).toMatchObject({ code: "200", plaintext: random });
    }
    const h = await health(env);
    expect(h.body.rotationInProgress).toEqual([...SECRETS]);
    for (const value of [p.bearer, p.signingKey, p.encryptionKey, NEW_BEARER, NEW_SIGNING_KEY, NEW_GCM_KEY]) {
      expect(h.text).not.toContain(value);
    }
  });

  it("after the cut-over only the new set is accepted", async () => {
    const env = all("after");
    expect((await checkUrl(p, env)).res.status).toBe(401);
    const { res, random } = await checkUrl(allNew, env);
    expect(await openReply(allNew, res)).toMatchObject({ code: "200", plaintext: random });
  });

  it("a *_PREVIOUS twin that is not a valid key for the cipher is named by /healthz, without its value", async () => {
    const env = { ...all("during"), ONEACCESS_ENCRYPTION_KEY_PREVIOUS: "too-short" };
    vi.spyOn(console, "error").mockImplementation(() => {});
    const h = await health(env);
    expect(h.status).toBe(500);
    expect(h.body).toMatchObject({ status: "misconfigured", problems: [{ setting: "ONEACCESS_ENCRYPTION_KEY_PREVIOUS" }] });
    expect(h.text).not.toContain("too-short");
  });

  it("a twin without its current secret is a misconfiguration, not a silent single-key setup", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const h = await health({ ...baseEnv(p), ONEACCESS_BEARER_TOKEN: "", ONEACCESS_BEARER_TOKEN_PREVIOUS: p.bearer });
    expect(h.body).toMatchObject({ status: "misconfigured", problems: [{ setting: "ONEACCESS_BEARER_TOKEN" }] });
  });
});

// Keep the default test configuration honest: no rotation unless a test sets one.
it("the test configuration has no rotation in progress", async () => {
  expect(testEnv.ONEACCESS_BEARER_TOKEN_PREVIOUS).toBe("");
  expect((await health({})).body.rotationInProgress).toEqual([]);
});
