// `simulate listen` inside workerd: messages signed by the official Standard Webhooks library (as the
// Worker's sender signs them) go through the listener's handler, and the lines it prints and the answers it
// gives are checked literally. Then the CLI layer with a fake host that serves by calling the handler.
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { main, type CliHost } from "../../sim/cli/main";
import { CHANGE_TYPES as LISTENED_TYPES, changeMessageProblem, createListener, webhookSecretProblem, type ListenerOptions } from "../../sim/core/listen";
import { CHANGE_TYPES as RECORDED_TYPES } from "../../src/directory/changes";

// Base64 keys of 24 bytes, as `whsec_` secrets: the sender's current one, its previous one, and another.
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PREVIOUS = "whsec_C2FtcGxlLXByZXZpb3VzLXNlY3JldC0x";
const OTHER = "whsec_b3RoZXItc2VjcmV0LW5vdC10aGUtc2VuZGVy";
const URL_ = "http://127.0.0.1:8789/webhooks";
// Lines carry the local time of day; workerd's local time is UTC.
const AT = new Date("2026-05-04T08:12:31.000Z");

const alice = {
  id: "usr_Ht7pQm2xKe9a",
  username: "alice",
  name: "Alice Z.",
  organization_id: "org_3tcfrZYhkKOf",
  organization_missing: false,
  disabled: true,
  first_name: null,
  middle_name: null,
  last_name: null,
  mobile: null,
  email: "alice@example.com",
  extensions: { employeeNo: "E1001" },
  last_event_at: "2026-05-04T08:12:30.000Z",
  created_at: "2026-05-04T08:10:02.114Z",
  updated_at: "2026-05-04T08:12:30.482Z",
  deleted_at: null,
};
const rd = { id: "org_3tcfrZYhkKOf", code: "rd", name: "研发部 R&D", parent_id: "org_1dD4khqphcDl", parent_missing: false, extensions: {} };

function message(id: string, type: string, entityId: string, version: number, changed: string[], entity: object | null) {
  const data = { id, type, entity_type: type.split(".")[0], entity_id: entityId, version, changed, occurred_at: "2026-05-04T08:12:30.000Z", recorded_at: "2026-05-04T08:12:30.482Z", entity };
  return JSON.stringify({ type, timestamp: "2026-05-04T08:12:30.490Z", data });
}
const DISABLED_ALICE = message("57", "user.disabled", alice.id, 3, ["disabled"], alice);

/** A POST as the Worker sends it: signed now (or at `at`) by the library, with one or more secrets. */
function delivery(body: string, options: { id?: string; secrets?: string[]; at?: Date; url?: string; tamper?: (body: string) => string } = {}) {
  const id = options.id ?? (JSON.parse(body) as { data: { id: string } }).data.id;
  const at = options.at ?? new Date();
  const signature = (options.secrets ?? [SECRET]).map((s) => new Webhook(s).sign(id, at, body)).join(" ");
  return new Request(options.url ?? URL_, {
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": signature },
    body: options.tamper ? options.tamper(body) : body,
  });
}

function listener(options: Partial<ListenerOptions> = {}) {
  const lines: string[] = [];
  const l = createListener({ secret: SECRET, clock: () => AT, print: (line) => void lines.push(line), ...options });
  return { ...l, lines };
}

describe("the listener's answers and lines", () => {
  it("knows exactly the change types the Worker records (its own copy, from the documentation)", () => {
    expect([...LISTENED_TYPES].sort()).toEqual([...RECORDED_TYPES].sort());
  });

  it("a verified user change: 204 and one line with time, type, entity id, version, changed, username and state", async () => {
    const l = listener();
    const res = await l.handle(delivery(DISABLED_ALICE));
    expect(res.status).toBe(204);
    expect(l.lines).toEqual(["08:12:31  204  #57     user.disabled          usr_Ht7pQm2xKe9a  v3    [disabled]  alice (disabled)"]);
    expect(l.tally()).toEqual({ verified: 1, notVerified: 0, failedOnPurpose: 0, otherRequests: 0 });
  });

  it("organizations show code and name; a delete has no entity; every change type is taken", async () => {
    const l = listener();
    const bodies = [
      message("58", "organization.moved", rd.id, 2, ["parent_id"], rd),
      message("59", "user.deleted", alice.id, 4, ["deleted_at"], null),
      message("60", "user.enabled", alice.id, 5, ["disabled", "name"], { ...alice, disabled: false }),
    ];
    for (const body of bodies) expect((await l.handle(delivery(body))).status).toBe(204);
    expect(l.lines).toEqual([
      '08:12:31  204  #58     organization.moved     org_3tcfrZYhkKOf  v2    [parent_id]  rd "研发部 R&D"',
      "08:12:31  204  #59     user.deleted           usr_Ht7pQm2xKe9a  v4    [deleted_at]  (no entity: deleted)",
      "08:12:31  204  #60     user.enabled           usr_Ht7pQm2xKe9a  v5    [disabled, name]  alice (enabled)",
    ]);
    for (const type of ["user.created", "user.updated", "user.restored", "organization.created", "organization.updated", "organization.deleted", "organization.restored"]) {
      const entity = type.startsWith("user.") ? alice : rd;
      expect((await l.handle(delivery(message("61", type, entity.id, 1, ["name"], entity)))).status, type).toBe(204);
    }
    expect(l.tally().verified).toBe(10);
  });

  it("a tampered body: 400 with the reason, and what it claims to be", async () => {
    const l = listener();
    const res = await l.handle(delivery(DISABLED_ALICE, { tamper: (b) => b.replace('"disabled":true', '"disabled":false') }));
    expect(res.status).toBe(400);
    expect(await res.text()).toBe("no signature matches this secret (the body or a header was changed, or the sender signs with another WEBHOOK_SECRET)\n");
    expect(l.lines).toEqual([
      "08:12:31  400  #57     not verified: no signature matches this secret (the body or a header was changed, or the sender signs with another WEBHOOK_SECRET)  (claims user.disabled usr_Ht7pQm2xKe9a)",
    ]);
    expect(l.tally()).toEqual({ verified: 0, notVerified: 1, failedOnPurpose: 0, otherRequests: 0 });
  });

  it("a signature of another secret, and another webhook-id than the one signed: 400", async () => {
    const l = listener();
    expect((await l.handle(delivery(DISABLED_ALICE, { secrets: [OTHER] }))).status).toBe(400);
    const relabelled = delivery(DISABLED_ALICE);
    relabelled.headers.set("webhook-id", "58");
    expect((await l.handle(relabelled)).status).toBe(400);
    const why = "not verified: no signature matches this secret (the body or a header was changed, or the sender signs with another WEBHOOK_SECRET)  (claims user.disabled usr_Ht7pQm2xKe9a)";
    expect(l.lines).toEqual([`08:12:31  400  #57     ${why}`, `08:12:31  400  #58     ${why}`]);
  });

  it("a timestamp 10 minutes old or ahead (validly signed then): 400, past the library's 5 minutes", async () => {
    const l = listener();
    const old = await l.handle(delivery(DISABLED_ALICE, { at: new Date(Date.now() - 600_000) }));
    expect(old.status).toBe(400);
    expect(await old.text()).toMatch(/^webhook-timestamp is 60[01] s old \(over 300 s: a replay, or the clocks differ\)\n$/);
    const ahead = await l.handle(delivery(DISABLED_ALICE, { at: new Date(Date.now() + 600_000) }));
    expect(ahead.status).toBe(400);
    expect(await ahead.text()).toMatch(/^webhook-timestamp is (599|600) s ahead/);
    // Four minutes old is inside the window.
    expect((await l.handle(delivery(DISABLED_ALICE, { at: new Date(Date.now() - 240_000) }))).status).toBe(204);
  });

  it("a rotation: two signatures, the old secret's and the new one's; a listener on either secret verifies it, another does not", async () => {
    const rotating = { secrets: [PREVIOUS, SECRET] };
    const onNew = listener();
    expect((await onNew.handle(delivery(DISABLED_ALICE, rotating))).status).toBe(204);
    expect(onNew.lines).toEqual(["08:12:31  204  #57     user.disabled          usr_Ht7pQm2xKe9a  v3    [disabled]  alice (disabled)  2 signatures"]);
    const onOld = listener({ secret: PREVIOUS });
    expect((await onOld.handle(delivery(DISABLED_ALICE, rotating))).status).toBe(204);
    const elsewhere = listener({ secret: OTHER });
    expect((await elsewhere.handle(delivery(DISABLED_ALICE, rotating))).status).toBe(400);
    // The header is exactly what the library makes: "v1,<base64> v1,<base64>".
    expect(delivery(DISABLED_ALICE, rotating).headers.get("webhook-signature")).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
  });

  it("missing headers, a timestamp that is not Unix seconds, a signature of another scheme: 400 saying which", async () => {
    const l = listener();
    const bare = new Request(URL_, { method: "POST", body: DISABLED_ALICE, headers: { "webhook-id": "57" } });
    expect(await (await l.handle(bare)).text()).toBe("missing header webhook-timestamp, webhook-signature\n");
    const iso = delivery(DISABLED_ALICE);
    iso.headers.set("webhook-timestamp", new Date().toISOString());
    expect(await (await l.handle(iso)).text()).toMatch(/^webhook-timestamp "\d{4}-.*" is not Unix seconds\n$/);
    const v1a = delivery(DISABLED_ALICE);
    v1a.headers.set("webhook-signature", `v1a,${v1a.headers.get("webhook-signature")!.slice(3)}`);
    expect(await (await l.handle(v1a)).text()).toBe("webhook-signature has no v1 signature\n");
    expect(l.tally().notVerified).toBe(3);
  });

  it("verified but not the documented message: 400 naming the field (a sender bug, not an attack)", async () => {
    const l = listener();
    const cases: Array<[string, string]> = [
      [JSON.stringify({ type: "user.disabled", timestamp: "2026-05-04T08:12:30Z", data: { ...JSON.parse(DISABLED_ALICE).data, id: "56" } }), 'data.id "56" is not the webhook-id "57"'],
      [DISABLED_ALICE.replace(/"user\.disabled"/, '"user.suspended"'), 'type "user.suspended" is not a change type'],
      [DISABLED_ALICE.replace('"version":3', '"version":"3"'), "data.version is not a whole number"],
      [DISABLED_ALICE.replace('"entity_type":"user"', '"entity_type":"organization"'), 'data.entity_type "organization" is not "user"'],
      ["not json", ""],
    ];
    for (const [body, problem] of cases) {
      const res = await l.handle(delivery(body, { id: "57" }));
      expect(res.status).toBe(400);
      expect(await res.text()).toBe(problem === "" ? "verified, but the body is not JSON\n" : `verified, but not a change message: ${problem}\n`);
    }
  });

  it("--fail 2: the first two deliveries answered 500, the retry of the same id then 204, marked as a second delivery", async () => {
    const l = listener({ failFirst: 2 });
    expect((await l.handle(delivery(DISABLED_ALICE))).status).toBe(500);
    expect((await l.handle(delivery(DISABLED_ALICE))).status).toBe(500);
    expect((await l.handle(delivery(DISABLED_ALICE))).status).toBe(204);
    expect(l.lines).toEqual([
      "08:12:31  500  #57     user.disabled          usr_Ht7pQm2xKe9a  v3    [disabled]  alice (disabled)  answered 500 on purpose (--fail 1 of 2)",
      "08:12:31  500  #57     user.disabled          usr_Ht7pQm2xKe9a  v3    [disabled]  alice (disabled)  delivery 2  answered 500 on purpose (--fail 2 of 2)",
      "08:12:31  204  #57     user.disabled          usr_Ht7pQm2xKe9a  v3    [disabled]  alice (disabled)  delivery 3",
    ]);
    expect(l.tally()).toEqual({ verified: 3, notVerified: 0, failedOnPurpose: 2, otherRequests: 0 });
  });

  it("--fail-rate: a request fails when the draw is under the rate", async () => {
    const draws = [0.1, 0.9, 0.29, 0.3];
    const l = listener({ failRate: 0.3, random: () => draws.shift()! });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await l.handle(delivery(DISABLED_ALICE))).status);
    expect(statuses).toEqual([500, 204, 500, 204]);
    expect(l.lines[0]).toMatch(/answered 500 on purpose \(--fail-rate 0\.3\)$/);
  });

  it("another path: 404; another method: 405; both printed, neither counted as a message", async () => {
    const l = listener();
    expect((await l.handle(delivery(DISABLED_ALICE, { url: "http://127.0.0.1:8789/webhook" }))).status).toBe(404);
    const get = await l.handle(new Request(URL_));
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect(l.lines).toEqual(["08:12:31  404  POST /webhook: not the webhook path (/webhooks)", "08:12:31  405  GET /webhooks: webhooks are POSTed"]);
    expect(l.tally()).toEqual({ verified: 0, notVerified: 0, failedOnPurpose: 0, otherRequests: 2 });
  });

  it("secrets: whsec_ and Base64 of a key", () => {
    expect(webhookSecretProblem(SECRET)).toBeNull();
    for (const bad of ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_abc", "devSigningKeyPub"]) {
      expect(webhookSecretProblem(bad), bad).toBe("must be whsec_ followed by the Base64 key (the Worker's WEBHOOK_SECRET)");
    }
    expect(changeMessageProblem(JSON.parse(DISABLED_ALICE), "57")).toBeNull();
    expect(changeMessageProblem([], "57")).toBe("the body is not a JSON object");
  });
});

describe("the listen command (fake host: serve calls the handler)", () => {
  const wranglerToml = `name = "x"\n[vars]\nONEACCESS_SIGNATURE = "sha1"\n`;
  const devVars = `LOCAL_DEV="true"\nWEBHOOK_SECRET="${SECRET}"\n`;

  function host(argv: string[], files: Record<string, string> = { "wrangler.toml": wranglerToml, ".dev.vars": devVars }) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    let stop!: () => void;
    let served: { port: number; handler: (request: Request) => Promise<Response> } | undefined;
    let listening!: () => void;
    const started = new Promise<void>((r) => (listening = r));
    const h: CliHost = {
      argv,
      readProjectFile: (n) => files[n] ?? null,
      readUserFile: (p) => files[p] ?? null,
      stdout: (t) => void stdout.push(t),
      stderr: (t) => void stderr.push(t),
      stderrIsTTY: false,
      columns: 80,
      fetch: () => Promise.reject(new Error("listen does not fetch")),
      now: () => performance.now(),
      serve: async (port, handler) => {
        served = { port, handler };
        listening();
        return { port: port === 0 ? 40123 : port, closed: new Promise<void>((r) => (stop = r)) };
      },
    };
    return { h, started, served: () => served as NonNullable<typeof served>, stop: () => stop(), out: () => stdout.join(""), err: () => stderr.join("") };
  }

  it("takes the secret from .dev.vars, serves on 8789, prints the URL and the reminder; the summary at stop", async () => {
    const t = host(["listen"]);
    const exit = main(t.h);
    await t.started;
    expect(t.served().port).toBe(8789);
    const res = await t.served().handler(delivery(DISABLED_ALICE));
    expect(res.status).toBe(204);
    t.stop();
    expect(await exit).toBe(0);
    const lines = t.out().split("\n");
    expect(lines.slice(0, 6)).toEqual([
      "listening   http://127.0.0.1:8789/webhooks",
      "secret      WEBHOOK_SECRET of .dev.vars",
      "receiver    set WEBHOOK_URL=http://127.0.0.1:8789/webhooks (in .dev.vars, or npm run dev -- --var WEBHOOK_URL:http://127.0.0.1:8789/webhooks)",
      "            the Worker sends to an http://localhost or 127.0.0.1 URL only with LOCAL_DEV=true (only .dev.vars.example sets it)",
      "answers     204 verified, 400 not verified (with the reason)",
      "",
    ]);
    expect(lines[6]).toMatch(/^\d\d:\d\d:\d\d {2}204 {2}#57 {5}user\.disabled {10}usr_Ht7pQm2xKe9a {2}v3 {4}\[disabled\] {2}alice \(disabled\)$/);
    expect(lines.slice(7)).toEqual(["", "stopped     1 verified, 0 not verified", ""]);
    expect(t.err()).toBe("");
  });

  it("--secret wins over the files; --port 0, --path, --fail and --fail-rate; a message that does not verify makes the exit 1", async () => {
    const t = host(["listen", "--secret", OTHER, "--port", "0", "--path", "/hooks", "--fail", "1", "--fail-rate", "25%"]);
    const exit = main(t.h);
    await t.started;
    expect(t.served().port).toBe(0);
    const res = await t.served().handler(delivery(DISABLED_ALICE, { url: "http://127.0.0.1:40123/hooks" }));
    expect(res.status).toBe(500);
    t.stop();
    expect(await exit).toBe(1);
    expect(t.out()).toContain("listening   http://127.0.0.1:40123/hooks\nsecret      --secret\n");
    expect(t.out()).toContain("answers     204 verified, 400 not verified (with the reason); 500 on purpose to the first request, then 25% of the rest\n");
    expect(t.out()).toContain("not verified: no signature matches this secret");
    expect(t.out()).toContain("stopped     0 verified, 1 not verified, 1 answered 500 on purpose\n");
  });

  it("warns when LOCAL_DEV is not true, or WEBHOOK_URL names another endpoint; localhost and 127.0.0.1 are the same", async () => {
    const files = { "wrangler.toml": `[vars]\nWEBHOOK_SECRET = "${SECRET}"\nWEBHOOK_URL = "http://localhost:8789/webhooks"\n`, ".dev.vars": "" };
    const same = host(["listen"], files);
    const sameExit = main(same.h);
    await same.started;
    same.stop();
    expect(await sameExit).toBe(0);
    expect(same.out()).toContain("secret      WEBHOOK_SECRET of wrangler.toml [vars]\n");
    expect(same.out()).toContain('warning     LOCAL_DEV is not "true" in wrangler.toml [vars] or .dev.vars: a receiver with these settings will not send here\n');
    expect(same.out()).toContain("receiver    WEBHOOK_URL in the settings is this listener (http://localhost:8789/webhooks)\n");
    expect(same.out()).not.toContain("warning     WEBHOOK_URL");
    const other = host(["listen", "--port", "8790"], files);
    const otherExit = main(other.h);
    await other.started;
    other.stop();
    await otherExit;
    expect(other.out()).toContain("receiver    set WEBHOOK_URL=http://127.0.0.1:8790/webhooks (in .dev.vars, or npm run dev -- --var WEBHOOK_URL:http://127.0.0.1:8790/webhooks)\n");
    expect(other.out()).toContain("warning     WEBHOOK_URL in the settings is http://localhost:8789/webhooks, not this listener\n");
  });

  it("usage errors exit 2 before serving: no secret, a bad secret, bad numbers, a relative path, a host that cannot serve", async () => {
    const cases: Array<[string[], Record<string, string> | undefined, string]> = [
      [["listen"], { "wrangler.toml": wranglerToml, ".dev.vars": 'LOCAL_DEV="true"\n' }, "simulate: no webhook secret: WEBHOOK_SECRET is not in wrangler.toml [vars] or .dev.vars; set it there (the Worker signs with it) or pass --secret whsec_...\n"],
      [["listen", "--secret", "devSigningKeyPub"], undefined, "simulate: the webhook secret (--secret) must be whsec_ followed by the Base64 key (the Worker's WEBHOOK_SECRET)\n"],
      [["listen", "--port", "70000"], undefined, "simulate: --port must be an integer from 0 to 65535\n"],
      [["listen", "--fail", "-1"], undefined, "simulate: --fail needs a value: -1 looks like an option (write --fail=-1 if it is the value)\n"],
      [["listen", "--fail-rate", "1.5"], undefined, "simulate: --fail-rate must be a share from 0 to 1 (0.25) or a percentage (25%)\n"],
      [["listen", "--path", "webhooks"], undefined, "simulate: --path must start with /\n"],
    ];
    for (const [argv, files, message] of cases) {
      const t = host(argv, files);
      expect(await main(t.h), argv.join(" ")).toBe(2);
      expect(t.err()).toBe(`${message}(npm run simulate -- help)\n`);
      expect(t.served(), argv.join(" ")).toBeUndefined();
    }
    const noServe = host(["listen"]);
    delete noServe.h.serve;
    expect(await main(noServe.h)).toBe(2);
    expect(noServe.err()).toContain("listen needs a host that can serve HTTP");
  });

  it("the usage names listen and its options", async () => {
    const t = host(["help"]);
    expect(await main(t.h)).toBe(0);
    expect(t.out()).toContain("  listen [--port P] [--path /p] [--secret whsec_...] [--fail N] [--fail-rate R]\n");
    expect(t.out()).toContain("receive the receiver's webhooks (default http://127.0.0.1:8789/webhooks):");
  });
});
