// Webhooks during the bench: every wrangler dev it starts sends its changes (WEBHOOK_URL, `--var`) to the
// host's sink (scripts/lib/webhook-sink.mjs), a path of its own each, so the load phases pay for the webhook
// dispatcher as a deployment with webhooks on would. Here: what the sink is to the core.

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
