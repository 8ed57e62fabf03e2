// The receiver's pure protocol work, measured on its own: authenticate, open and seal one 1 KiB
// CREATE_USER in a loop, exactly the functions the callback route calls. Web APIs only: it runs in the
// bench's own process (Node's Web Crypto) and, for the bench's main figure, inside workerd
// (bench/protocol-worker.ts).
import { authenticateEnvelope, openEnvelope, sealReply, type ProtocolSettings } from "../../src/protocol/callback";
import { BodyFactory, createUserMessage, type BenchProfile } from "./events";

const encoder = new TextEncoder();

/** One 1 KiB CREATE_USER, as the protocol loop's input: request bodies (a few, reused) and the reply. */
export interface ProtocolInput {
  settings: ProtocolSettings;
  bodies: string[];
  reply: string;
  /** Bytes of the event's JSON before sealing, and of a request body. */
  eventBytes: number;
  bodyBytes: number;
}

export async function protocolInput(bench: BenchProfile): Promise<ProtocolInput> {
  const factory = new BodyFactory(bench.profile);
  const message = createUserMessage("cpu", "u", 1);
  // Built up front: signing and sealing the request are the sender's work, not the receiver's.
  const bodies = await factory.buildMany(64, () => ["CREATE_USER", message]);
  return {
    settings: bench.settings,
    bodies,
    reply: JSON.stringify({ id: "usr_Ht7pQm2xKe9a" }),
    eventBytes: encoder.encode(message).length,
    bodyBytes: encoder.encode(bodies[0]!).length,
  };
}

/**
 * The receiver's pure protocol work for `iterations` events: authenticate (envelope, window, signature),
 * open (decrypt, payload shape) and seal the `{"id": ...}` reply, exactly the functions the route calls.
 * Web APIs only: it runs in Node and, for the bench's main figure, inside workerd (bench/protocol-worker.ts).
 */
export async function protocolLoop(input: ProtocolInput, iterations: number): Promise<number> {
  let done = 0;
  for (let i = 0; i < iterations; i++) {
    const auth = await authenticateEnvelope(input.settings, input.bodies[i % input.bodies.length]!, Date.now(), 0);
    if (!auth.ok) throw new Error(`protocol loop: ${auth.failure.kind}`);
    const opened = await openEnvelope(input.settings, auth.value.envelope);
    if (!opened.ok) throw new Error(`protocol loop: ${opened.failure.kind}`);
    const reply = await sealReply(input.settings, opened.value.seal, "200", "success", input.reply);
    if (reply.data.length > 0) done++;
  }
  return done;
}

export interface ProtocolCpu {
  iterations: number;
  eventBytes: number;
  bodyBytes: number;
  cpuMsPerEvent: number;
  wallMsPerEvent: number;
}

/** The loop in this process (Node's Web Crypto): `cpuNow` gives its CPU time in ms, all threads. */
export async function measureProtocolCpu(input: ProtocolInput, iterations: number, cpuNow: () => number): Promise<ProtocolCpu> {
  await protocolLoop(input, Math.min(2000, iterations)); // warm-up (JIT)
  const cpu0 = cpuNow();
  const wall0 = performance.now();
  await protocolLoop(input, iterations);
  const wall = performance.now() - wall0;
  const cpu = cpuNow() - cpu0;
  return { iterations, eventBytes: input.eventBytes, bodyBytes: input.bodyBytes, cpuMsPerEvent: cpu / iterations, wallMsPerEvent: wall / iterations };
}

/** A Worker script running in workerd (Miniflare, no bindings, no storage), started by the host. */
export interface ScriptWorker {
  fetch(request: Request): Promise<Response>;
  dispose(): Promise<void>;
}

type WorkerdCpu = () => { pid: number; cpuMs: number } | null;

/**
 * One job of bench/protocol-worker.ts run `count` times inside workerd, after a warm-up of `warmUp`: the CPU
 * time the workerd process used meanwhile (read from /proc: workerd's clocks stand still while code runs)
 * and the wall time. `workerd()` finds that process; null when it cannot (no /proc).
 */
async function workerdJob(
  worker: ScriptWorker,
  workerd: WorkerdCpu,
  job: (n: number) => unknown,
  count: number,
  warmUp: number,
): Promise<{ cpuMs: number; wallMs: number } | null> {
  const run = async (n: number) => {
    const res = await worker.fetch(new Request("http://bench.local/", { method: "POST", body: JSON.stringify(job(n)) }));
    const { done } = (await res.json()) as { done: number };
    if (done !== n) throw new Error(`protocol worker did ${done} of ${n}`);
  };
  await run(warmUp); // warm-up (JIT)
  const before = workerd();
  const wall0 = performance.now();
  await run(count);
  const wallMs = performance.now() - wall0;
  const after = workerd();
  if (!before || !after || before.pid !== after.pid) return null;
  return { cpuMs: after.cpuMs - before.cpuMs, wallMs };
}

/** The protocol loop inside workerd: CPU and wall time per event; null without /proc. */
export async function measureProtocolCpuInWorkerd(worker: ScriptWorker, workerd: WorkerdCpu, input: ProtocolInput, iterations: number): Promise<ProtocolCpu | null> {
  const t = await workerdJob(worker, workerd, (n) => ({ input, iterations: n }), iterations, Math.min(2000, iterations));
  if (t === null) return null;
  return { iterations, eventBytes: input.eventBytes, bodyBytes: input.bodyBytes, cpuMsPerEvent: t.cpuMs / iterations, wallMsPerEvent: t.wallMs / iterations };
}

/** PASSWORD_POLICY=pbkdf2's hash inside workerd (the receiver's own `hashPassword`): CPU ms per hash; null without /proc. */
export async function measurePbkdf2CpuInWorkerd(worker: ScriptWorker, workerd: WorkerdCpu, hashes: number): Promise<{ hashes: number; cpuMsPerHash: number } | null> {
  const t = await workerdJob(worker, workerd, (n) => ({ pbkdf2: n }), hashes, 2);
  return t === null ? null : { hashes, cpuMsPerHash: t.cpuMs / hashes };
}
