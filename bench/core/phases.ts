// The load phases against one wrangler dev (the receiver at LOG_LEVEL warn): a warm-up, then requests per
// second at N connections (the floor, CHECK_URL, the full path).
import { checkUrlMessage, createUserMessage, openReply, replyId, updateUserMessage } from "./events";
import type { PhaseResult } from "./load";
import { phaseSummary } from "./report";
import { callbackUrl, healthzUrl, userNames, type Session } from "./session";

/** Spare bodies per connection: autocannon may set up a few more requests than it sends. */
const SPARE = 4;

/** Every route once, and users for UPDATE_USER to change: their ids. */
export async function warmUp(s: Session, users: number): Promise<string[]> {
  s.log("bench: warming up");
  await s.loader.run(healthzUrl(s), { amount: 2000 });
  await s.loader.run(callbackUrl(s), { method: "POST", amount: 1000, bodies: await s.factory.buildMany(1000 + SPARE * s.connections, () => ["CHECK_URL", checkUrlMessage()]) });
  const bodies = await s.factory.buildMany(users + SPARE * s.connections, (i) => ["CREATE_USER", createUserMessage(s.tag, "warm", i)]);
  const warm = await s.loader.run(callbackUrl(s), { method: "POST", amount: users, bodies, keep: true });
  const targets: string[] = [];
  for (const text of warm.kept) {
    const opened = await openReply(s.bench.profile, text);
    const id = replyId(opened.plaintext);
    if (opened.code === "200" && id) targets.push(id);
  }
  if (targets.length === 0) throw new Error(`warm-up created no user: ${JSON.stringify(warm.replies)}`);
  return targets;
}

export interface Throughput {
  healthz: PhaseResult;
  checkUrl: PhaseResult;
  createUser: PhaseResult;
  updateUser: PhaseResult;
}

const strip = ({ kept: _kept, ...rest }: PhaseResult & { kept: string[] }): PhaseResult => rest;

/**
 * 1. GET /healthz, the floor; 2. CHECK_URL (verify, open, seal); 3. CREATE_USER and UPDATE_USER, the full
 * path. `/healthz` and CHECK_URL send 2.5 times `requests`. Every callback is a fresh valid event; the
 * updates go round-robin over the warm-up's users, each newer than the one before.
 */
export async function throughput(s: Session, requests: number, targets: readonly string[], nproc: number): Promise<Throughput> {
  s.log("bench: measuring");
  const floor = Math.round(requests * 2.5);
  const healthz = strip(await s.loader.run(healthzUrl(s), { amount: floor }));
  s.log(phaseSummary("GET /healthz", healthz, nproc));

  const checkBodies = await s.factory.buildMany(floor + SPARE * s.connections, () => ["CHECK_URL", checkUrlMessage()]);
  const checkUrl = strip(await s.loader.run(callbackUrl(s), { method: "POST", amount: floor, bodies: checkBodies }));
  s.log(phaseSummary("CHECK_URL", checkUrl, nproc));

  const createBodies = await s.factory.buildMany(requests + SPARE * s.connections, (i) => ["CREATE_USER", createUserMessage(s.tag, "new", i)]);
  const createUser = strip(await s.loader.run(callbackUrl(s), { method: "POST", amount: requests, bodies: createBodies }));
  s.log(phaseSummary("CREATE_USER", createUser, nproc));

  // An update carries the username too, read back through the read API.
  const names = await userNames(s, targets);
  const updateBodies = await s.factory.buildMany(requests + SPARE * s.connections, (i) => {
    const id = targets[i % targets.length]!;
    return ["UPDATE_USER", updateUserMessage(id, names.get(id)!, Math.floor(i / targets.length) + 1)];
  });
  const updateUser = strip(await s.loader.run(callbackUrl(s), { method: "POST", amount: requests, bodies: updateBodies }));
  s.log(phaseSummary("UPDATE_USER", updateUser, nproc));
  return { healthz, checkUrl, createUser, updateUser };
}
