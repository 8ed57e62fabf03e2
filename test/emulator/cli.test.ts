// The runner (`npm run emulator`) with a fake host: options, settings read like `wrangler dev` reads them,
// the banner, the CHECK_URL at start, and requests served by the returned app reaching the Worker.
import { beforeEach, describe, expect, it, vi } from "vitest";
import { main, type EmulatorHost, type Started } from "../../emulator/cli/main";
import { MemoryStore } from "../../emulator/core/store";
import { CALLBACK_URL } from "../helpers/worker";
import { simProfile, workerFetch } from "../simulator/harness";
import { Client, receiverDirectory } from "./harness";

beforeEach(() => void vi.spyOn(console, "log").mockImplementation(() => {}));

const WRANGLER_TOML = `name = "x"\n[vars]\nONEACCESS_SIGNATURE = "sha1"\nONEACCESS_ENCRYPTION = "aes-gcm"\nONEACCESS_GCM_LAYOUT = "auto"\n[[d1_databases]]\nbinding = "DB"\n`;

function devVars(): string {
  const p = simProfile("hmac+gcm", "iv12");
  return `ONEACCESS_BEARER_TOKEN="${p.bearer}"\nONEACCESS_SIGNING_KEY="${p.signingKey}"\nONEACCESS_ENCRYPTION_KEY="${p.encryptionKey}"\n`;
}

function fakeHost(argv: string[], files: Record<string, string> = {}, env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const served: Array<{ port: number; hostname: string }> = [];
  const stores: string[] = [];
  const host: EmulatorHost = {
    argv,
    env,
    readProjectFile: (name) => files[name] ?? null,
    readUserFile: (path) => files[`user:${path}`] ?? null,
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    fetch: workerFetch("hmac+gcm", "iv12"),
    fileStore: (path) => {
      stores.push(path);
      return new MemoryStore();
    },
    serve: async (_fetch, port, hostname) => void served.push({ port, hostname }),
  };
  return { host, out: () => out.join(""), err: () => err.join(""), served, stores };
}

const receiverFlags = ["--url", CALLBACK_URL, "--signature", "hmac-sha256", "--layout", "iv12"];

describe("npm run emulator", () => {
  it("serves on 127.0.0.1:8788 with settings from wrangler.toml, .dev.vars and flags; CHECK_URL at start", async () => {
    const h = fakeHost(receiverFlags, { "wrangler.toml": WRANGLER_TOML, ".dev.vars": devVars() });
    const started = (await main(h.host)) as Started;
    expect(h.served).toEqual([{ port: 8788, hostname: "127.0.0.1" }]);
    expect(h.stores).toEqual([".wrangler/oneaccess-emulator/state.json"]);
    expect(h.out()).toContain("OneAccess emulator   http://127.0.0.1:8788");
    expect(h.out()).toContain("application         local-app");
    expect(h.out()).toContain("client credentials  emulator-client-id / emulator-client-secret");
    expect(h.out()).toContain(`callback            ${CALLBACK_URL}`);
    expect(h.out()).toContain("profile             hmac-sha256 signature, aes-gcm (iv12)");
    expect(h.out()).toMatch(/check-url {11}OK/);
    expect(h.err()).toBe("");

    // The app it serves: a provisioning call reaches the Worker, and the log says so.
    const c = await new Client(started.emulator).login();
    await c.createOrg("cli-root", "Root");
    expect(h.out()).toMatch(/\d\d:\d\d:\d\d sync #1 CREATE_ORGANIZATION cli-root -> 200 success \(\d+ ms\)/);
    expect(h.out()).toMatch(/POST \/api\/v2\/tenant\/applications\/local-app\/organizations -> 201/);
    expect((await receiverDirectory("cli")).organizations.map((o) => o.code)).toEqual(["cli-root"]);
  });

  it("options: port, host, state file, application id, client credentials from the environment or flags", async () => {
    const h = fakeHost(
      [...receiverFlags, "--port", "9100", "--host", "0.0.0.0", "--state", "/tmp/oa.json", "--application-id", "crm", "--no-check", "--token-ttl", "60"],
      { "wrangler.toml": WRANGLER_TOML, ".dev.vars": devVars() },
      { ONEACCESS_EMULATOR_CLIENT_ID: "my-id", ONEACCESS_EMULATOR_CLIENT_SECRET: "my-secret" },
    );
    const started = (await main(h.host)) as Started;
    expect(h.served).toEqual([{ port: 9100, hostname: "0.0.0.0" }]);
    expect(h.stores).toEqual(["/tmp/oa.json"]);
    expect(h.out()).toContain("client credentials  my-id / (as configured)");
    expect(h.out()).not.toContain("check-url");
    const token = (fields: string) =>
      started.emulator.app.fetch(new Request("http://emulator.test/api/v2/tenant/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: fields }));
    expect((await token("grant_type=client_credentials&client_id=emulator-client-id&client_secret=emulator-client-secret")).status).toBe(400);
    const ok = await token("grant_type=client_credentials&client_id=my-id&client_secret=my-secret");
    expect(await ok.json()).toMatchObject({ expires_in: 60 });
    const other = await started.emulator.app.fetch(new Request("http://emulator.test/"));
    expect(await other.json()).toMatchObject({ application_id: "crm", callback_url: CALLBACK_URL });
  });

  it("without .dev.vars it uses .dev.vars.example and says so; --dev-vars names another file", async () => {
    const fallback = fakeHost([...receiverFlags, "--no-check"], { "wrangler.toml": WRANGLER_TOML, ".dev.vars.example": devVars() });
    expect(typeof (await main(fallback.host))).toBe("object");
    expect(fallback.err()).toContain(".dev.vars is missing; using .dev.vars.example");
    const named = fakeHost([...receiverFlags, "--no-check", "--dev-vars", "other.vars"], { "wrangler.toml": WRANGLER_TOML, "user:other.vars": devVars() });
    expect(typeof (await main(named.host))).toBe("object");
    const missing = fakeHost([...receiverFlags, "--dev-vars", "nope.vars"], { "wrangler.toml": WRANGLER_TOML });
    expect(await main(missing.host)).toBe(2);
    expect(missing.err()).toContain("nope.vars does not exist");
  });

  it("refuses what it cannot use, naming the setting or option (exit 2)", async () => {
    const badKey = fakeHost(receiverFlags, { "wrangler.toml": WRANGLER_TOML, ".dev.vars": `${devVars()}ONEACCESS_ENCRYPTION_KEY="short"\n` });
    expect(await main(badKey.host)).toBe(2);
    expect(badKey.err()).toContain("ONEACCESS_ENCRYPTION_KEY must be 16, 24 or 32 bytes for aes-gcm");
    expect(badKey.served).toEqual([]);
    for (const [argv, message] of [
      [["--port", "http"], "--port must be an integer from 1 to 65535"],
      [["--colour"], "unknown option --colour"],
      [["--url", "ftp://x/callback"], "--url must be an absolute http or https URL"],
      [["--application-id", "a/b"], "--application-id may contain"],
      [["stray"], "unexpected argument stray"],
      [["--port"], "--port needs a value"],
      [["--port=0"], "--port must be an integer from 1 to 65535"],
      [["--no-check=yes"], "--no-check takes no value"],
    ] as const) {
      const h = fakeHost([...argv], { "wrangler.toml": WRANGLER_TOML, ".dev.vars": devVars() });
      expect(await main(h.host)).toBe(2);
      expect(h.err()).toContain(message);
    }
    for (const argv of [["--help"], ["-h"]]) {
      const help = fakeHost(argv);
      expect(await main(help.host)).toBe(0);
      expect(help.out()).toContain("Usage: npm run emulator -- [options]");
    }
  });

  it("a receiver that is not there yet: the emulator starts anyway and says so", async () => {
    const h = fakeHost(receiverFlags, { "wrangler.toml": WRANGLER_TOML, ".dev.vars": devVars() });
    h.host.fetch = async () => {
      throw new TypeError("fetch failed");
    };
    expect(typeof (await main(h.host))).toBe("object");
    expect(h.out()).toContain("check-url           FAILED: network fetch failed (is the receiver running?");
  });
});
