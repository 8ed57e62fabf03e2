// Deliveries that fail: a receiver outage leaves failed sync records (and the later changes that depend on
// them waiting behind), nothing is sent again by itself, and a retry clears them in order; a refusal (400)
// fails its record alone. Plus the ordering rules themselves, on crafted records.
import { beforeEach, describe, expect, it, vi } from "vitest";
import { blockerOf, dependsOn } from "../../emulator/core/sync";
import { emptyState, type SyncRecord } from "../../emulator/core/state";
import { simSender, workerFetch } from "../simulator/harness";
import { byCode, byUsername, Client, emulatorFor, orgFromOrganization, receiverDirectory, switchableFetch, userFromAccount } from "./harness";

// The Worker's one log line per callback (refusals go to console.warn).
beforeEach(() => {
  vi.spyOn(console, "log").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});

/** The receiver holds exactly what the emulator lists (for a tag's entities). */
async function expectInStep(c: Client, tag: string) {
  const orgs = await c.list("/organizations", "organizations", 100);
  const codes = new Map(orgs.map((o) => [o.org_id, o.org_code]));
  const codeOf = (id: string) => codes.get(id) ?? `unknown ${id}`;
  const accounts = await c.list("/accounts", "accounts", 100);
  const actual = await receiverDirectory(tag);
  expect(byCode(actual.organizations)).toEqual(byCode(orgs.map((o) => orgFromOrganization(o, codeOf))));
  expect(byUsername(actual.users)).toEqual(byUsername(accounts.map((a) => userFromAccount(a, codeOf))));
}

const summary = (r: any) => `${r.id} ${r.event_type} ${r.object_name} ${r.status} ${r.code} ${r.message}`;

describe("a receiver outage", () => {
  it("shows up as failed sync records, with what depends on them waiting; a retry clears them in order", async () => {
    const link = switchableFetch(workerFetch("sha1+gcm", "iv16-b64-prefix"));
    const c = await new Client(emulatorFor("sha1+gcm", "iv16-b64-prefix", { fetch: link.fetch })).login();
    const hq = await c.createOrg("out-hq", "HQ");
    await c.createOrg("out-ops", "Ops");
    const account: string[] = [];
    for (let n = 0; n < 4; n++) {
      const user = await c.createUser(`out.user${n}`, `User ${n}`);
      if (n < 3) account.push(await c.createAccount({ user_id: user, org_code: n < 2 ? "out-hq" : "out-ops" }));
      else account.push(user);
    }
    await expectInStep(c, "out");

    link.state.mode = "down";
    const sales = await c.createOrg("out-sales", "Sales", hq); // fails
    const a3 = await c.createAccount({ user_id: account[3], org_code: "out-sales" }); // waits for out-sales
    await c.ok("PUT", c.app(`/accounts/${account[0]}`), { name: "Zero v2" }); // fails
    await c.ok("PUT", c.app(`/accounts/${account[0]}`), { name: "Zero v3", extension: { title: "CEO" } }); // waits behind it
    await c.ok("PUT", c.app(`/accounts/${account[1]}/disable`)); // fails
    await c.ok("PUT", c.app(`/organizations/${hq}`), { name: "Headquarters" }); // organizations keep their order: waits

    const failed = (await c.records("failed")).reverse();
    expect(failed.map((r) => `${r.event_type} ${r.object_name} ${r.code}`)).toEqual([
      "CREATE_ORGANIZATION out-sales network",
      "UPDATE_USER out.user0 network",
      "UPDATE_USER out.user1 network",
    ]);
    expect(failed.every((r) => /fetch failed/.test(r.message) && r.attempts === 1)).toBe(true);
    const [salesCreate, zeroV2] = failed;
    const waiting = (await c.records("waiting")).reverse();
    expect(waiting.map((r) => `${r.event_type} ${r.object_name}: ${r.message}`)).toEqual([
      `CREATE_USER out.user3: waiting for sync record ${salesCreate.id}`,
      `UPDATE_USER out.user0: waiting for sync record ${zeroV2.id}`,
      `UPDATE_ORGANIZATION out-hq: waiting for sync record ${salesCreate.id}`,
    ]);
    expect(waiting.every((r) => r.code === null && r.attempts === 0)).toBe(true);
    // The receiver saw none of it.
    const during = await receiverDirectory("out");
    expect(during.organizations.map((o) => `${o.code} ${o.name}`)).toEqual(["out-hq HQ", "out-ops Ops"]);
    expect(during.users.map((u) => `${u.username} ${u.name} ${u.disabled}`)).toEqual(["out.user0 User 0 false", "out.user1 User 1 false", "out.user2 User 2 false"]);

    // Back up. A change nothing holds back (user2 is in out-ops) goes at once; the failed records are not sent
    // again by themselves.
    link.state.mode = "up";
    const sentBefore = link.state.sent;
    await c.ok("PUT", c.app(`/accounts/${account[2]}`), { name: "Two v2" });
    expect(link.state.sent).toBe(sentBefore + 1);
    expect(await c.records("failed")).toHaveLength(3);
    // A change behind a failed record waits too (user0's own, and out-hq's rename, since user0 is in out-hq).
    await c.ok("PUT", c.app(`/accounts/${account[0]}/disable`));
    expect(link.state.sent).toBe(sentBefore + 1);

    // Retrying one record sends it, then what waited behind it (and nothing else).
    const retried = await c.ok("POST", c.app(`/sync-records/${zeroV2.id}/retry`));
    expect(retried).toMatchObject({ id: zeroV2.id, status: "success", code: "200", message: "success", attempts: 2 });
    expect(link.state.sent).toBe(sentBefore + 3);
    const zero = (await receiverDirectory("out")).users.find((u) => u.username === "out.user0");
    expect(zero).toMatchObject({ name: "Zero v3", disabled: false, extensions: { title: "CEO" } });
    // The disable made after the outage still waits: out-hq's rename (behind out-sales's create) comes first.
    const hqRename = (await c.records("waiting")).find((r) => r.event_type === "UPDATE_ORGANIZATION");
    expect((await c.records("waiting")).map((r) => `${r.object_name}: ${r.message}`)).toContain(`out.user0: waiting for sync record ${hqRename.id}`);

    // Retrying everything else: the organization first, then what waited for it, in the order of the changes.
    const all = await c.ok("POST", c.app("/sync-records/retry"));
    expect(all).toEqual({ retried: 2, success: 2, failed: 0, waiting: 0, superseded: [] });
    const records = (await c.records()).reverse();
    expect(records.filter((r) => r.status !== "success").map(summary)).toEqual([]);
    const order = records.filter((r) => r.attempts > 0).sort((a, b) => a.updated_at.localeCompare(b.updated_at) || a.id - b.id);
    const sentAfter = order.slice(-5).map((r) => `${r.event_type} ${r.object_name}`);
    expect(sentAfter).toEqual([
      "CREATE_ORGANIZATION out-sales",
      "CREATE_USER out.user3",
      "UPDATE_USER out.user1",
      "UPDATE_ORGANIZATION out-hq",
      "UPDATE_USER out.user0",
    ]);
    expect(link.state.sent).toBe(sentBefore + 3 + 5);
    await expectInStep(c, "out");
    expect((await c.ok("GET", c.app(`/accounts/${a3}`))).org_id).toBe(sales);
  });

  it("a 503 holds like no answer at all; the record shows the status", async () => {
    const link = switchableFetch(workerFetch("hmac+gcm", "iv12"));
    const c = await new Client(emulatorFor("hmac+gcm", "iv12", { fetch: link.fetch })).login();
    link.state.mode = "503";
    await c.createOrg("svc-root", "Root");
    await c.createOrg("svc-other", "Other"); // every organization event waits behind the first
    const records = (await c.records()).reverse();
    expect(records.map((r) => [r.status, r.code, r.message])).toEqual([
      ["failed", "HTTP 503", "Service Unavailable"],
      ["waiting", null, `waiting for sync record ${records[0].id}`],
    ]);
    link.state.mode = "up";
    expect(await c.ok("POST", c.app("/sync-records/retry"))).toMatchObject({ retried: 1, success: 1, waiting: 0 });
    await expectInStep(c, "svc");
  });
});

describe("a refusal fails its record alone", () => {
  it("400 from the receiver: recorded with its code and message, nothing held back, a retry answers the same", async () => {
    const c = await new Client(emulatorFor("sha1+cbc")).login();
    await c.general("disable", "delete");
    const team = await c.createOrg("ref-team", "Team");
    const user = await c.createUser("ref.alice");
    const alice = await c.createAccount({ user_id: user, org_code: "ref-team" });
    // "disable": the user stays downstream, in ref-team; so deleting ref-team is refused by the receiver.
    await c.ok("DELETE", c.app(`/accounts/${alice}`));
    await c.ok("DELETE", c.app(`/organizations/${team}`));
    const [refused] = await c.records("failed");
    expect(refused).toMatchObject({
      event_type: "DELETE_ORGANIZATION",
      object_name: "ref-team",
      code: "400",
      message: "organization has 0 child organizations and 1 member",
    });
    // Not held back: later organization events go through.
    await c.createOrg("ref-next", "Next");
    expect(await c.records("waiting")).toEqual([]);
    expect((await c.records())[0]).toMatchObject({ object_name: "ref-next", status: "success" });
    const again = await c.ok("POST", c.app(`/sync-records/${refused.id}/retry`));
    expect(again).toMatchObject({ status: "failed", code: "400", attempts: 2 });
  });

  it("a refused change that a later one superseded is not sent again (it would undo the later one)", async () => {
    const c = await new Client(emulatorFor("sha1+gcm", "iv12")).login();
    // A user the receiver holds that the emulator does not know (made elsewhere).
    expect((await simSender("sha1+gcm", "iv12").send("CREATE_USER", JSON.stringify({ username: "sup.taken", name: "Elsewhere" }))).reply.code).toBe("200");
    const bob = await c.createAccount({ user_id: await c.createUser("sup.bob") });
    await c.ok("PUT", c.app(`/accounts/${bob}`), { account_name: "sup.taken" });
    const [refused] = await c.records("failed");
    expect(refused).toMatchObject({ event_type: "UPDATE_USER", code: "400", message: "username is already used by another user" });
    await c.ok("PUT", c.app(`/accounts/${bob}`), { account_name: "sup.robert" });
    expect((await c.records())[0]).toMatchObject({ status: "success", object_name: "sup.robert" });
    const retry = await c.call("POST", c.app(`/sync-records/${refused.id}/retry`));
    expect(retry).toEqual({
      status: 400,
      body: { error_code: "SYNC.0002", error_msg: `sync record ${refused.id} is superseded by sync record ${refused.id + 1}: sending it again would undo that change` },
    });
    expect(await c.ok("POST", c.app("/sync-records/retry"))).toEqual({ retried: 0, success: 0, failed: 0, waiting: 0, superseded: [refused.id] });
    expect((await receiverDirectory("sup")).users.map((u) => u.username)).toEqual(["sup.robert", "sup.taken"]);
  });
});

describe("ordering rules", () => {
  const rec = (id: number, objectType: "account" | "organization", objectId: string, extra: Partial<SyncRecord> = {}): SyncRecord => ({
    id,
    eventType: objectType === "account" ? "UPDATE_USER" : "UPDATE_ORGANIZATION",
    objectType,
    objectId,
    objectName: objectId,
    refs: [],
    data: {},
    link: null,
    status: "waiting",
    holds: false,
    code: null,
    message: "",
    attempts: 0,
    createdAt: "",
    updatedAt: "",
    ...extra,
  });

  it("what waits for what", () => {
    expect(dependsOn(rec(2, "account", "a"), rec(1, "account", "a"))).toBe(true);
    expect(dependsOn(rec(2, "account", "a"), rec(1, "account", "b", { refs: ["o"] }))).toBe(false);
    expect(dependsOn(rec(2, "organization", "o2"), rec(1, "organization", "o1"))).toBe(true);
    expect(dependsOn(rec(2, "account", "a", { refs: ["o1"] }), rec(1, "organization", "o1"))).toBe(true);
    expect(dependsOn(rec(2, "account", "a", { refs: ["o2"] }), rec(1, "organization", "o1"))).toBe(false);
    expect(dependsOn(rec(2, "organization", "o1"), rec(1, "account", "a", { refs: ["o1"] }))).toBe(true);
    expect(dependsOn(rec(2, "organization", "o1"), rec(1, "account", "a", { refs: ["o2"] }))).toBe(false);
  });

  it("a record waits for an unsettled earlier one it depends on, or for an id the receiver never gave", () => {
    const state = emptyState();
    state.settings = { callbackUrl: "https://receiver.test/callback", profile: {} as never };
    state.downstreamIds = { o1: "org_1" };
    const refusedCreate = rec(1, "account", "a", { eventType: "CREATE_USER", status: "failed", holds: false, code: "400" });
    const update = rec(2, "account", "a");
    const move = rec(3, "account", "b", { link: { field: "organizationId", orgId: "o2", orgCode: "sales" }, data: { organizationId: null }, refs: ["o2"] });
    state.downstreamIds.b = "usr_b";
    state.records = [refusedCreate, update, move];
    expect(blockerOf(state, update)).toBe("waiting for the receiver's id of account a");
    expect(blockerOf(state, move)).toBe("waiting for the receiver's id of organization sales");
    state.downstreamIds.o2 = "org_2";
    expect(blockerOf(state, move)).toBeNull();
    refusedCreate.holds = true; // had it not got through at all, the update would wait for the record itself
    expect(blockerOf(state, update)).toBe("waiting for sync record 1");
  });
});
