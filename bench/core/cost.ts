// What each kind of event costs the Worker: the storage work its callback line reports, and the CPU of the
// Worker's workerd process. Runs against a wrangler dev of its own with the receiver at LOG_LEVEL=log (one
// structured line per callback) and wrangler at --log-level log (so the lines reach its output).
//
// The callback line's `cost` field is what the Worker will report per request:
//   "cost": {"d1Queries": N, "d1RowsRead": N, "d1RowsWritten": N, "storeRowsWritten": N}
// D1 statements run for the request, rows read and written as D1's `meta` reports them, and Durable Object
// SQLite rows written as the SQL cursor reports them. A line without it (the receiver before it logs
// costs) leaves those columns "n/a".
//
// With webhooks on, every change these callbacks record is also sent to the bench's sink by the webhook
// dispatcher, whose runs log `{"msg":"webhooks","taken":N,...,"storeRowsWritten":N}`: after the table, what
// the dispatcher wrote per delivered change, and how soon the sink had them all.
import { checkUrlMessage, createOrganizationMessage, createUserMessage, deleteMessage, openReply, organizationCode, renameOrganizationMessage, replyId, updateUserFieldsMessage, username } from "./events";
import { CPU_TICK_MS, round, type CpuUse } from "./processes";
import { fullSyncCost, syncCostRows, type EventCost, type SyncCost, type SyncCostInput } from "./plan-cost";
import { figure, table } from "./report";
import { callbackUrl, sleep, type Session } from "./session";
import { costWebhookLines, dispatcherRuns, summarizeCostWebhooks, type CostWebhooks } from "./webhooks";

const COST_FIELDS = ["d1Queries", "d1RowsRead", "d1RowsWritten", "storeRowsWritten"] as const;
export type CostField = (typeof COST_FIELDS)[number];

export interface CallbackLine {
  eventType: string | null;
  code: string;
  outcome: string;
  cost?: Partial<Record<CostField, unknown>>;
}

const MARK = '{"msg":"callback"';

/**
 * The callback lines in wrangler dev's output, and the offset just past the last complete line (a line
 * still being written is left for the next read). wrangler prints a `log` line as is, a `warn` or `error`
 * line inside its own decoration: the JSON is taken from `{"msg":"callback"` to the line's last `}`.
 */
export function callbackLines(text: string): { lines: CallbackLine[]; end: number } {
  const end = text.lastIndexOf("\n") + 1;
  const lines: CallbackLine[] = [];
  for (const line of text.slice(0, end).split("\n")) {
    const at = line.indexOf(MARK);
    if (at < 0) continue;
    try {
      lines.push(JSON.parse(line.slice(at, line.lastIndexOf("}") + 1)) as CallbackLine);
    } catch {
      // not one of the Worker's lines after all
    }
  }
  return { lines, end };
}

export type CostMeans = Record<CostField, number | null>;

/** The mean of each cost field over the lines that report it as a number; null where none does. */
export function costMeans(lines: readonly CallbackLine[]): CostMeans {
  const out = {} as CostMeans;
  for (const field of COST_FIELDS) {
    const values = lines.map((l) => l.cost?.[field]).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
    out[field] = values.length > 0 ? round(values.reduce((a, b) => a + b, 0) / values.length, 2) : null;
  }
  return out;
}

export interface CostRow extends CostMeans {
  label: string;
  requests: number;
  /** Replies whose HTTP status was not 200. */
  non200: number;
  /** Callback lines read for these requests, and how many of them carried `cost`. */
  lines: number;
  linesWithCost: number;
  /** The Worker's workerd process (the Worker, its local D1 and Durable Object together) over the requests. */
  workerdCpuMsPerRequest: number | null;
  /** What one clock tick of /proc's CPU time (10 ms) is per request here: the figure's resolution. */
  cpuResolutionMs: number;
  cpu: CpuUse;
  outcomes: Record<string, number>;
}

interface Step {
  label: string;
  /** The bodies to send, built just before; or, for a duplicate, bodies sent before. */
  bodies: () => Promise<string[]>;
  /** Reads what the replies say (the ids a create answered). */
  after?: (replies: string[]) => Promise<void>;
}

/** Events of each type in the unmeasured warm-up round. */
const WARM_UP = 20;

/** How long after the last change's callback the sink may take to have them all. */
export const WEBHOOK_WAIT_MS = 30_000;

export interface CostPhase {
  rows: CostRow[];
  /** Null when webhooks were off. */
  webhooks: CostWebhooks | null;
  /** What full syncs of 1 000, 20 000 and 40 000 users cost by these means; null when a row lacks its figures. */
  fullSync: SyncCost[] | null;
}

interface Round {
  rows: CostRow[];
  /** Callback lines with the outcome `applied`: the changes recorded. */
  applied: number;
  /** The host's clock at the reply to the last callback of the last step with a change; null: none. */
  lastChangeAt: number | null;
}

/**
 * `perType` of each, one at a time, in this order: CHECK_URL; CREATE_ORGANIZATION, UPDATE_ORGANIZATION
 * (a rename) and DELETE_ORGANIZATION of the same organizations (empty: no user is in them); CREATE_USER,
 * UPDATE_USER changing only `name`, UPDATE_USER changing `mobile`, DELETE_USER of the same users; and the
 * exact bytes of the CREATE_USER requests again (duplicates, answered from the replay store). After each
 * kind, until its callback lines have all reached wrangler's output: their cost fields and the CPU time of
 * the Worker's workerd process, per request. A shorter round of the same goes first, unmeasured: the
 * server is fresh, and the first requests of each kind would pay for compiling the code they run.
 */
export async function costPhase(s: Session, perType: number): Promise<CostPhase> {
  s.log(`bench: cost per event type, ${perType} of each, one at a time (receiver at LOG_LEVEL log), after a warm-up round of ${Math.min(WARM_UP, perType)} each`);
  const outputFrom = s.running.dev.output().length;
  const warm = await costRound(s, "costwarm", Math.min(WARM_UP, perType));
  const measured = await costRound(s, "cost", perType);
  for (const line of costTable(measured.rows)) s.log(line);
  const webhooks = await costWebhooks(s, warm.applied + measured.applied, measured.lastChangeAt ?? warm.lastChangeAt, outputFrom);
  for (const line of costWebhookLines(webhooks)) s.log(line);
  const input = syncCostInput(measured.rows, webhooks);
  const fullSync = input === null ? null : FULL_SYNC_USERS.map((users) => fullSyncCost(users, input));
  if (fullSync !== null) for (const line of fullSyncLines(fullSync, input!)) s.log(line);
  return { rows: measured.rows, webhooks, fullSync };
}

/** Full syncs the cost phase prices: a small company, the Free plan's sweet spot, OneAccess's largest edition. */
const FULL_SYNC_USERS = [1_000, 20_000, 40_000];
/** The ledger's alarm deletes each expired record: one row written (test/budgets.test.ts measures it). */
const LEDGER_PURGE_ROWS_PER_RECORD = 1;
/**
 * D1 rows the dispatcher reads per change: the log's two ends and its page of 40 changes a run, measured in
 * test/webhooks/delivery.test.ts (the log's reads are not in its run line).
 */
const DISPATCHER_D1_ROWS_READ_PER_CHANGE = 42 / 40;

/** The model's input from the measured rows; null when a row it needs has no cost figures. */
export function syncCostInput(rows: readonly CostRow[], webhooks: CostWebhooks | null): SyncCostInput | null {
  const full = ["CHECK_URL", "CREATE_ORGANIZATION", "CREATE_USER"].map((label) => rows.find((r) => r.label === label));
  const events: EventCost[] = [];
  for (const r of full) {
    if (!r || r.d1RowsRead === null || r.d1RowsWritten === null || r.storeRowsWritten === null) return null;
    events.push({ d1RowsRead: r.d1RowsRead, d1RowsWritten: r.d1RowsWritten, storeRowsWritten: r.storeRowsWritten });
  }
  const [checkUrl, createOrganization, createUser] = events as [EventCost, EventCost, EventCost];
  const d = webhooks?.dispatcher;
  return {
    checkUrl,
    createOrganization,
    createUser,
    ledgerPurgeRowsPerRecord: LEDGER_PURGE_ROWS_PER_RECORD,
    webhooks:
      d && d.rowsWrittenWithAlarmsPerDeliveredChange !== null && d.requestsPerDeliveredChange !== null
        ? { rowsWrittenPerChange: d.rowsWrittenWithAlarmsPerDeliveredChange, requestsPerChange: d.requestsPerDeliveredChange, d1RowsReadPerChange: DISPATCHER_D1_ROWS_READ_PER_CHANGE }
        : null,
    cpuMsPerRequest: Math.max(...full.map((r) => r!.workerdCpuMsPerRequest ?? 0)),
  };
}

export function fullSyncLines(costs: readonly SyncCost[], input: SyncCostInput): string[] {
  const { header, rows } = syncCostRows(costs);
  return [
    "  full sync (a CHECK_URL, one organization per 100 users, the users; all new), from the means above" +
      (input.webhooks ? ", webhooks on" : ", webhooks off") + ": count (share of the Free plan's day)",
    ...table(header, rows),
    `  (ledger purge ${LEDGER_PURGE_ROWS_PER_RECORD} row per record; the dispatcher's D1 rows read ${figure(DISPATCHER_D1_ROWS_READ_PER_CHANGE, 2)} per change, from its tests; ` +
      `Paid: list price of the usage, billed = beyond the $5 month's inclusions; CPU ${figure(input.cpuMsPerRequest)} ms per callback at most)`,
  ];
}

/**
 * Waits until the sink has a webhook-id for each change recorded (up to WEBHOOK_WAIT_MS after the last
 * change's callback), then until the dispatcher's lines account for what the sink got (a run's line comes
 * after its last response), and sums them up. Null when webhooks are off.
 */
async function costWebhooks(s: Session, changes: number, lastChangeAt: number | null, outputFrom: number): Promise<CostWebhooks | null> {
  if (s.webhooks === null) return null;
  const since = lastChangeAt ?? s.now();
  let sink = await s.webhooks.counts();
  while (sink.distinctIds < changes && s.now() < since + WEBHOOK_WAIT_MS) {
    await sleep(50);
    sink = await s.webhooks.counts();
  }
  const arrivedAt = sink.distinctIds >= changes && sink.msSinceNewestId !== null ? s.now() - sink.msSinceNewestId : null;
  const delivered = (text: string) => dispatcherRuns(text).runs.reduce((n, r) => n + r.delivered, 0);
  for (const deadline = s.now() + 5_000; delivered(s.running.dev.output().slice(outputFrom)) < sink.distinctIds && s.now() < deadline; ) await sleep(50);
  const read = dispatcherRuns(s.running.dev.output().slice(outputFrom));
  return summarizeCostWebhooks({
    changesRecorded: changes,
    sink,
    secondsAfterLastChange: arrivedAt === null ? null : round(Math.max(0, arrivedAt - since) / 1000, 2),
    waitLimitSeconds: WEBHOOK_WAIT_MS / 1000,
    runs: read.runs,
    troubleLines: read.troubleLines,
  });
}

async function costRound(s: Session, kind: string, perType: number): Promise<Round> {
  const orgIds: string[] = [];
  const userIds: string[] = [];
  let createUserBodies: string[] = [];
  const build = (eventType: string, message: (i: number) => string) => () => s.factory.buildMany(perType, (i) => [eventType, message(i)]);
  const ids = (into: string[]) => async (replies: string[]) => {
    for (const text of replies) {
      const id = replyId((await openReply(s.bench.profile, text)).plaintext);
      if (id) into.push(id);
    }
    if (into.length !== perType) throw new Error(`cost phase: ${into.length} of ${perType} creates answered with an id`);
  };
  const orgId = (i: number) => orgIds[i]!;
  const userId = (i: number) => userIds[i]!;
  const steps: Step[] = [
    { label: "CHECK_URL", bodies: build("CHECK_URL", () => checkUrlMessage()) },
    { label: "CREATE_ORGANIZATION", bodies: build("CREATE_ORGANIZATION", (i) => createOrganizationMessage(s.tag, i, kind)), after: ids(orgIds) },
    {
      label: "UPDATE_ORGANIZATION",
      bodies: build("UPDATE_ORGANIZATION", (i) => renameOrganizationMessage(orgId(i), organizationCode(s.tag, kind, i), `Bench Org ${i} renamed`)),
    },
    { label: "DELETE_ORGANIZATION (empty)", bodies: build("DELETE_ORGANIZATION", (i) => deleteMessage(orgId(i))) },
    {
      label: "CREATE_USER",
      bodies: async () => (createUserBodies = await build("CREATE_USER", (i) => createUserMessage(s.tag, kind, i))()),
      after: ids(userIds),
    },
    { label: "UPDATE_USER name only", bodies: build("UPDATE_USER", (i) => updateUserFieldsMessage(userId(i), username(s.tag, kind, i), { name: `Bench Renamed ${i}` })) },
    {
      label: "UPDATE_USER mobile",
      bodies: build("UPDATE_USER", (i) => updateUserFieldsMessage(userId(i), username(s.tag, kind, i), { mobile: `+86 139 ${String(i).padStart(5, "0")} 111` })),
    },
    { label: "DELETE_USER", bodies: build("DELETE_USER", (i) => deleteMessage(userId(i))) },
    { label: "exact duplicate (a CREATE_USER)", bodies: async () => createUserBodies },
  ];

  const url = callbackUrl(s);
  const rows: CostRow[] = [];
  let applied = 0;
  let lastChangeAt: number | null = null;
  let offset = s.running.dev.output().length;
  for (const step of steps) {
    const bodies = await step.bodies();
    const cpu0 = s.running.group.snapshot();
    const replies: string[] = [];
    let non200 = 0;
    let lastReplyAt = s.now();
    for (const body of bodies) {
      const res = await s.fetch(new Request(url, { method: "POST", headers: s.loader.callbackHeaders, body }));
      if (res.status !== 200) non200++;
      replies.push(await res.text());
      lastReplyAt = s.now();
    }
    // The lines reach wrangler's output a moment after the replies.
    let read = callbackLines(s.running.dev.output().slice(offset));
    for (const deadline = s.now() + 10_000; read.lines.length < bodies.length && s.now() < deadline; ) {
      await sleep(50);
      read = callbackLines(s.running.dev.output().slice(offset));
    }
    const cpu = s.running.group.between(cpu0, s.running.group.snapshot(), bodies.length);
    offset += read.end;
    const outcomes = new Map<string, number>();
    for (const l of read.lines) outcomes.set(`${l.code} ${l.outcome}`, (outcomes.get(`${l.code} ${l.outcome}`) ?? 0) + 1);
    const changes = read.lines.filter((l) => l.outcome === "applied").length;
    applied += changes;
    if (changes > 0) lastChangeAt = lastReplyAt;
    rows.push({
      label: step.label,
      requests: bodies.length,
      non200,
      lines: read.lines.length,
      linesWithCost: read.lines.filter((l) => typeof l.cost === "object" && l.cost !== null).length,
      ...costMeans(read.lines),
      workerdCpuMsPerRequest: cpu.msPerRequest.workerdWorker ?? null,
      cpuResolutionMs: round(CPU_TICK_MS / bodies.length, 3)!,
      cpu,
      outcomes: Object.fromEntries(outcomes),
    });
    await step.after?.(replies);
  }
  return { rows, applied, lastChangeAt };
}

export function costTable(rows: readonly CostRow[]): string[] {
  const out = table(
    ["event", "D1 queries", "D1 rows read", "D1 rows written", "store rows written", "workerd CPU ms/req*", "not 200"],
    rows.map((r) => [r.label, figure(r.d1Queries), figure(r.d1RowsRead), figure(r.d1RowsWritten), figure(r.storeRowsWritten), figure(r.workerdCpuMsPerRequest), String(r.non200)]),
  );
  const missingLines = rows.filter((r) => r.lines < r.requests);
  out.push("  (means per request, from the `cost` field of each callback's log line; n/a: no line has it)");
  out.push("  * the Worker's workerd process (the Worker, its local D1 and Durable Object) over the requests: an upper bound locally");
  if (rows.length > 0) out.push(`    (/proc counts CPU time in ${CPU_TICK_MS} ms ticks: ±${figure(rows[0]!.cpuResolutionMs)} ms per request at ${rows[0]!.requests} requests)`);
  if (missingLines.length > 0) out.push(`  callback lines missing from wrangler's output: ${missingLines.map((r) => `${r.label} ${r.lines} of ${r.requests}`).join(", ")}`);
  return out;
}
