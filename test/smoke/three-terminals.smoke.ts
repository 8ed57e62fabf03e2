// The README's three-terminal flow, scripted: (1) the receiver under `wrangler dev` with WEBHOOK_URL
// pointing at (2) `simulate listen`, then (3) `simulate sync --orgs 3 --users 10`. Every change the sync
// made (counted through the read API's change log) must reach the listener and verify there. Runs in Node
// after the workerd suite (vitest.browser.config.ts); named *.smoke.ts so the workerd suite's
// `test/**/*.test.ts` does not pick it up.
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devVars, startWranglerDev, type WranglerDev } from "../browser/wrangler-dev.mjs";
import { processGroupGone, runNode, startNode, type NodeProcess } from "./processes.mjs";

const vars = devVars();
// The development webhook secret of .dev.vars.example: the receiver and the listener read the same file.
const SECRET = vars.WEBHOOK_SECRET!;
const TOKEN = vars.DIRECTORY_API_TOKEN!;

interface Change {
  id: string;
  type: string;
  entity_id: string;
}

let listener: NodeProcess;
let webhookUrl: string;
let dev: WranglerDev | undefined;
let changes: Change[] = [];

beforeAll(async () => {
  // Terminal 2 first: with --port 0 it takes a free port and prints the URL the receiver must send to.
  listener = startNode([
    "scripts/simulate.mjs",
    "listen",
    "--port",
    "0",
    "--dev-vars",
    ".dev.vars.example",
  ]);
  webhookUrl = (await listener.waitForLine(/^listening {3}(http:\/\/127\.0\.0\.1:\d+\/webhooks)$/, 60_000))[1]!;
  // Terminal 1: `npm run dev` is `wrangler dev` on .dev.vars; here on .dev.vars.example and a fresh local D1.
  dev = await startWranglerDev({ args: ["--var", `WEBHOOK_URL:${webhookUrl}`] });
});

afterAll(async () => {
  await listener?.stop();
  await dev?.stop();
});

/** One POST as the Worker's sender makes it: signed now by the library. */
async function post(id: string, body: string, sentBody = body) {
  const at = new Date();
  return fetch(webhookUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": new Webhook(SECRET).sign(id, at, body),
    },
    body: sentBody,
  });
}

/** Every change in the receiver's log, from its start (the database is fresh). */
async function allChanges(): Promise<Change[]> {
  const out: Change[] = [];
  let after: string | null = null;
  for (;;) {
    const query: string = after === null ? "?limit=200" : `?limit=200&after=${encodeURIComponent(after)}`;
    const res = await fetch(`${dev!.url}/api/v1/events${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status, await res.clone().text()).toBe(200);
    const page = (await res.json()) as { data: Change[]; next_cursor: string };
    out.push(...page.data);
    if (page.data.length === 0) return out;
    after = page.next_cursor;
  }
}

const verifiedLine = (id: string) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d {2}204 {2}#${id} +\\S+ +\\S+ +v\\d+ +\\[`);

describe("three terminals: npm run dev, simulate listen, simulate sync", () => {
  it("the listener verifies a message signed with its secret (204) and refuses a tampered one (400)", async () => {
    const body = JSON.stringify({
      type: "user.disabled",
      timestamp: new Date().toISOString(),
      data: {
        id: "smoke-1",
        type: "user.disabled",
        entity_type: "user",
        entity_id: "usr_smokeTest0001",
        version: 1,
        changed: ["disabled"],
        occurred_at: new Date().toISOString(),
        recorded_at: new Date().toISOString(),
        entity: { id: "usr_smokeTest0001", username: "smoke.user", disabled: true },
      },
    });
    expect((await post("smoke-1", body)).status).toBe(204);
    const second = body.replaceAll("smoke-1", "smoke-2");
    // Signed as `second`, sent with another username: a body changed on the way.
    expect((await post("smoke-2", second, second.replace("smoke.user", "smoke.evil"))).status).toBe(400);
    await listener.waitForLine(/^\d\d:\d\d:\d\d {2}204 {2}#smoke-1 {2}user\.disabled {10}usr_smokeTest0001 {2}v1 {4}\[disabled\] {2}smoke\.user \(disabled\)$/, 5_000);
    await listener.waitForLine(/^\d\d:\d\d:\d\d {2}400 {2}#smoke-2 {2}not verified: no signature matches this secret/, 5_000);
    // On a free port, not the settings' 8789: the listener says the file names another address.
    expect(listener.lines().slice(0, 6)).toEqual([
      `listening   ${webhookUrl}`,
      "secret      WEBHOOK_SECRET of .dev.vars.example",
      `receiver    set WEBHOOK_URL=${webhookUrl} (in .dev.vars, or npm run dev -- --var WEBHOOK_URL:${webhookUrl})`,
      "            the Worker sends to an http://localhost or 127.0.0.1 URL only with LOCAL_DEV=true (only .dev.vars.example sets it)",
      `warning     WEBHOOK_URL in the settings is ${vars.WEBHOOK_URL}, not this listener`,
      "answers     204 verified, 400 not verified (with the reason)",
    ]);
  });

  it("sync --orgs 3 --users 10 pushes the company; the change log holds its 13 creates, then updates, moves and deletes", async () => {
    const sync = await runNode(
      ["scripts/simulate.mjs", "sync", "--orgs", "3", "--users", "10", "--url", `${dev!.url}/callback`, "--dev-vars", ".dev.vars.example"],
      120_000,
    );
    expect(sync.code, `${sync.stdout}\n${sync.stderr}`).toBe(0);
    expect(await processGroupGone(sync.pid)).toBe(true);
    expect(sync.stdout).toContain("failures    none");
    const sent = /^events {6}(\d+) sent, \1 ok, 0 failed, 0 skipped/m.exec(sync.stdout);
    expect(sent, sync.stdout).not.toBeNull();

    changes = await allChanges();
    const created = changes.filter((c) => c.type.endsWith(".created"));
    expect(created.map((c) => c.type.split(".")[0]).sort()).toEqual([...Array(3).fill("organization"), ...Array(10).fill("user")]);
    // Every event of the sync changed the directory: one change each, so one webhook each.
    expect(changes).toHaveLength(Number(sent![1]));
    // The sync's later phases are there too (seed 1 at this size renames, moves and deletes).
    expect(new Set(changes.map((c) => c.type))).toEqual(
      new Set(["organization.created", "user.created", "organization.updated", "user.updated", "organization.moved", "user.deleted", "organization.deleted"]),
    );
  });

  it("every change reaches the listener and verifies there", { timeout: 240_000 }, async () => {
    expect(changes.length).toBeGreaterThan(13);
    const overall = Date.now() + 180_000;
    let missing = changes;
    let lastProgress = Date.now();
    while (missing.length > 0) {
      const lines = listener.lines();
      const still = missing.filter((c) => !lines.some((line) => verifiedLine(c.id).test(line)));
      if (still.length < missing.length) lastProgress = Date.now();
      missing = still;
      if (missing.length === 0) break;
      // Generous overall, but a sender that has stopped sending is reported after 30 s without a new message.
      if (Date.now() > overall || Date.now() - lastProgress > 30_000) {
        throw new Error(`${missing.length} of ${changes.length} changes never reached the listener verified (first: #${missing[0]!.id} ${missing[0]!.type}):\n${listener.output()}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    // Each line names the change's type and entity, as the change log has them.
    for (const c of changes) {
      const line = listener.lines().find((l) => verifiedLine(c.id).test(l))!;
      expect(line).toContain(`  ${c.type.padEnd(21)}  ${c.entity_id.padEnd(16)}  `);
    }
    // Nothing failed to verify but this file's own tampered message.
    expect(listener.lines().filter((l) => / {2}not verified: /.test(l)).map((l) => l.split("  ")[2])).toEqual(["#smoke-2"]);
  });

  it("stops cleanly: the listener prints its tally and exits (1: the tampered message), wrangler dev stops, both process groups are gone", async () => {
    const status = await listener.stop();
    expect(status).toEqual({ code: 1, signal: null });
    expect(listener.lines().at(-1)).toMatch(/^stopped {5}\d+ verified, 1 not verified$/);
    expect(await processGroupGone(listener.pid)).toBe(true);
    const devPid = dev!.pid;
    await dev!.stop();
    dev = undefined;
    expect(await processGroupGone(devPid)).toBe(true);
  });
});
