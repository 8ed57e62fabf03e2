// Sync settings: saving them sends CHECK_URL and answers its result (settings the receiver refuses are not
// saved, as in OneAccess); changes made before any settings wait for them. State survives a restart: a new
// emulator over the same store carries on with the same directory, ids, records and tokens.
import { beforeEach, describe, expect, it, vi } from "vitest";
import { createEmulator } from "../../emulator/core/app";
import { checkState, emptyState } from "../../emulator/core/state";
import { settingsFromFiles } from "../../emulator/core/settings";
import { MemoryStore } from "../../emulator/core/store";
import { CALLBACK_URL } from "../helpers/worker";
import { simProfile, workerFetch } from "../simulator/harness";
import { Client, emulatorFor, receiverDirectory, settingsBody, switchableFetch } from "./harness";

beforeEach(() => {
  vi.spyOn(console, "log").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});

describe("sync settings", () => {
  it("changes wait for settings; saving them sends CHECK_URL; settings the receiver refuses are not saved", async () => {
    const c = await new Client(emulatorFor("sha1+gcm", "iv16", { configured: false })).login();
    expect(await c.ok("GET", c.app("/sync-settings"))).toMatchObject({ callback_url: "", security_token: "", signature_algorithm: "" });
    await c.createOrg("set-root", "Root");
    expect((await c.records())[0]).toMatchObject({ status: "waiting", message: "waiting for the callback settings (PUT .../sync-settings)" });

    // A wrong security token: the receiver answers CHECK_URL with 401, and nothing is saved.
    const wrongToken = await c.call("PUT", c.app("/sync-settings"), { ...settingsBody("sha1+gcm", "iv16"), security_token: "not-the-token-but-long-enough-to-be-valid" });
    expect(wrongToken).toEqual({ status: 400, body: { error_code: "SYNC.0001", error_msg: "CHECK_URL failed: 401 authentication failed" } });
    // A wrong (well-formed) encryption key: the receiver cannot open the data.
    const wrongKey = await c.call("PUT", c.app("/sync-settings"), { ...settingsBody("sha1+gcm", "iv16"), encryption_key: "0123456789abcdef" });
    expect(wrongKey.body.error_msg).toBe("CHECK_URL failed: 400 data cannot be decrypted");
    expect((await c.ok("GET", c.app("/sync-settings"))).callback_url).toBe("");
    expect((await c.records())[0].status).toBe("waiting");

    const saved = await c.ok("PUT", c.app("/sync-settings"), settingsBody("sha1+gcm", "iv16"));
    expect(saved).toEqual({
      check_url: { code: "200", message: "success", echoed: true },
      callback_url: CALLBACK_URL,
      security_token: "********",
      signature_algorithm: "sha1",
      signing_key: "********",
      encryption_algorithm: "aes-gcm",
      encryption_key: "********",
      gcm_layout: "iv16",
      receive_id: "",
      general: { account_deletion: "delete", organization_deletion: "delete" },
    });
    // What waited for the settings went out once they were saved.
    expect((await c.records())[0]).toMatchObject({ status: "success", code: "200" });
    expect((await receiverDirectory("set")).organizations.map((o) => o.code)).toEqual(["set-root"]);

    // A partial change keeps the rest (here only the AES-GCM layout), and is checked the same way.
    expect((await c.ok("PUT", c.app("/sync-settings"), { gcm_layout: "iv12" })).gcm_layout).toBe("iv12");
    await c.createOrg("set-second", "Second");
    expect((await c.records())[0]).toMatchObject({ status: "success" });
  });

  it("the deletion setting (general configuration) is read and changed on its own, without a CHECK_URL", async () => {
    const link = switchableFetch(workerFetch("none"));
    const c = await new Client(emulatorFor("none", undefined, { fetch: link.fetch })).login();
    expect(await c.ok("PUT", c.app("/sync-settings/general"), { account_deletion: "none" })).toEqual({ account_deletion: "none", organization_deletion: "delete" });
    expect(await c.ok("PUT", c.app("/sync-settings/general"), { organization_deletion: "disable" })).toEqual({ account_deletion: "none", organization_deletion: "disable" });
    expect((await c.ok("GET", c.app("/sync-settings"))).general).toEqual({ account_deletion: "none", organization_deletion: "disable" });
    expect(link.state.sent).toBe(0);
  });
});

describe("state survives a restart", () => {
  it("a new emulator over the same store: same directory, tokens, records, and the receiver's ids", async () => {
    const store = new MemoryStore();
    const link = switchableFetch(workerFetch("sha1+cbc"));
    const settings = { callbackUrl: CALLBACK_URL, profile: simProfile("sha1+cbc") };
    const first = await new Client(createEmulator({ store, fetch: link.fetch, settings })).login();
    const org = await first.createOrg("rs-root", "Root");
    const alice = await first.createAccount({ user_id: await first.createUser("rs.alice"), org_code: "rs-root" });
    link.state.mode = "down";
    const bob = await first.createAccount({ user_id: await first.createUser("rs.bob"), org_code: "rs-root" });
    link.state.mode = "up";
    const recordsBefore = await first.records();

    // "Restart": nothing shared with the first emulator but the store.
    const second = new Client(createEmulator({ store, fetch: link.fetch, settings }));
    second.token = first.token;
    expect(await second.records()).toEqual(recordsBefore);
    expect((await second.list("/accounts", "accounts")).map((a) => a.id)).toEqual([alice, bob]);
    // The receiver's id of alice was kept: the update reaches the same user.
    await second.ok("PUT", second.app(`/accounts/${alice}`), { name: "Alice After Restart" });
    expect((await second.records())[0]).toMatchObject({ event_type: "UPDATE_USER", status: "success" });
    // The failed record is still there to retry.
    const [failed] = await second.records("failed");
    expect(failed).toMatchObject({ event_type: "CREATE_USER", object_name: "rs.bob" });
    expect(await second.ok("POST", second.app("/sync-records/retry"))).toMatchObject({ retried: 1, success: 1 });
    const users = (await receiverDirectory("rs")).users;
    expect(users.map((u) => [u.username, u.name, u.orgCode])).toEqual([
      ["rs.alice", "Alice After Restart", "rs-root"],
      ["rs.bob", "rs.bob", "rs-root"],
    ]);
    expect((await second.ok("GET", second.app(`/organizations/${org}`))).org_code).toBe("rs-root");
  });

  it("settings given at start replace saved ones (the runner's come from .dev.vars); deletion settings are kept", async () => {
    const store = new MemoryStore();
    const first = await new Client(createEmulator({ store, fetch: workerFetch("sha1+gcm", "iv12") })).login();
    await first.ok("PUT", first.app("/sync-settings"), settingsBody("sha1+gcm", "iv12"));
    await first.general("disable", "none");
    const second = await new Client(
      createEmulator({ store, fetch: workerFetch("sha1+gcm", "iv16"), settings: { callbackUrl: CALLBACK_URL, profile: simProfile("sha1+gcm", "iv16") } }),
    ).login();
    const view = await second.ok("GET", second.app("/sync-settings"));
    expect(view).toMatchObject({ gcm_layout: "iv16", general: { account_deletion: "disable", organization_deletion: "none" } });
  });

  it("a state file of another version is refused, not guessed at", () => {
    expect(() => checkState({ ...emptyState(), version: 2 })).toThrow(/not version 1 state/);
    expect(() => checkState("nonsense")).toThrow(/not version 1 state/);
    expect(checkState(JSON.parse(JSON.stringify(emptyState())))).toEqual(emptyState());
  });
});

describe("the public development values", () => {
  // .dev.vars.example's values: a receiver started with LOCAL_DEV=true accepts them, so the emulator beside it must too.
  const devValues = { security_token: "dev-bearer-token-public-never-deploy-0001", signature_algorithm: "hmac-sha256", signing_key: "devSigningKeyPub" };

  it("are refused by name when the emulator's settings files do not set LOCAL_DEV", async () => {
    const c = await new Client(emulatorFor("sha1+gcm", "iv16")).login();
    const refused = await c.call("PUT", c.app("/sync-settings"), devValues);
    expect(refused.status).toBe(400);
    expect(refused.body.error_msg).toContain("security_token is the public development value");
  });

  it("are accepted (and sent on to the receiver's CHECK_URL) when they set LOCAL_DEV=true", async () => {
    const c = await new Client(emulatorFor("sha1+gcm", "iv16", { localDev: true })).login();
    // The test receiver has its own token, so it is the receiver (not the emulator) that refuses.
    expect((await c.call("PUT", c.app("/sync-settings"), devValues)).body.error_msg).toBe("CHECK_URL failed: 401 authentication failed");
    expect((await c.ok("PUT", c.app("/sync-settings"), { gcm_layout: "iv12" })).gcm_layout).toBe("iv12");
  });

  it("settingsFromFiles reads LOCAL_DEV from the files, as wrangler dev does", () => {
    const devVars = ['LOCAL_DEV="true"', 'ONEACCESS_BEARER_TOKEN="dev-bearer-token-public-never-deploy-0001"', 'ONEACCESS_SIGNATURE="none"', 'ONEACCESS_ENCRYPTION="none"'].join("\n");
    const local = settingsFromFiles({ wranglerToml: null, devVars, flags: {}, callbackUrl: undefined });
    expect(local).toMatchObject({ ok: true, localDev: true });
    const deployed = settingsFromFiles({ wranglerToml: null, devVars: devVars.replace('LOCAL_DEV="true"', ""), flags: {}, callbackUrl: undefined });
    expect(deployed).toMatchObject({ ok: false });
  });
});
