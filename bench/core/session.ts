// What every phase works with: one running wrangler dev, the load it is sent, the events' factory, and the
// read API to check what the Worker stored.
import type { FetchLike } from "../../sim/core/wire";
import type { RunningDev } from "./dev-server";
import type { BenchProfile, BodyFactory } from "./events";
import type { LoadGenerator, Loader } from "./load";
import type { SinkPathCounts } from "./webhooks";

export interface Session {
  bench: BenchProfile;
  factory: BodyFactory;
  /** Keeps this run's usernames and codes apart from any other run's. */
  tag: string;
  running: RunningDev;
  loader: Loader;
  generator: LoadGenerator;
  /** Connections of the measured phases. */
  connections: number;
  fetch: FetchLike;
  now(): number;
  /** The bench process's own CPU time so far, ms. */
  cpuNow(): number;
  log(line: string): void;
  /** What the webhook sink got from this wrangler dev so far; null when webhooks are off. */
  webhooks: { counts(): Promise<SinkPathCounts> } | null;
}

export const callbackUrl = (s: Session) => `${s.running.dev.url}/callback`;
export const healthzUrl = (s: Session) => `${s.running.dev.url}/healthz`;

export interface ListedUser {
  id: string;
  username: string;
}

/** Every user of the directory, through GET /api/v1/users (200 a page, keyset cursor). */
export async function* listUsers(s: Session): AsyncGenerator<ListedUser> {
  let cursor: string | null = null;
  do {
    const url = `${s.running.dev.url}/api/v1/users?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await s.fetch(new Request(url, { headers: { authorization: `Bearer ${s.bench.directoryToken}` } }));
    if (!res.ok) throw new Error(`read API answered ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { data: ListedUser[]; next_cursor: string | null };
    yield* page.data;
    cursor = page.next_cursor;
  } while (cursor);
}

/** id → username of the users with those ids, read back through the read API. */
export async function userNames(s: Session, ids: readonly string[]): Promise<Map<string, string>> {
  const wanted = new Set(ids);
  const names = new Map<string, string>();
  for await (const user of listUsers(s)) if (wanted.has(user.id)) names.set(user.id, user.username);
  if (names.size !== wanted.size) throw new Error(`read API returned ${names.size} of ${wanted.size} users`);
  return names;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
