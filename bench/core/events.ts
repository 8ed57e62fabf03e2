// The events the bench sends, built and signed with the receiver's own protocol code (through the
// simulator's wire helpers), and the replies it opens. Web APIs only.
import { readConfig } from "../../src/config";
import type { ProtocolSettings } from "../../src/protocol/callback";
import { openCbc } from "../../src/protocol/cbc";
import { randomLetters } from "../../src/protocol/codec";
import { openGcm } from "../../src/protocol/gcm";
import { mergeSettings, profileFromSettings, type SimProfile } from "../../sim/core/profile";
import { parseDotenv, parseWranglerVars } from "../../sim/core/settings-files";
import { envelopeBody, MonotonicClock, newNonce, sealMessage, signEnvelope } from "../../sim/core/wire";

export interface BenchProfile {
  /** The sending side (what OneAccess would be configured with). */
  profile: SimProfile;
  /** The receiving side's protocol settings, for the in-process protocol loop. */
  settings: ProtocolSettings;
  /** DIRECTORY_API_TOKEN, for the read API. */
  directoryToken: string;
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
  if (result.profile.operatorToken === undefined) throw new Error("bench settings invalid: DIRECTORY_API_TOKEN is not set");
  return { profile: result.profile, settings: config.config.protocol, directoryToken: result.profile.operatorToken };
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
const EVENT_BYTES = 1024;

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

export function organizationCode(tag: string, kind: string, i: number): string {
  return `bench-${tag}-${kind}-${pad5(i)}`;
}

export function createOrganizationMessage(tag: string, i: number, kind = "org"): string {
  return JSON.stringify({ code: organizationCode(tag, kind, i), name: `Bench Org ${pad5(i)}` });
}

/** An UPDATE_ORGANIZATION that renames it (an update carries the fixed attributes, code and name). */
export function renameOrganizationMessage(id: string, code: string, name: string): string {
  return JSON.stringify({ id, code, name });
}

/** An UPDATE_USER carrying only `changes` besides the id and username it must name. */
export function updateUserFieldsMessage(id: string, name: string, changes: Record<string, string>): string {
  return JSON.stringify({ id, username: name, ...changes });
}

/** DELETE_ORGANIZATION or DELETE_USER: the id alone. */
export function deleteMessage(id: string): string {
  return JSON.stringify({ id });
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

