// What a full sync costs against Cloudflare's plans, from the measured cost of one event of each kind. A
// full sync of N users is OneAccess's first push: one CHECK_URL, N / 100 organizations (at least 1), then N
// users, all creates into an empty database. Each figure is the per-event mean the bench measured times the
// count, so the table says what the Free plan's daily limits leave and what the Paid plan bills beyond what
// its subscription includes.

/** What one event costs, as the callback's `cost` field reports it (means). */
export interface EventCost {
  d1RowsRead: number;
  d1RowsWritten: number;
  /** The event ledger's rows written for the record (the purge's row is `ledgerPurgeRowsPerRecord`). */
  storeRowsWritten: number;
}

export interface SyncCostInput {
  checkUrl: EventCost;
  createOrganization: EventCost;
  createUser: EventCost;
  /** Rows the ledger's alarm writes to delete one expired record (test/budgets.test.ts measures 1). */
  ledgerPurgeRowsPerRecord: number;
  /** The webhook dispatcher per change delivered (null: webhooks off): its own rows, its requests (alarm runs and pokes), and the D1 rows it reads. */
  webhooks: { rowsWrittenPerChange: number; requestsPerChange: number; d1RowsReadPerChange: number } | null;
  /** The Worker's CPU per callback (ms), an upper bound measured locally. */
  cpuMsPerRequest: number;
}

/** Workers Free plan: daily limits (reset at 00:00 UTC; beyond one, further operations of that kind fail). */
export const FREE_DAILY = {
  workerRequests: 100_000,
  durableObjectRequests: 100_000,
  durableObjectRowsWritten: 100_000,
  d1RowsWritten: 100_000,
  d1RowsRead: 5_000_000,
} as const;

/** Workers Paid plan ($5 a month): what the month includes, and the price of each million beyond it. */
export const PAID_MONTHLY = {
  workerRequests: { included: 10_000_000, perMillion: 0.3 },
  cpuMs: { included: 30_000_000, perMillion: 0.02 },
  durableObjectRequests: { included: 1_000_000, perMillion: 0.15 },
  durableObjectRowsWritten: { included: 50_000_000, perMillion: 1.0 },
  d1RowsWritten: { included: 50_000_000, perMillion: 1.0 },
  d1RowsRead: { included: 25_000_000_000, perMillion: 0.001 },
} as const;

export type Usage = Record<keyof typeof FREE_DAILY, number> & { cpuMs: number };

export interface SyncCost {
  users: number;
  organizations: number;
  events: number;
  usage: Usage;
  /** Each usage as a share of the Free plan's daily limit (1 = all of it). */
  freeShare: Record<keyof typeof FREE_DAILY, number>;
  /** The largest share, and which limit it is. */
  tightest: { limit: keyof typeof FREE_DAILY; share: number };
  /** Paid plan: the list price of this usage if none of it were included, and what is billed beyond the monthly inclusions (when it is the month's only traffic). */
  paid: { listPriceUsd: number; billedBeyondIncludedUsd: number };
}

export function organizationsFor(users: number): number {
  return Math.max(1, Math.round(users / 100));
}

export function fullSyncCost(users: number, input: SyncCostInput): SyncCost {
  const organizations = organizationsFor(users);
  const events = 1 + organizations + users;
  const changes = organizations + users;
  const sum = (f: (c: EventCost) => number) => f(input.checkUrl) + organizations * f(input.createOrganization) + users * f(input.createUser);
  const hooks = input.webhooks;
  const usage: Usage = {
    workerRequests: events,
    durableObjectRequests: events + (hooks ? changes * hooks.requestsPerChange : 0),
    durableObjectRowsWritten: sum((c) => c.storeRowsWritten) + events * input.ledgerPurgeRowsPerRecord + (hooks ? changes * hooks.rowsWrittenPerChange : 0),
    d1RowsWritten: sum((c) => c.d1RowsWritten),
    d1RowsRead: sum((c) => c.d1RowsRead) + (hooks ? changes * hooks.d1RowsReadPerChange : 0),
    cpuMs: events * input.cpuMsPerRequest,
  };
  const freeShare = Object.fromEntries(
    (Object.keys(FREE_DAILY) as Array<keyof typeof FREE_DAILY>).map((k) => [k, usage[k] / FREE_DAILY[k]]),
  ) as Record<keyof typeof FREE_DAILY, number>;
  const tightest = (Object.entries(freeShare) as Array<[keyof typeof FREE_DAILY, number]>).reduce((a, b) => (b[1] > a[1] ? b : a));
  let listPriceUsd = 0;
  let billedBeyondIncludedUsd = 0;
  for (const [k, price] of Object.entries(PAID_MONTHLY) as Array<[keyof typeof PAID_MONTHLY, { included: number; perMillion: number }]>) {
    const used = usage[k];
    listPriceUsd += (used / 1e6) * price.perMillion;
    billedBeyondIncludedUsd += (Math.max(0, used - price.included) / 1e6) * price.perMillion;
  }
  return { users, organizations, events, usage, freeShare, tightest: { limit: tightest[0], share: tightest[1] }, paid: { listPriceUsd, billedBeyondIncludedUsd } };
}

const LIMIT_LABELS: Record<keyof typeof FREE_DAILY, string> = {
  workerRequests: "Worker requests",
  durableObjectRequests: "DO requests",
  durableObjectRowsWritten: "DO rows written",
  d1RowsWritten: "D1 rows written",
  d1RowsRead: "D1 rows read",
};

const count = (n: number) => Math.round(n).toLocaleString("en-US").replaceAll(",", " ");
const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

/** The table's rows: one per sync size, each limit as "count (share of the Free day)". */
export function syncCostRows(costs: readonly SyncCost[]): { header: string[]; rows: string[][] } {
  const limits = Object.keys(FREE_DAILY) as Array<keyof typeof FREE_DAILY>;
  return {
    header: ["users (orgs)", ...limits.map((k) => LIMIT_LABELS[k]), "Paid: list price", "Paid: billed"],
    rows: costs.map((c) => [
      `${count(c.users)} (${count(c.organizations)})`,
      ...limits.map((k) => `${count(c.usage[k])} (${percent(c.freeShare[k])})`),
      `$${c.paid.listPriceUsd.toFixed(3)}`,
      `$${c.paid.billedBeyondIncludedUsd.toFixed(2)}`,
    ]),
  };
}
