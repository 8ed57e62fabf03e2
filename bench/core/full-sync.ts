// The full sync: OneAccess's largest edition pushed at once, then every user looked up through the read API.
import { percentile } from "../../sim/core/stats";
import { createOrganizationMessage, createUserMessage, openReply, replyId, username } from "./events";
import { pool } from "./load";
import { round, type CpuUse } from "./processes";
import { cpuLine, labelled } from "./report";
import { callbackUrl, listUsers, type Session } from "./session";

/** Users signed and sealed at a time (each chunk is pushed well inside the timestamp window). */
const SYNC_CHUNK = 5000;

export interface FullSyncOptions {
  users: number;
  orgs: number;
  concurrency: number;
}

export interface FullSync {
  users: number;
  organizations: number;
  concurrency: number;
  /** Time spent pushing, resends included. */
  seconds: number;
  /** With the bench's own signing and sealing between chunks (OneAccess does that on its side). */
  wallSeconds: number;
  rps: number;
  latencyMs: { p50: number | null; p99: number | null };
  serverCpuMsPerRequest: number | null;
  /** `ms.benchSigning`: the bench's CPU spent signing and sealing bodies, not generating load. */
  cpu: CpuUse;
  retries: number;
  failures: Record<string, number>;
  check: { present: number; missing: number; duplicates: number; everyUserExactlyOnce: boolean };
}

/**
 * The organizations, then the users pushed with `concurrency` in flight, in chunks whose bodies are built
 * (signed and sealed, a fresh timestamp each) just before the chunk is pushed, so every body is well inside
 * the timestamp window however slow the push. A user whose create did not get a 200 (or whose body the load
 * generator built but did not send at the end of a chunk) is sent again with the same bytes, as OneAccess
 * retries. Afterwards: every user present exactly once, with the id its create was answered with.
 */
export async function fullSync(s: Session, o: FullSyncOptions, nproc: number): Promise<FullSync> {
  s.log(`bench: full sync of ${o.users} users under ${o.orgs} organizations, ${o.concurrency} in flight`);
  const orgIds: string[] = [];
  const latencies: number[] = [];
  let retries = 0;
  let pushMs = 0;
  const failures = new Map<string, number>();
  const fail = (key: string) => failures.set(key, (failures.get(key) ?? 0) + 1);
  const replies: Array<string | null> = new Array<string | null>(o.users).fill(null); // reply text of user i's create
  let signingMs = 0;
  const signed = async <T>(make: () => Promise<T>): Promise<T> => {
    const c0 = s.cpuNow();
    const made = await make();
    signingMs += s.cpuNow() - c0;
    return made;
  };
  const cpu0 = s.running.group.snapshot();
  const wall0 = s.now();
  const url = callbackUrl(s);

  // Organizations first (a user's organizationId is the id the receiver answered).
  let t0 = s.now();
  for (let i = 0; i < o.orgs; i++) {
    const r = await s.loader.post(url, await signed(() => s.factory.build("CREATE_ORGANIZATION", createOrganizationMessage(s.tag, i))));
    const id = replyId((await openReply(s.bench.profile, r.text)).plaintext);
    if (!id) throw new Error(`CREATE_ORGANIZATION answered ${r.status} ${r.text.slice(0, 200)}`);
    orgIds.push(id);
  }
  pushMs += s.now() - t0;

  for (let start = 0; start < o.users; start += SYNC_CHUNK) {
    const count = Math.min(SYNC_CHUNK, o.users - start);
    const bodies = await signed(() =>
      s.factory.buildMany(count, (k) => ["CREATE_USER", createUserMessage(s.tag, "sync", start + k, orgIds[(start + k) % orgIds.length])]),
    );
    t0 = s.now();
    let next = 0;
    await s.generator.run({
      url,
      connections: Math.min(o.concurrency, count),
      amount: count,
      method: "POST",
      headers: s.loader.callbackHeaders,
      // Each connection's context names the body its request in flight carries.
      body: (context) => {
        if (next >= count) return bodies[(context.index = count - 1)]!; // never answered: resent below
        context.index = next++;
        return bodies[context.index as number]!;
      },
      onResponse: (status, body, context) => {
        const i = start + (context.index as number);
        if (status === 200 && replies[i] === null) replies[i] = body;
      },
      onLatency: (ms) => void latencies.push(ms),
    });
    // Resend what got no 200 (a 500, or a body built but not sent when the chunk's count was reached).
    const missingNow: number[] = [];
    for (let k = 0; k < count; k++) if (replies[start + k] === null) missingNow.push(k);
    await pool(missingNow.length, o.concurrency, async (j) => {
      const k = missingNow[j]!;
      const r = await s.loader.post(url, bodies[k]!);
      retries += r.attempts;
      latencies.push(r.ms);
      if (r.status === 200) replies[start + k] = r.text;
    });
    pushMs += s.now() - t0;
  }
  const seconds = pushMs / 1000;
  const wallSeconds = (s.now() - wall0) / 1000;
  const requests = o.users + o.orgs;
  const cpu = s.running.group.between(cpu0, s.running.group.snapshot(), requests);
  cpu.ms.benchSigning = round(signingMs, 1)!;
  cpu.msPerRequest.benchSigning = round(signingMs / requests, 3)!;

  const ids = new Map<string, string>(); // username -> id from the reply
  for (let i = 0; i < o.users; i++) {
    const reply = replies[i];
    if (reply === null || reply === undefined) {
      fail("no 200 after retries");
      continue;
    }
    const opened = await openReply(s.bench.profile, reply);
    const id = replyId(opened.plaintext);
    if (opened.code !== "200" || !id) fail(`${opened.code} ${opened.message}`);
    else ids.set(username(s.tag, "sync", i), id);
  }

  const seen = new Map<string, number>();
  for await (const user of listUsers(s)) {
    if (user.username.startsWith(`bench-${s.tag}-sync-`)) seen.set(user.username, (seen.get(user.username) ?? 0) + 1);
    if (ids.has(user.username) && ids.get(user.username) !== user.id) fail("id differs from the reply");
  }
  let missing = 0;
  let duplicates = 0;
  for (let i = 0; i < o.users; i++) {
    const n = seen.get(username(s.tag, "sync", i)) ?? 0;
    if (n === 0) missing++;
    if (n > 1) duplicates++;
  }
  latencies.sort((a, b) => a - b);
  const result: FullSync = {
    users: o.users,
    organizations: o.orgs,
    concurrency: o.concurrency,
    seconds: round(seconds, 1)!,
    wallSeconds: round(wallSeconds, 1)!,
    rps: round(requests / seconds, 1)!,
    latencyMs: latencies.length > 0 ? { p50: round(percentile(latencies, 50), 1), p99: round(percentile(latencies, 99), 1) } : { p50: null, p99: null },
    serverCpuMsPerRequest: cpu.serverMsPerRequest,
    cpu,
    retries,
    failures: Object.fromEntries(failures),
    check: { present: seen.size, missing, duplicates, everyUserExactlyOnce: missing === 0 && duplicates === 0 && seen.size === o.users },
  };
  s.log(
    labelled(
      "full sync",
      `${result.users} users in ${result.seconds} s of pushing (${result.wallSeconds} s with the bench's signing), ${result.rps} req/s, ` +
        `p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, ${result.retries} resent; afterwards ${result.check.present} present, ` +
        `${result.check.missing} missing, ${result.check.duplicates} duplicated`,
    ),
  );
  s.log(cpuLine(cpu, nproc, ` (${cpu.msPerRequest.benchSigning!.toFixed(2)} of it signing and sealing)`));
  return result;
}
