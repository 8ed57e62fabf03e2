// `simulate listen`: the receiving end of the Worker's webhooks, as an application would run it. Each
// request is verified with the official Standard Webhooks library (what an integrator would use), checked
// against the documented change message, printed as one line and answered: 204 for a verified message, 400
// with the reason for one that does not verify, 500 on purpose (--fail, --fail-rate) to watch the retries.
// Web APIs only: the Node host serves it (scripts/simulate.mjs), the tests call `handle` inside workerd.
import { Webhook } from "standardwebhooks";

export const DEFAULT_LISTEN_PORT = 8789;
export const DEFAULT_LISTEN_PATH = "/webhooks";

/**
 * The change types the Worker sends (the change log's types, docs/webhooks-listen.md). The listener keeps its
 * own copy, as an application would from the documentation, rather than importing the Worker's: the tools
 * use only src/protocol and src/config. test/simulator/listen.test.ts checks the two lists agree.
 */
export const CHANGE_TYPES = [
  "user.created",
  "user.updated",
  "user.disabled",
  "user.enabled",
  "user.deleted",
  "user.restored",
  "organization.created",
  "organization.updated",
  "organization.moved",
  "organization.deleted",
  "organization.restored",
] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

/** One webhook's body: a change of the directory, with the entity as the read API shows it (null once deleted). */
export interface ChangeMessage {
  type: ChangeType;
  timestamp: string;
  data: {
    id: string;
    type: ChangeType;
    entity_type: "user" | "organization";
    entity_id: string;
    version: number;
    changed: string[];
    occurred_at: string | null;
    recorded_at: string | null;
    entity: Record<string, unknown> | null;
  };
}

/** The library's own tolerance (standardwebhooks: 5 minutes either way), named in the reasons printed. */
const TOLERANCE_SECONDS = 300;

/** `whsec_` and Base64 of the key, as the Worker's WEBHOOK_SECRET: null when usable, otherwise the problem. */
export function webhookSecretProblem(secret: string): string | null {
  const shape = "must be whsec_ followed by the Base64 key (the Worker's WEBHOOK_SECRET)";
  if (!secret.startsWith("whsec_")) return shape;
  const key = secret.slice("whsec_".length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || key.length % 4 !== 0) return shape;
  try {
    new Webhook(secret);
    return null;
  } catch {
    return shape;
  }
}

export type Verdict = { ok: true; message: ChangeMessage } | { ok: false; reason: string };

/** Why a verified body is not a change message as documented, or null when it is one. */
export function changeMessageProblem(value: unknown, webhookId: string): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "the body is not a JSON object";
  const m = value as Record<string, unknown>;
  if (!(CHANGE_TYPES as readonly unknown[]).includes(m.type)) return `type ${JSON.stringify(m.type)} is not a change type`;
  if (typeof m.timestamp !== "string" || Number.isNaN(Date.parse(m.timestamp))) return "timestamp is not an ISO time";
  const d = m.data;
  if (typeof d !== "object" || d === null || Array.isArray(d)) return "data is not an object";
  const data = d as Record<string, unknown>;
  if (data.id !== webhookId) return `data.id ${JSON.stringify(data.id)} is not the webhook-id ${JSON.stringify(webhookId)}`;
  if (data.type !== m.type) return `data.type ${JSON.stringify(data.type)} is not type ${JSON.stringify(m.type)}`;
  const entityType = (m.type as string).split(".")[0];
  if (data.entity_type !== entityType) return `data.entity_type ${JSON.stringify(data.entity_type)} is not ${JSON.stringify(entityType)}`;
  if (typeof data.entity_id !== "string" || data.entity_id === "") return "data.entity_id is not a non-empty string";
  if (typeof data.version !== "number" || !Number.isSafeInteger(data.version) || data.version < 0) return "data.version is not a whole number";
  if (!Array.isArray(data.changed) || !data.changed.every((c) => typeof c === "string")) return "data.changed is not a list of attribute names";
  for (const key of ["occurred_at", "recorded_at"] as const) {
    if (data[key] !== null && typeof data[key] !== "string") return `data.${key} is not an ISO time or null`;
  }
  if (data.entity !== null && (typeof data.entity !== "object" || Array.isArray(data.entity))) return "data.entity is not an object or null";
  return null;
}

const HEADER_NAMES = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const;

/**
 * The Standard Webhooks check of one request (signature over id, timestamp and body; the timestamp within
 * 5 minutes), then the message's shape. The library's terse errors become reasons that say what to look at.
 */
export function verifyChangeMessage(secret: string, body: string, headers: Headers, nowMs: number): Verdict {
  const missing = HEADER_NAMES.filter((name) => !headers.get(name));
  if (missing.length > 0) return { ok: false, reason: `missing header ${missing.join(", ")}` };
  const values = Object.fromEntries(HEADER_NAMES.map((name) => [name, headers.get(name)!]));
  const timestamp = values["webhook-timestamp"]!;
  if (!/^[0-9]+$/.test(timestamp)) return { ok: false, reason: `webhook-timestamp ${JSON.stringify(timestamp)} is not Unix seconds` };
  const age = Math.floor(nowMs / 1000) - Number(timestamp);
  if (age > TOLERANCE_SECONDS) return { ok: false, reason: `webhook-timestamp is ${age} s old (over ${TOLERANCE_SECONDS} s: a replay, or the clocks differ)` };
  if (-age > TOLERANCE_SECONDS) return { ok: false, reason: `webhook-timestamp is ${-age} s ahead (over ${TOLERANCE_SECONDS} s: the clocks differ)` };
  if (!values["webhook-signature"]!.split(" ").some((s) => s.startsWith("v1,"))) return { ok: false, reason: "webhook-signature has no v1 signature" };
  try {
    new Webhook(secret).verify(body, values, { jsonParse: false });
  } catch (e) {
    // The checks above leave the library one refusal of its own: no signature matches.
    const detail = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      reason:
        detail === "No matching signature found"
          ? "no signature matches this secret (the body or a header was changed, or the sender signs with another WEBHOOK_SECRET)"
          : detail,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, reason: "verified, but the body is not JSON" };
  }
  const problem = changeMessageProblem(parsed, values["webhook-id"]!);
  if (problem !== null) return { ok: false, reason: `verified, but not a change message: ${problem}` };
  return { ok: true, message: parsed as ChangeMessage };
}

/** What the line says about the entity: a user's username and state, an organization's code and name. */
export function describeEntity(message: ChangeMessage): string {
  const entity = message.data.entity;
  if (entity === null) return "(no entity: deleted)";
  if (message.data.entity_type === "user") return `${String(entity.username)} (${entity.disabled === true ? "disabled" : "enabled"})`;
  return `${String(entity.code)} ${JSON.stringify(entity.name)}`;
}

export interface ListenerOptions {
  secret: string;
  /** The only path that takes webhooks (default /webhooks); anything else is answered 404, and printed. */
  path?: string;
  /** Answer the first N requests on the path with 500, whatever they hold, to watch the sender retry. */
  failFirst?: number;
  /** Answer each request on the path with 500 with this probability (0 to 1), after the first `failFirst`. */
  failRate?: number;
  /** One line of output (without the newline). */
  print(line: string): void;
  /** The time printed on each line (default: now). */
  clock?(): Date;
  /** For --fail-rate (default Math.random). */
  random?(): number;
}

export interface ListenerTally {
  verified: number;
  /** Refused with 400, or answered 500 on purpose although they would not have verified. */
  notVerified: number;
  /** Answered 500 by --fail or --fail-rate. */
  failedOnPurpose: number;
  /** Requests to another path or with another method. */
  otherRequests: number;
}

export interface Listener {
  handle(request: Request): Promise<Response>;
  tally(): ListenerTally;
}

/** Deliveries remembered per webhook-id, to mark a retry; the oldest ids are forgotten past this. */
const REMEMBERED_IDS = 10_000;

export function createListener(options: ListenerOptions): Listener {
  const path = options.path ?? DEFAULT_LISTEN_PATH;
  const failFirst = options.failFirst ?? 0;
  const failRate = options.failRate ?? 0;
  const clock = options.clock ?? (() => new Date());
  const random = options.random ?? Math.random;
  const tally: ListenerTally = { verified: 0, notVerified: 0, failedOnPurpose: 0, otherRequests: 0 };
  const deliveries = new Map<string, number>();
  let requestsOnPath = 0;

  // Local time of day: what a developer compares with the other terminals.
  const time = () => clock().toTimeString().slice(0, 8);
  const text = (status: number, body: string) => new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== path) {
      tally.otherRequests++;
      options.print(`${time()}  404  ${request.method} ${url.pathname}: not the webhook path (${path})`);
      return text(404, `not found: webhooks go to ${path}\n`);
    }
    if (request.method !== "POST") {
      tally.otherRequests++;
      options.print(`${time()}  405  ${request.method} ${url.pathname}: webhooks are POSTed`);
      return new Response("webhooks are POSTed\n", { status: 405, headers: { allow: "POST" } });
    }
    requestsOnPath++;
    const body = await request.text();
    const webhookId = request.headers.get("webhook-id") ?? "";
    const verdict = verifyChangeMessage(options.secret, body, request.headers, Date.now());

    const extras: string[] = [];
    if (webhookId !== "") {
      const n = (deliveries.get(webhookId) ?? 0) + 1;
      deliveries.delete(webhookId);
      deliveries.set(webhookId, n);
      if (deliveries.size > REMEMBERED_IDS) deliveries.delete(deliveries.keys().next().value!);
      if (n > 1) extras.push(`delivery ${n}`);
    }
    const signatures = (request.headers.get("webhook-signature") ?? "").split(" ").filter((s) => s !== "").length;
    if (verdict.ok && signatures > 1) extras.push(`${signatures} signatures`);

    let failing: string | null = null;
    if (requestsOnPath <= failFirst) failing = `--fail ${requestsOnPath} of ${failFirst}`;
    else if (failRate > 0 && random() < failRate) failing = `--fail-rate ${failRate}`;
    if (failing !== null) {
      tally.failedOnPurpose++;
      extras.push(`answered 500 on purpose (${failing})`);
    }
    if (verdict.ok) tally.verified++;
    else tally.notVerified++;

    const status = failing !== null ? 500 : verdict.ok ? 204 : 400;
    const id = `#${webhookId}`.padEnd(6);
    let line: string;
    if (verdict.ok) {
      const d = verdict.message.data;
      line = `${time()}  ${status}  ${id}  ${d.type.padEnd(21)}  ${d.entity_id.padEnd(16)}  ${`v${d.version}`.padEnd(4)}  [${d.changed.join(", ")}]  ${describeEntity(verdict.message)}`;
    } else {
      line = `${time()}  ${status}  ${id}  not verified: ${verdict.reason}${claimed(body)}`;
    }
    options.print(extras.length > 0 ? `${line}  ${extras.join("  ")}` : line);

    if (failing !== null) return text(500, `failing on purpose (${failing})\n`);
    if (!verdict.ok) return text(400, `${verdict.reason}\n`);
    return new Response(null, { status: 204 });
  }

  return { handle, tally: () => ({ ...tally }) };
}

/** What an unverified body says it is (type and entity id), to find the sender's message: never trusted. */
function claimed(body: string): string {
  try {
    const m = JSON.parse(body) as { type?: unknown; data?: { entity_id?: unknown } };
    if (typeof m.type === "string" && typeof m.data?.entity_id === "string") return `  (claims ${m.type} ${m.data.entity_id})`;
  } catch {
    // not JSON: nothing to say
  }
  return "";
}

export function formatTally(t: ListenerTally): string {
  const parts = [`${t.verified} verified`, `${t.notVerified} not verified`];
  if (t.failedOnPurpose > 0) parts.push(`${t.failedOnPurpose} answered 500 on purpose`);
  if (t.otherRequests > 0) parts.push(`${t.otherRequests} other request${t.otherRequests === 1 ? "" : "s"}`);
  return parts.join(", ");
}
