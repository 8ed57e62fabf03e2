// Webhooks during the bench: every wrangler dev it starts sends its changes (WEBHOOK_URL, `--var`) to the
// host's sink (scripts/lib/webhook-sink.mjs), a path of its own each, so the load phases pay for the webhook
// dispatcher as a deployment with webhooks on would, and the cost phase can say what the dispatcher adds to a
// change. Here: what the sink is to the core, the dispatcher's log lines, and the cost phase's summary of them.
import { figure } from "./report";

/** What the sink got on one path (one wrangler dev). */
export interface SinkPathCounts {
  messages: number;
  /** Distinct `webhook-id`s: the changes delivered (a retry repeats its id). */
  distinctIds: number;
  /** Messages whose Standard Webhooks signature did not verify (answered 204 all the same). */
  notVerified: number;
  /** How long before the sink answered these counts the last new webhook-id came; null before any. */
  msSinceNewestId: number | null;
}

/** What the sink got from every path together. */
export interface SinkCounts {
  messages: number;
  distinctIds: number;
  notVerified: number;
  /** Requests that were not POSTs. */
  otherRequests: number;
  /** Whether signatures are checked (a secret was given). */
  verifying: boolean;
  /** The sink's own CPU time so far (a process of its own: charged to neither the bench nor wrangler dev), ms. */
  cpuMs: number;
  byPath: Record<string, SinkPathCounts>;
}

/** The host's webhook endpoint: 204 to every POST on 127.0.0.1, and counts of what came. */
export interface WebhookSink {
  /** http://127.0.0.1:<port>/webhooks: a wrangler dev gets a path under it. */
  url: string;
  counts(): Promise<SinkCounts>;
  close(): Promise<void>;
}

export const NO_MESSAGES: SinkPathCounts = { messages: 0, distinctIds: 0, notVerified: 0, msSinceNewestId: null };

/** One run of the dispatcher that took or sent something, as its line reports it (src/webhooks/dispatcher.ts). */
export interface DispatcherRun {
  taken: number;
  sent: number;
  delivered: number;
  failed: number;
  dead: number;
  /** Rows the dispatcher's SQLite wrote in the run (the alarm it sets aside). */
  storeRowsWritten: number;
  /** Pokes (RPCs from the ledgers) since its previous run line: each a Durable Object request. */
  pokes: number;
}

const RUN_MARK = '{"msg":"webhooks"';
/** The dispatcher's other lines: a failed run, a dead letter, a lost poke, a cursor outside the log. */
const TROUBLE_MARK = '{"msg":"webhook ';

/**
 * The dispatcher's run lines in wrangler dev's output (`{"msg":"webhooks","taken":N,...}`), how many of its
 * other lines there are (each says something went wrong), and the offset just past the last complete line.
 */
export function dispatcherRuns(text: string): { runs: DispatcherRun[]; troubleLines: number; end: number } {
  const end = text.lastIndexOf("\n") + 1;
  const runs: DispatcherRun[] = [];
  let troubleLines = 0;
  for (const line of text.slice(0, end).split("\n")) {
    if (line.includes(TROUBLE_MARK)) troubleLines++;
    const at = line.indexOf(RUN_MARK);
    if (at < 0) continue;
    try {
      const v = JSON.parse(line.slice(at, line.lastIndexOf("}") + 1)) as Record<string, unknown>;
      const n = (k: string) => (typeof v[k] === "number" && Number.isFinite(v[k]) ? (v[k] as number) : 0);
      runs.push({ taken: n("taken"), sent: n("sent"), delivered: n("delivered"), failed: n("failed"), dead: n("dead"), storeRowsWritten: n("storeRowsWritten"), pokes: n("pokes") });
    } catch {
      // not the dispatcher's line after all
    }
  }
  return { runs, troubleLines, end };
}

/** What the cost phase's changes cost as webhooks. */
export interface CostWebhooks {
  /** Changes the phase's callbacks recorded: those that applied, warm-up round included. */
  changesRecorded: number;
  /** At the sink from this wrangler dev. */
  sink: { messages: number; distinctIds: number; notVerified: number };
  /** Whether the sink had a webhook-id for every change recorded before the wait ended. */
  allArrived: boolean;
  /** From the reply to the last callback that applied until the sink had them all; null when it never did. */
  secondsAfterLastChange: number | null;
  /** How long the bench waited for them at most. */
  waitLimitSeconds: number;
  dispatcher: {
    runs: number;
    pokes: number;
    taken: number;
    sent: number;
    delivered: number;
    failed: number;
    dead: number;
    /** SQLite rows its runs wrote, as its lines report them (the alarm each run sets is not counted there). */
    rowsWritten: number;
    /** `rowsWritten` per delivered change: add it to the event ledger's `storeRowsWritten` of a change. */
    rowsWrittenPerDeliveredChange: number | null;
    /** The same with the alarm each run sets counted as a row written. */
    rowsWrittenWithAlarmsPerDeliveredChange: number | null;
    /** Durable Object requests per delivered change: a run is an alarm invocation, a poke an RPC. */
    requestsPerDeliveredChange: number | null;
    /** Its other lines (a failed run, a dead letter, a lost poke...). */
    troubleLines: number;
  };
}

export function summarizeCostWebhooks(o: {
  changesRecorded: number;
  sink: SinkPathCounts;
  secondsAfterLastChange: number | null;
  waitLimitSeconds: number;
  runs: readonly DispatcherRun[];
  troubleLines: number;
}): CostWebhooks {
  const sum = (k: keyof DispatcherRun) => o.runs.reduce((a, r) => a + r[k], 0);
  const delivered = sum("delivered");
  const rowsWritten = sum("storeRowsWritten");
  const pokes = sum("pokes");
  const perDelivered = (n: number) => (delivered > 0 ? Math.round((n / delivered) * 1000) / 1000 : null);
  const allArrived = o.sink.distinctIds >= o.changesRecorded;
  return {
    changesRecorded: o.changesRecorded,
    sink: { messages: o.sink.messages, distinctIds: o.sink.distinctIds, notVerified: o.sink.notVerified },
    allArrived,
    secondsAfterLastChange: allArrived ? o.secondsAfterLastChange : null,
    waitLimitSeconds: o.waitLimitSeconds,
    dispatcher: {
      runs: o.runs.length,
      pokes,
      taken: sum("taken"),
      sent: sum("sent"),
      delivered,
      failed: sum("failed"),
      dead: sum("dead"),
      rowsWritten,
      rowsWrittenPerDeliveredChange: perDelivered(rowsWritten),
      rowsWrittenWithAlarmsPerDeliveredChange: perDelivered(rowsWritten + o.runs.length),
      requestsPerDeliveredChange: perDelivered(o.runs.length + pokes),
      troubleLines: o.troubleLines,
    },
  };
}

/** The cost phase's lines about webhooks, under its table; `null`: webhooks were off. */
export function costWebhookLines(w: CostWebhooks | null): string[] {
  if (w === null) return ["  webhooks: off (--no-webhooks: WEBHOOK_URL and WEBHOOK_SECRET empty)"];
  const d = w.dispatcher;
  const sink = `${w.sink.distinctIds} distinct webhook-ids (${w.sink.messages} messages${w.sink.notVerified > 0 ? `, ${w.sink.notVerified} NOT verified` : ""})`;
  const arrival = w.allArrived
    ? `the sink had them all ${figure(w.secondsAfterLastChange)} s after the last change's callback: ${sink}`
    : `NOT all reached the sink within ${w.waitLimitSeconds} s of the last change's callback: ${sink}`;
  return [
    `  webhooks: ${w.changesRecorded} changes recorded (the callbacks that applied, warm-up round included); ${arrival}`,
    `  dispatcher: ${d.runs} runs took ${d.taken} changes, sent ${d.sent}, delivered ${d.delivered}${d.failed > 0 ? `, ${d.failed} failed` : ""}${d.dead > 0 ? `, ${d.dead} dead` : ""}; ` +
      `${d.rowsWritten} SQLite rows written, ${figure(d.rowsWrittenPerDeliveredChange, 3)} per delivered change (as its lines count them: the alarm each run sets is not among them)`,
    `  Durable Object per change: rows written, the event ledger's (store rows written, above) + the dispatcher's ${figure(d.rowsWrittenPerDeliveredChange, 3)} ` +
      `(${figure(d.rowsWrittenWithAlarmsPerDeliveredChange, 3)} with the alarm each run sets); requests, 1 ledger call + the dispatcher's ${figure(d.requestsPerDeliveredChange, 3)} (${d.runs} runs, ${d.pokes} pokes)`,
    ...(d.troubleLines > 0 ? [`  the dispatcher logged ${d.troubleLines} lines of trouble (a failed run, a dead letter, a lost poke): see wrangler dev's output`] : []),
  ];
}
