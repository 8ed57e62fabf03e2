// check-url, replay and tamper against the Worker in every profile, and the CLI layer itself (argv,
// settings files, output) with a fake host whose fetch is the Worker.
import { describe, expect, it } from "vitest";
import { main, type CliHost } from "../../sim/cli/main";
import { checkUrl, replay, tamper } from "../../sim/core/modes";
import { Sender } from "../../sim/core/wire";
import { readDirectory } from "../../src/directory/snapshot";
import { CALLBACK_URL, testEnv } from "../helpers/worker";
import { PROFILES, simProfile, simSender, workerFetch } from "./harness";

describe.each(PROFILES)("$label", ({ name, layout }) => {
  it("check-url: the reply opens and echoes, in the request's layout", async () => {
    const result = await checkUrl(simSender(name, layout));
    expect(result.lines.at(-1)).toBe("CHECK_URL OK");
    expect(result.ok).toBe(true);
    expect(result.reply.plaintext).toBe(result.sent);
    if (layout) expect(result.reply.layout).toBe(layout);
  });

  it("replay: copies of a signed request (same bytes, re-spelled, relabelled) never apply twice", async () => {
    const result = await replay(simSender(name, layout));
    expect(result.checks.map((c) => [c.name, c.pass])).toEqual([
      ["first delivery", true],
      ["same request again", true],
      ["same request, envelope re-spelled", true],
      ...(name.startsWith("sha1") ? [["same request, relabelled CREATE_USER", true]] : []),
      ["clean-up: delete the probe", true],
    ]);
    expect(result.ok).toBe(true);
    // Applied once: one audit row for the event (copies answered from the store write nothing; a relabelled
    // copy leaves one row of its own, its refusal), and the probe kept its name.
    const rows = await testEnv.DB.prepare("SELECT code FROM deliveries WHERE nonce = ? ORDER BY id").bind(result.nonce).all<{ code: string }>();
    expect(rows.results).toEqual(name.startsWith("sha1") ? [{ code: "200" }, { code: "400" }] : [{ code: "200" }]);
    const all = await readDirectory(testEnv.DB, { includeDeleted: true });
    const probe = all.organizations.find((o) => o.code === result.probeCode);
    expect(probe).toMatchObject({ id: result.probeId, name: "重放探针 Replay probe" });
    expect(probe?.deletedAt).not.toBeNull();
  });

  it("tamper: every alteration refused (or, without a signature, reported undetectable)", async () => {
    const result = await tamper(simSender(name, layout));
    const codes = Object.fromEntries(result.checks.map((c) => [c.name, c.got.slice(0, 3)]));
    const signed = name !== "none";
    expect(codes).toEqual({
      "control (untampered)": "200",
      "data: one character flipped": signed ? "401" : "200",
      [signed ? "signature: one character flipped" : "signature: a forged one added"]: signed ? "401" : "200",
      "timestamp: one digit flipped": "401",
      "timestamp: re-signed, 360 s old": "401",
      "bearer token: one character flipped": "401",
    });
    expect(result.checks.filter((c) => !c.pass)).toEqual([]);
    if (!signed) expect(result.checks.find((c) => c.name.startsWith("data"))?.note).toMatch(/undetectable/);
  });
});

describe("tamper with the timestamp window off", () => {
  it("a stale but signed request is accepted when TIMESTAMP_TOLERANCE_SECONDS=0, and tamper says so", async () => {
    const lenient = new Sender(
      { ...simProfile("sha1+gcm", "iv16"), toleranceSeconds: 0 },
      { url: CALLBACK_URL, fetch: workerFetch("sha1+gcm", "iv16", { TIMESTAMP_TOLERANCE_SECONDS: "0" }) },
    );
    const result = await tamper(lenient);
    expect(result.checks.find((c) => c.name.startsWith("timestamp: re-signed"))).toMatchObject({ pass: true, expected: "200 (window off)" });
    expect(result.checks.find((c) => c.name === "timestamp: one digit flipped")).toMatchObject({ pass: true, expected: "401 (signature)" });
    expect(result.ok).toBe(true);
  });
});

describe("the CLI layer (fake host, the Worker as fetch)", () => {
  const devVars = [
    `ONEACCESS_BEARER_TOKEN="${testEnv.ONEACCESS_BEARER_TOKEN}"`,
    `ONEACCESS_SIGNING_KEY="${testEnv.VECTORS.keys.signingKey}"`,
    `ONEACCESS_ENCRYPTION_KEY='${testEnv.VECTORS.keys.gcmKey}'`,
    `DIRECTORY_API_TOKEN="${testEnv.DIRECTORY_API_TOKEN}"`,
    "# a comment",
    "export ONEACCESS_BEARER_TOKEN_PREVIOUS=",
  ].join("\n");
  const wranglerToml = `name = "x"\n[vars]\nONEACCESS_SIGNATURE = "sha1"\nONEACCESS_ENCRYPTION = "aes-gcm" # default\nONEACCESS_GCM_LAYOUT = "auto"\nTIMESTAMP_TOLERANCE_SECONDS = "300"\n[[d1_databases]]\nbinding = "DB"\n`;

  function host(argv: string[], files: Record<string, string> = {}) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const project: Record<string, string> = { "wrangler.toml": wranglerToml, ".dev.vars": devVars, ...files };
    const h: CliHost = {
      argv,
      readProjectFile: (n) => project[n] ?? null,
      readUserFile: (p) => project[p] ?? null,
      stdout: (t) => void stdout.push(t),
      stderr: (t) => void stderr.push(t),
      stderrIsTTY: false,
      columns: 80,
      fetch: workerFetch("sha1+gcm", "iv12"),
      now: () => performance.now(),
    };
    return { h, out: () => stdout.join(""), err: () => stderr.join("") };
  }

  it("check-url with the settings files, and --layout", async () => {
    const { h, out } = host(["check-url", "--layout", "iv12"]);
    expect(await main(h)).toBe(0);
    expect(out()).toContain("profile     sha1 signature, aes-gcm (iv12), timestamp window ±300 s");
    expect(out()).toContain("reply sealed in the request's layout (iv12)");
  });

  it("a flag that makes the receiver refuse: --signature hmac-sha256 against a sha1 receiver", async () => {
    const { h, out } = host(["check-url", "--signature=hmac-sha256", "--retries", "0"]);
    expect(await main(h)).toBe(1);
    expect(out()).toContain("code 401");
    expect(out()).toContain("CHECK_URL FAILED");
    // The receiver's operator view of /healthz (the settings files hold DIRECTORY_API_TOKEN), fetched through
    // the same transport, is printed next to it.
    expect(out()).toContain("receiver    hint: signature verifies as hmac-sha256: set ONEACCESS_SIGNATURE=hmac-sha256");
    expect(out()).toContain("receiver    last refusal: 401 signature-mismatch");
  });

  it("send: one event from a file, the opened reply printed", async () => {
    const { h, out } = host(["send", "create_organization", "@org.json"], { "org.json": '{"code":"cli-send-org","name":"研发部 R&D"}\n' });
    expect(await main(h)).toBe(0);
    expect(out()).toMatch(/opened {6}\{"id":"[^"]+"\} {2}\[iv16-b64-prefix\]/);
    const dir = await readDirectory(testEnv.DB);
    expect(dir.organizations.find((o) => o.code === "cli-send-org")?.name).toBe("研发部 R&D");
  });

  it("sync: summary with phases, failures, throughput and latency percentiles", async () => {
    const { h, out, err } = host(["sync", "--orgs", "5", "--users", "12", "--seed", "cli", "--concurrency", "3"]);
    expect(await main(h)).toBe(0);
    const text = out();
    expect(text).toContain("check-url   OK");
    expect(text).toMatch(/^ {2}create +\d+ +\d+ +0 +0 /m);
    expect(text).toContain("failures    none");
    expect(text).toMatch(/throughput {2}[0-9.]+ events\/s/);
    expect(text).toMatch(/latency {5}p50 /);
    expect(err()).toContain("create: from event 1 of");
  });

  it("usage errors exit 2 with a message (unknown options, missing values); settings problems name the setting; --help", async () => {
    const bad = host(["sync", "--orgs", "0"]);
    expect(await main(bad.h)).toBe(2);
    expect(bad.err()).toContain("--orgs must be an integer of at least 1");
    const cbc = host(["check-url", "--encryption", "aes-cbc"]);
    expect(await main(cbc.h)).toBe(2);
    expect(cbc.err()).toContain("ONEACCESS_ENCRYPTION_KEY must be 43 Base64 characters");
    const unknown = host(["frobnicate"]);
    expect(await main(unknown.h)).toBe(2);
    expect(unknown.err()).toContain("unknown command frobnicate");
    for (const [argv, message] of [
      [["check-url", "--colour"], "simulate: unknown option --colour\n(npm run simulate -- help)"],
      [["check-url", "--url"], "--url needs a value"],
      [["check-url", "--no-check=yes"], "--no-check takes no value"],
      [["sync", "--users=-1"], "--users must be an integer of at least 0"],
    ] as const) {
      const h = host([...argv]);
      expect(await main(h.h), argv.join(" ")).toBe(2);
      expect(h.err()).toContain(message);
    }
    for (const argv of [["--help"], ["-h"], ["help"], ["sync", "--help"]]) {
      const h = host(argv);
      expect(await main(h.h)).toBe(0);
      expect(h.out()).toContain("Usage: npm run simulate -- <command> [options]");
    }
    const none = host([]);
    expect(await main(none.h)).toBe(2);
    expect(none.out()).toContain("Usage: npm run simulate");
  });
});
