// The bench's command line and the parts of it that read what others wrote: wrangler dev's output (the
// callback lines and their `cost`, the webhook dispatcher's run lines, the runtime's "had hung" lines), the
// webhook sink's counts and /proc. The load itself runs only under `npm run bench`.
import { describe, expect, it } from "vitest";
import { main, parseOptions, webhooksLine, webhookTotals, type BenchHost } from "../../bench/cli/main";
import { callbackLines, costMeans, costTable, type CostRow } from "../../bench/core/cost";
import { countLines, HUNG, startDevServer, type DevHost } from "../../bench/core/dev-server";
import { cpuModelFrom, ProcessGroup, readProcesses, type ProcFs } from "../../bench/core/processes";
import { costWebhookLines, dispatcherRuns, summarizeCostWebhooks, type SinkCounts } from "../../bench/core/webhooks";

describe("npm run bench: options", () => {
  it("defaults: the full run", () => {
    expect(parseOptions([])).toMatchObject({
      quick: false,
      connections: 16,
      requests: 8000,
      latencyRequests: 1000,
      b2bCheckUrl: 8000,
      b2bCreateUser: 3000,
      syncUsers: 40_000,
      syncOrgs: 40,
      syncConcurrency: 16,
      costEvents: 200,
      cpuIterations: 5000,
      stateOnDisk: false,
      callbackLog: "warn",
      webhooks: true,
      out: "bench-results.json",
    });
    expect(parseOptions(["--no-webhooks"]).webhooks).toBe(false);
  });

  it("--quick shortens every phase; options given as well win, in either order, as --flag value or --flag=value", () => {
    const quick = parseOptions(["--quick"]);
    expect(quick).toMatchObject({ quick: true, requests: 600, latencyRequests: 100, b2bCheckUrl: 800, b2bCreateUser: 300, syncUsers: 1000, costEvents: 20, cpuIterations: 500 });
    expect(parseOptions(["--requests", "50", "--quick"]).requests).toBe(50);
    expect(parseOptions(["--quick", "--requests=50", "--sync-users=0", "--state-on-disk", "--callback-log", "log"])).toMatchObject({
      requests: 50,
      syncUsers: 0,
      stateOnDisk: true,
      callbackLog: "log",
    });
  });

  it("refuses what it cannot use (exit 2, a message and where the usage is); --help", async () => {
    const run = async (argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const host = { argv, stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t) } as unknown as BenchHost;
      return { code: await main(host), out: out.join(""), err: err.join("") };
    };
    for (const [argv, message] of [
      [["--frobnicate"], "bench: unknown option --frobnicate\n(npm run bench -- --help)"],
      [["--requests"], "--requests needs a value"],
      [["--requests", "0"], "--requests must be an integer of at least 1"],
      [["--sync-users", "-1"], "--sync-users needs a value"],
      [["--sync-users=-1"], "--sync-users must be an integer of at least 0"],
      [["--callback-log", "debug"], "--callback-log must be log, warn or error"],
      [["--quick=yes"], "--quick takes no value"],
      [["--no-webhooks=1"], "--no-webhooks takes no value"],
      [["--webhooks"], "unknown option --webhooks"],
      [["stray"], "unexpected argument stray"],
    ] as const) {
      const r = await run([...argv]);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.err).toContain(message);
    }
    for (const argv of [["--help"], ["-h"], ["--quick", "--help"]]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.out).toContain("Usage: npm run bench -- [options]");
      expect(r.out).toContain("--cost-events N");
      expect(r.out).toContain("--no-webhooks");
    }
  });
});

// Callback lines as wrangler dev 4.86 prints them: a `log` line as is, a `warn` line decorated (ANSI codes
// even with NO_COLOR); the runtime's message about a cancelled request; a line still being written.
const OUTPUT = [
  "[wrangler:info] Ready on http://127.0.0.1:39105",
  '{"msg":"callback","eventType":"CREATE_USER","code":"200","outcome":"applied","reason":null,"entityId":"usr_ScDypMx613kS","shard":0,"durationMs":29,"cost":{"d1Queries":3,"d1RowsRead":2,"d1RowsWritten":4,"storeRowsWritten":1}}',
  "[wrangler:info] POST /callback 200 OK (34ms)",
  '\u001b[33m▲ \u001b[43;33m[\u001b[43;30mWARNING\u001b[43;33m]\u001b[0m \u001b[1m{"msg":"callback","eventType":null,"code":"401","outcome":"unauthorized","reason":"bearer-missing","durationMs":0,"entityId":null,"shard":null}\u001b[0m',
  '{"msg":"callback","eventType":"CREATE_USER","code":"200","outcome":"applied","durationMs":9,"cost":{"d1Queries":1,"d1RowsRead":0,"d1RowsWritten":2,"storeRowsWritten":"x"}}',
  "The Workers runtime canceled this request because it detected that your Worker's code had hung and would never generate a response.",
  '{"msg":"callback","eventType":"CHECK_URL"',
].join("\n");

describe("npm run bench: reading wrangler dev's output", () => {
  it("the callback lines, plain or decorated; a line still being written is left for the next read", () => {
    const { lines, end } = callbackLines(OUTPUT);
    expect(lines.map((l) => `${l.eventType} ${l.code}`)).toEqual(["CREATE_USER 200", "null 401", "CREATE_USER 200"]);
    expect(OUTPUT.slice(end)).toBe('{"msg":"callback","eventType":"CHECK_URL"');
  });

  it("cost means over the lines that report each field; n/a where none does (the receiver before it logs costs)", () => {
    const { lines } = callbackLines(OUTPUT);
    expect(costMeans(lines)).toEqual({ d1Queries: 2, d1RowsRead: 1, d1RowsWritten: 3, storeRowsWritten: 1 });
    expect(costMeans(lines.filter((l) => l.cost === undefined))).toEqual({ d1Queries: null, d1RowsRead: null, d1RowsWritten: null, storeRowsWritten: null });
    const row = { label: "CHECK_URL", requests: 20, non200: 0, lines: 20, linesWithCost: 0, d1Queries: null, d1RowsRead: null, d1RowsWritten: null, storeRowsWritten: null, workerdCpuMsPerRequest: 0.5, cpuResolutionMs: 0.5 } as CostRow;
    const printed = costTable([row]).join("\n");
    expect(printed).toMatch(/CHECK_URL +n\/a +n\/a +n\/a +n\/a +0\.50 +0/);
    expect(printed).toContain("an upper bound locally");
  });

  it('counts the lines saying a request "had hung"', () => {
    expect(countLines(OUTPUT, HUNG)).toBe(1);
    expect(countLines(`${OUTPUT}\n${OUTPUT}`, HUNG)).toBe(2);
    expect(countLines("", HUNG)).toBe(0);
  });
});

// The dispatcher's run lines as wrangler dev prints them at --log-level log (console.log: as is), between the
// callback lines; a dead letter (console.warn: decorated); a run line still being written.
const DISPATCHER_OUTPUT = [
  '{"msg":"callback","eventType":"CREATE_USER","code":"200","outcome":"applied","durationMs":9}',
  '{"msg":"webhooks","taken":40,"sent":40,"delivered":40,"failed":0,"dead":0,"storeRowsWritten":1,"pokes":3}',
  "[wrangler:info] POST /callback 200 OK (12ms)",
  '{"msg":"webhooks","taken":3,"sent":5,"delivered":3,"failed":2,"dead":1,"storeRowsWritten":4}',
  '\u001b[33m▲ \u001b[43;33m[\u001b[43;30mWARNING\u001b[43;33m]\u001b[0m \u001b[1m{"msg":"webhook dead letter","id":"7","type":"user.created","attempts":15}\u001b[0m',
  '{"msg":"webhooks","taken":1,"sent":1,"delivered":"x","failed":0,"dead":0,"storeRowsWritten":1}',
  '{"msg":"webhooks","taken":2,"sent":2',
].join("\n");

describe("npm run bench: webhooks", () => {
  it("the dispatcher's run lines; its other lines counted as trouble; a line still being written is left for the next read", () => {
    const { runs, troubleLines, end } = dispatcherRuns(DISPATCHER_OUTPUT);
    expect(runs).toEqual([
      { taken: 40, sent: 40, delivered: 40, failed: 0, dead: 0, storeRowsWritten: 1, pokes: 3 },
      // A line without `pokes` (a receiver from before it counted them), or a field that is not a number: 0.
      { taken: 3, sent: 5, delivered: 3, failed: 2, dead: 1, storeRowsWritten: 4, pokes: 0 },
      { taken: 1, sent: 1, delivered: 0, failed: 0, dead: 0, storeRowsWritten: 1, pokes: 0 },
    ]);
    expect(troubleLines).toBe(1);
    expect(DISPATCHER_OUTPUT.slice(end)).toBe('{"msg":"webhooks","taken":2,"sent":2');
    expect(dispatcherRuns(OUTPUT)).toMatchObject({ runs: [], troubleLines: 0 });
  });

  it("the cost phase's summary: the dispatcher's rows per delivered change, and when the sink had every change", () => {
    const { runs, troubleLines } = dispatcherRuns(DISPATCHER_OUTPUT);
    const sink = { messages: 45, distinctIds: 43, notVerified: 0, msSinceNewestId: 12 };
    const all = summarizeCostWebhooks({ changesRecorded: 43, sink, secondsAfterLastChange: 1.25, waitLimitSeconds: 30, runs, troubleLines });
    expect(all).toEqual({
      changesRecorded: 43,
      sink: { messages: 45, distinctIds: 43, notVerified: 0 },
      allArrived: true,
      secondsAfterLastChange: 1.25,
      waitLimitSeconds: 30,
      dispatcher: {
        runs: 3,
        pokes: 3,
        taken: 44,
        sent: 46,
        delivered: 43,
        failed: 2,
        dead: 1,
        rowsWritten: 6,
        rowsWrittenPerDeliveredChange: 0.14,
        // The alarm each run sets counted as a row too; a request per run (its alarm) and per poke.
        rowsWrittenWithAlarmsPerDeliveredChange: 0.209,
        requestsPerDeliveredChange: 0.14,
        troubleLines: 1,
      },
    });
    const printed = costWebhookLines(all);
    expect(printed[0]).toBe(
      "  webhooks: 43 changes recorded (the callbacks that applied, warm-up round included); the sink had them all 1.25 s after the last change's callback: 43 distinct webhook-ids (45 messages)",
    );
    expect(printed[1]).toMatch(/^ {2}dispatcher: 3 runs took 44 changes, sent 46, delivered 43, 2 failed, 1 dead; 6 SQLite rows written, 0\.140 per delivered change /);
    expect(printed[2]).toBe(
      "  Durable Object per change: rows written, the event ledger's (store rows written, above) + the dispatcher's 0.140 (0.209 with the alarm each run sets); requests, 1 ledger call + the dispatcher's 0.140 (3 runs, 3 pokes)",
    );
    expect(printed[3]).toContain("1 lines of trouble");

    // Not all of them in time: no arrival time, whatever was measured; what did not verify is said.
    const some = summarizeCostWebhooks({ changesRecorded: 50, sink: { ...sink, notVerified: 2 }, secondsAfterLastChange: 3, waitLimitSeconds: 30, runs: runs.slice(0, 1), troubleLines: 0 });
    expect(some).toMatchObject({ allArrived: false, secondsAfterLastChange: null, dispatcher: { runs: 1, rowsWrittenPerDeliveredChange: 0.025 } });
    expect(costWebhookLines(some)[0]).toContain("NOT all reached the sink within 30 s of the last change's callback: 43 distinct webhook-ids (45 messages, 2 NOT verified)");
    expect(costWebhookLines(some)).toHaveLength(3);

    // No run line at all: no rows per change to give.
    const none = summarizeCostWebhooks({ changesRecorded: 0, sink: { messages: 0, distinctIds: 0, notVerified: 0, msSinceNewestId: null }, secondsAfterLastChange: 0, waitLimitSeconds: 30, runs: [], troubleLines: 0 });
    expect(none.dispatcher.rowsWrittenPerDeliveredChange).toBeNull();
    expect(costWebhookLines(none)[2]).toMatch(/dispatcher's n\/a \(n\/a with the alarm each run sets\); requests, 1 ledger call \+ the dispatcher's n\/a \(0 runs, 0 pokes\)$/);
    expect(costWebhookLines(null)).toEqual(["  webhooks: off (--no-webhooks: WEBHOOK_URL and WEBHOOK_SECRET empty)"]);
  });

  it("the run's totals: by phase (each wrangler dev posts to a path of its own), failed verifications, the sink's CPU", () => {
    const start: SinkCounts = { messages: 0, distinctIds: 0, notVerified: 0, otherRequests: 0, verifying: true, cpuMs: 150, byPath: {} };
    const end: SinkCounts = {
      messages: 12,
      distinctIds: 11,
      notVerified: 0,
      otherRequests: 0,
      verifying: true,
      cpuMs: 170.04,
      byPath: { "/webhooks/load": { messages: 9, distinctIds: 8, notVerified: 0, msSinceNewestId: 5 }, "/webhooks/cost": { messages: 3, distinctIds: 3, notVerified: 0, msSinceNewestId: 1 } },
    };
    const urls = { load: "http://127.0.0.1:5000/webhooks/load", cost: "http://127.0.0.1:5000/webhooks/cost" };
    const totals = webhookTotals(end, start, urls);
    expect(totals).toEqual({
      messages: 12,
      distinctIds: 11,
      notVerified: 0,
      otherRequests: 0,
      signaturesChecked: true,
      byPhase: { load: { messages: 9, distinctIds: 8, notVerified: 0 }, cost: { messages: 3, distinctIds: 3, notVerified: 0 } },
      sinkCpuMs: 20,
    });
    expect(webhooksLine(totals)).toBe(
      "the sink got 12 messages, 11 distinct webhook-ids (load 8, cost 3); 0 failed signature verification (should be 0); the sink's own CPU 20 ms",
    );
    // A phase that sent nothing (the cost phase skipped); requests that were not POSTs; no secret to check with.
    const odd = webhookTotals({ ...end, otherRequests: 2, verifying: false, byPath: {} }, start, urls);
    expect(odd.byPhase.cost).toEqual({ messages: 0, distinctIds: 0, notVerified: 0 });
    expect(webhooksLine(odd)).toContain("(load 0, cost 0); signatures not checked (no WEBHOOK_SECRET); 2 requests that were not POSTs;");
    expect(webhooksLine(null)).toBe("off (--no-webhooks)");
  });

  it("each wrangler dev gets WEBHOOK_URL with --var; webhooks off empties WEBHOOK_SECRET too (a secret without a URL is refused)", async () => {
    const started: string[][] = [];
    const host: DevHost = {
      tmpdir: "/tmp",
      isWritableDir: () => true,
      filesystemType: () => 0x01021994,
      makeTempDir: (prefix) => `/tmp/${prefix}x`,
      removeDir: () => {},
      startWranglerDev: async ({ args }) => {
        started.push(args);
        return { url: "http://127.0.0.1:8787", port: 8787, pid: 100, output: () => "", stop: async () => {} };
      },
      startWebhookSink: () => Promise.reject(new Error("not here")),
    };
    const none: ProcFs = { listDir: () => null, readFile: () => null };
    const clock = { now: () => 0, cpuNow: () => 0 };
    const on = await startDevServer(host, none, clock, { stateOnDisk: false, wranglerLogLevel: "log", callbackLog: "log", webhookUrl: "http://127.0.0.1:5000/webhooks/cost" }, () => {});
    const off = await startDevServer(host, none, clock, { stateOnDisk: false, wranglerLogLevel: "warn", callbackLog: "warn", webhookUrl: null }, () => {});
    expect(started[0]).toEqual(["--log-level", "log", "--var", "LOG_LEVEL:log", "--var", "WEBHOOK_URL:http://127.0.0.1:5000/webhooks/cost"]);
    expect(started[1]).toEqual(["--log-level", "warn", "--var", "LOG_LEVEL:warn", "--var", "WEBHOOK_URL:", "--var", "WEBHOOK_SECRET:"]);
    expect(on.setup.webhookUrl).toBe("http://127.0.0.1:5000/webhooks/cost");
    expect(off.setup.webhookUrl).toBeNull();
  });
});

describe("npm run bench: CPU time from /proc", () => {
  // wrangler (pid 100, leading group 100), its two workerd (the proxy on the dev port 8787, the Worker), an
  // esbuild, and an unrelated process (another group).
  const proc = (ticks: Record<number, number>): ProcFs => {
    const procs: Record<number, { comm: string; ppid: number; pgrp: number; argv: string[] }> = {
      100: { comm: "node", ppid: 1, pgrp: 100, argv: ["node", "wrangler-dist/cli.js", "dev"] },
      101: { comm: "workerd", ppid: 100, pgrp: 100, argv: ["workerd", "serve", "--socket-addr=entry=127.0.0.1:8787"] },
      102: { comm: "workerd", ppid: 100, pgrp: 100, argv: ["workerd", "serve", "--socket-addr=entry=127.0.0.1:0", "--inspector-addr=127.0.0.1:0"] },
      103: { comm: "esbuild", ppid: 100, pgrp: 100, argv: ["esbuild", "--service"] },
      200: { comm: "bash", ppid: 1, pgrp: 200, argv: ["bash"] },
    };
    return {
      listDir: (dir) => (dir === "/proc" ? [...Object.keys(procs), "self", "cpuinfo"] : null),
      readFile: (file) => {
        const m = /^\/proc\/(\d+)\/(stat|cmdline)$/.exec(file);
        const p = m ? procs[Number(m[1])] : undefined;
        if (!m || !p) return file === "/proc/cpuinfo" ? "processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\n" : null;
        const t = ticks[Number(m[1])] ?? 0;
        // utime and stime are fields 14 and 15; the command name may hold spaces and parentheses.
        return m[2] === "cmdline" ? `${p.argv.join("\0")}\0` : `${m[1]} (${p.comm}) S ${p.ppid} ${p.pgrp} 0 0 0 0 0 0 0 0 ${t} ${t} 0 0`;
      },
    };
  };

  it("tells wrangler dev's processes apart and charges each its CPU per request", () => {
    let ticks: Record<number, number> = { 100: 1, 101: 2, 102: 3, 103: 0, 200: 50 };
    const fs: ProcFs = { listDir: (d) => proc(ticks).listDir(d), readFile: (f) => proc(ticks).readFile(f) };
    expect(readProcesses(fs)?.map((p) => p.pid)).toEqual([100, 101, 102, 103, 200]);
    expect(cpuModelFrom(fs.readFile("/proc/cpuinfo"))).toBe("Test CPU @ 2.0GHz");
    let now = 0;
    const group = new ProcessGroup(fs, { pid: 100, port: 8787 }, { now: () => now, cpuNow: () => now / 2 });
    expect(group.discover().map((p) => `${p.pid} ${p.role}`)).toEqual(["100 wrangler", "101 workerdProxy", "102 workerdWorker", "103 esbuild"]);
    const a = group.snapshot();
    ticks = { 100: 1, 101: 12, 102: 53, 103: 0, 200: 500 };
    now = 1000;
    const use = group.between(a, group.snapshot(), 100);
    // (stime + utime) grew by 2 × 10 and 2 × 50 ticks of 10 ms.
    expect(use.ms).toEqual({ wrangler: 0, workerdProxy: 200, workerdWorker: 1000, esbuild: 0, bench: 500 });
    expect(use.msPerRequest).toMatchObject({ workerdProxy: 2, workerdWorker: 10, bench: 5 });
    expect(use.serverMs).toBe(1200);
    expect(use.coresBusy).toBe(1.7);
  });

  it("without /proc: no figures, no failure", () => {
    const none: ProcFs = { listDir: () => null, readFile: () => null };
    const group = new ProcessGroup(none, { pid: 100, port: 8787 }, { now: () => 0, cpuNow: () => 0 });
    expect(group.discover()).toEqual([]);
    const snap = group.snapshot();
    expect(group.between(snap, snap, 10).serverMsPerRequest).toBeNull();
  });
});
