// The benchmark's Web-API half (issue #8): the requests it sends, built and signed with the receiver's own
// protocol code (through the simulator's wire helpers), the replies it opens, and the pure protocol work
// measured on its own. scripts/bench.mjs bundles this file with esbuild and does everything Node-specific
// (wrangler dev, autocannon, files, process.cpuUsage).
import { authenticateEnvelope, openEnvelope, sealReply, type ProtocolSettings } from "../src/protocol/callback";
import { readConfig } from "../src/config";
import { openCbc } from "../src/protocol/cbc";
import { randomLetters } from "../src/protocol/codec";
import { openGcm } from "../src/protocol/gcm";
import { parseDotenv, parseWranglerVars } from "../sim/core/settings-files";
import { mergeSettings, profileFromSettings, type SimProfile } from "../sim/core/profile";
import { envelopeBody, MonotonicClock, newNonce, sealMessage, signEnvelope } from "../sim/core/wire";

export type { SimProfile } from "../sim/core/profile";

export interface BenchProfile {
  /** The sending side (what OneAccess would be configured with). */
  profile: SimProfile;
  /** The receiving side's protocol settings, for the in-process protocol loop. */
  settings: ProtocolSettings;
}

/**
 * The profile `wrangler dev` runs with in the bench: wrangler.toml [vars], then the development secrets
 * (.dev.vars.example, passed to wrangler dev with --env-file), validated by the receiver's own readConfig.
 */
export function benchProfile(wranglerToml: string, devVars: string): BenchProfile {
  const settings = mergeSettings(parseWranglerVars(wranglerToml), parseDotenv(devVars));
  const result = profileFromSettings(settings);
  const config = readConfig(settings);
  if (!result.ok || !config.ok) {
    const problems = result.ok ? (config.ok ? [] : config.problems) : result.problems;
    throw new Error(`bench settings invalid: ${problems.map((p) => `${p.setting} ${p.problem}`).join("; ")}`);
  }
  return { profile: result.profile, settings: config.config.protocol };
}

/** A short random tag that keeps this run's usernames and codes apart from any other run's. */
export function runTag(): string {
  return randomLetters(6).toLowerCase();
}

/** Builds complete request bodies: a fresh nonce and a strictly increasing timestamp each, sealed and signed. */
export class BodyFactory {
  private readonly clock = new MonotonicClock();

  constructor(readonly profile: SimProfile) {}

  async build(eventType: string, message: string): Promise<string> {
    const unsigned = { nonce: newNonce(), timestamp: this.clock.nowMs(), eventType, data: await sealMessage(this.profile, message) };
    return envelopeBody({ ...unsigned, signature: await signEnvelope(this.profile, unsigned) });
  }

  /** `count` bodies, built `batch` at a time concurrently (Web Crypto calls are asynchronous). */
  async buildMany(count: number, make: (i: number) => [eventType: string, message: string], batch = 256): Promise<string[]> {
    const out: string[] = new Array(count);
    for (let start = 0; start < count; start += batch) {
      const end = Math.min(count, start + batch);
      const built = await Promise.all(
        Array.from({ length: end - start }, (_, k) => {
          const [eventType, message] = make(start + k);
          return this.build(eventType, message);
        }),
      );
      for (let k = 0; k < built.length; k++) out[start + k] = built[k]!;
    }
    return out;
  }
}

/** The size the event payloads are padded to: the issue's "1 KiB event". */
export const EVENT_BYTES = 1024;

const encoder = new TextEncoder();

/** Pads `payload` with a `note` extension attribute until its JSON is `bytes` long (UTF-8). */
function padded(payload: Record<string, unknown>, bytes = EVENT_BYTES): string {
  const base = JSON.stringify({ ...payload, note: "" });
  const missing = bytes - encoder.encode(base).length;
  return JSON.stringify({ ...payload, note: "x".repeat(Math.max(0, missing)) });
}

const pad5 = (n: number) => String(n).padStart(5, "0");

export function username(tag: string, kind: string, i: number): string {
  return `bench-${tag}-${kind}-${pad5(i)}`;
}

/** A CREATE_USER payload of EVENT_BYTES, shaped like OneAccess's (fixed attributes, extensions). */
export function createUserMessage(tag: string, kind: string, i: number, organizationId?: string): string {
  return padded({
    username: username(tag, kind, i),
    name: `Bench User ${pad5(i)}`,
    ...(organizationId !== undefined ? { organizationId } : {}),
    password: "Bench-Passw0rd!",
    disabled: false,
    firstName: "Bench",
    lastName: `User${pad5(i)}`,
    mobile: `+86 138 ${pad5(i)} 000`,
    email: `${username(tag, kind, i)}@bench.example`,
    employeeNo: `E-${pad5(i)}`,
    title: "Engineer",
    location: "Shenzhen",
    hireDate: "2024-03-01",
  });
}

/** An UPDATE_USER payload of EVENT_BYTES that changes the user (round `round` of updates). */
export function updateUserMessage(id: string, name: string, round: number): string {
  return padded({
    id,
    username: name,
    name: `Bench Updated ${round}`,
    disabled: round % 2 === 1,
    email: `${name}.r${round}@bench.example`,
    title: `Engineer ${round}`,
  });
}

export function createOrganizationMessage(tag: string, i: number): string {
  return JSON.stringify({ code: `bench-${tag}-org-${pad5(i)}`, name: `Bench Org ${pad5(i)}` });
}

export function checkUrlMessage(): string {
  return randomLetters(32);
}

export interface OpenedReply {
  code: string;
  message: string;
  /** The reply's `data`, opened; null when it is not a reply or does not open. */
  plaintext: string | null;
}

/** Opens a `{code, message, data}` reply body with the sending side's key. */
export async function openReply(profile: SimProfile, text: string): Promise<OpenedReply> {
  let body: { code?: unknown; message?: unknown; data?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return { code: "not-json", message: text.slice(0, 120), plaintext: null };
  }
  const code = typeof body.code === "string" ? body.code : "?";
  const message = typeof body.message === "string" ? body.message : "";
  const data = typeof body.data === "string" ? body.data : null;
  if (data === null) return { code, message, plaintext: null };
  if (data === "" || profile.encryption === "none") return { code, message, plaintext: data };
  if (profile.encryption === "aes-gcm") {
    const opened = await openGcm(data, [profile.encryptionKey], "auto");
    return { code, message, plaintext: opened.ok ? opened.message : null };
  }
  const opened = await openCbc(data, [profile.encryptionKey], profile.receiveId);
  return { code, message, plaintext: opened.ok ? opened.message : null };
}

/** The `id` of a `{"id": ...}` reply. */
export function replyId(plaintext: string | null): string | null {
  if (!plaintext || !plaintext.startsWith("{")) return null;
  try {
    const id = (JSON.parse(plaintext) as { id?: unknown }).id;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}

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
