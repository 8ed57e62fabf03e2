// POST /callback: the order of checks is the contract's (bearer, then body, then envelope, window and
// signature, then the payload), and a 200 is sent only once the change and its replay record are durable.
import { Hono, type Context } from "hono";
import type { Config } from "../config";
import { forReplayStore, passwordIntent } from "../directory/apply-event";
import { authenticateEnvelope, checkBearer, openEnvelope, sealReply, type Opened, type SealContext } from "../protocol/callback";
import type { Envelope } from "../protocol/envelope";
import { toWire, type Failure, type Result, type WireCode } from "../protocol/failures";
import { shardFor, shardName } from "../replay/shard";
import { replayTtlMs } from "../replay/ttl";
import type { GuardedOutcome, GuardedWork } from "../replay/types";
import { isJsonContentType, readBodyLimited } from "./body";
import { diagnostics, noteRefusal } from "./diagnostics";
import { logCallback, type CallbackLogLine } from "./log";
import { requireConfig } from "./middleware";
import type { AppEnv } from "./types";

export const callback = new Hono<AppEnv>();

const NO_SEAL: SealContext = { encryption: "none" };

function answer(c: Context<AppEnv>, body: { code: WireCode; message: string; data: string }, headers?: Record<string, string>) {
  return c.json(body, Number(body.code) as 200, headers);
}

type LineExtras = Pick<CallbackLogLine, "shard" | "previousKeys" | "audit">;

/** The precise reason of a refusal, for the operator (a fixed token or a field name, never a value). */
function reasonOf(failure: Failure): string | null {
  return "reason" in failure ? failure.reason : failure.kind === "bad-request" ? failure.message : null;
}

/** The log line of a refusal: the precise reason (and a signature hint) for the operator, never a value. */
function refusalLine(failure: Failure, started: number, eventType: string | null, extra: LineExtras = {}): CallbackLogLine {
  return {
    eventType,
    code: toWire(failure).code,
    outcome: failure.kind,
    reason: reasonOf(failure),
    ...(failure.kind === "unauthorized" && failure.hint ? { hint: failure.hint } : {}),
    durationMs: Date.now() - started,
    ...extra,
  };
}

function refuse(c: Context<AppEnv>, failure: Failure, started: number, eventType: string | null = null, extra: LineExtras = {}) {
  // A 405 is answered without loading the configuration (no middleware on that route): default level.
  const config = c.get("config") as Config | undefined;
  const line = refusalLine(failure, started, eventType, extra);
  logCallback(line, config?.logLevel);
  noteRefusal({ code: line.code, reason: line.reason ?? null, eventType, ...(line.hint ? { hint: line.hint } : {}) });
  return answer(c, { ...toWire(failure), data: "" }, failure.kind === "method-not-allowed" ? { Allow: "POST" } : undefined);
}

const PREVIOUS_NAMES = ["ONEACCESS_BEARER_TOKEN", "ONEACCESS_SIGNING_KEY", "ONEACCESS_ENCRYPTION_KEY"] as const;

/**
 * Which secrets' `*_PREVIOUS` value this request used (index 1 of a [current, previous] list), for the log
 * line and the health view: while a rotation is in progress, the operator cuts over once these stop.
 */
function previousKeysUsed(bearerIndex: number, signingKeyIndex: number, seal?: SealContext): string[] {
  const used = [bearerIndex > 0, signingKeyIndex > 0, seal !== undefined && seal.encryption !== "none" && seal.keyIndex > 0];
  const names = PREVIOUS_NAMES.filter((_, i) => used[i]);
  const at = new Date().toISOString();
  for (const name of names) diagnostics.previousKeyLastUsed[name] = at;
  return names;
}

callback.post("/", requireConfig(), async (c) => {
  const started = Date.now();
  try {
    return await handle(c, started);
  } catch (e) {
    // Whatever went wrong unexpectedly still gets its one log line (class name only) and a fixed 500.
    return refuse(c, { kind: "internal", reason: `unexpected: ${errorName(e)}` }, started);
  }
});

async function handle(c: Context<AppEnv>, started: number) {
  const config = c.get("config");
  const settings = config.protocol;

  // The bearer token first: nothing about an unauthenticated request is read, not even its body.
  const bearer = await checkBearer(c.req.header("authorization") ?? null, settings.bearerTokens);
  if (!bearer.ok) return refuse(c, bearer.failure, started);
  if (!isJsonContentType(c.req.header("content-type"))) return refuse(c, { kind: "unsupported-media-type" }, started);
  const body = await readBodyLimited(c.req.raw, config.maxBodyBytes);
  if (!body.ok) return refuse(c, body.failure, started);
  const auth = await authenticateEnvelope(settings, body.value.text, Date.now(), bearer.value);
  if (!auth.ok) return refuse(c, auth.failure, started);
  const { envelope, replayKey } = auth.value;
  const keysUsed = (seal?: SealContext) => previousKeysUsed(bearer.value, auth.value.signingKeyIndex, seal);

  // Open and check the payload before anything is stored: verification came first. A payload refused here
  // (400) still leaves its audit row, once per replay key, recorded apart from the key's own record.
  const opened = await openEnvelope(settings, envelope);
  let work: GuardedWork;
  let refusal: Failure | null = null;
  if (!opened.ok) {
    if (toWire(opened.failure).code !== "400") return refuse(c, opened.failure, started, envelope.eventType, { previousKeys: keysUsed() });
    refusal = opened.failure;
    work = { kind: "refuse", eventType: envelope.eventType, message: toWire(opened.failure).message };
  } else if (opened.value.event.type === "CHECK_URL") {
    work = { kind: "echo", echo: opened.value.event.echo };
  } else {
    const event = opened.value.event;
    // The password travels only when it is to be hashed (pbkdf2); the store hashes it once the key is new.
    work = { kind: "apply", event: forReplayStore(event), eventTimestampMs: envelope.timestampMs, password: passwordIntent(event, config.passwordPolicy) };
  }

  // One call to the key's Durable Object does the work once and records the reply, or answers a copy.
  const shard = shardFor(replayKey, config.replayShards);
  const store = c.env.REPLAY_GUARD.get(c.env.REPLAY_GUARD.idFromName(shardName(shard)));
  let result: GuardedOutcome;
  try {
    result = await store.process({ key: replayKey, ttlMs: replayTtlMs(settings.toleranceSeconds), nonce: envelope.nonce, receivedAtMs: started, work });
  } catch (e) {
    return refuse(c, { kind: "internal", reason: `replay store unreachable: ${errorName(e)}` }, started, envelope.eventType, {
      shard,
      previousKeys: keysUsed(),
    });
  }
  if (result.state === "failed") {
    return refuse(c, { kind: "internal", reason: `storage failed: ${result.error}` }, started, envelope.eventType, { shard, previousKeys: keysUsed() });
  }
  if (refusal !== null) {
    return refuse(c, refusal, started, envelope.eventType, { shard, previousKeys: keysUsed(), audit: result.state === "done" ? "written" : "already" });
  }
  return reply(c, envelope, opened, result, started, shard, keysUsed);
}

callback.all("/", (c) => refuse(c, { kind: "method-not-allowed" }, Date.now()));

/** Error class names only: a D1 or DO error message could quote the statement's values. */
function errorName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}

/**
 * The recorded reply, sealed like the request (same layout and key, fresh IV). A duplicate gets the first
 * reply again; nothing was applied for it.
 */
async function reply(
  c: Context<AppEnv>,
  envelope: Envelope,
  opened: Result<Opened>,
  result: Exclude<GuardedOutcome, { state: "failed" }>,
  started: number,
  shard: number,
  keysUsed: (seal?: SealContext) => string[],
) {
  const config = c.get("config");
  const seal = opened.ok ? opened.value.seal : NO_SEAL;
  const stored = result.reply;
  const sealed = await sealReply(config.protocol, seal, stored.code as WireCode, stored.message, stored.plaintext);
  logCallback(
    {
      eventType: envelope.eventType,
      code: stored.code,
      // 200 with another message ("already applied", "nothing to delete"…) changed nothing.
      outcome:
        result.state === "duplicate"
          ? "duplicate"
          : envelope.eventType === "CHECK_URL"
            ? "echoed"
            : stored.code !== "200"
              ? "refused"
              : stored.message === "success"
                ? "applied"
                : "ignored",
      reason: stored.code === "200" ? null : stored.message,
      entityId: result.state === "done" ? result.entityId : replyEntityId(stored.plaintext),
      shard,
      durationMs: Date.now() - started,
      previousKeys: keysUsed(seal),
    },
    config.logLevel,
  );
  return answer(c, sealed);
}

/** The id in a stored `{"id": ...}` reply, for the log line; null for an empty reply or an echo. */
function replyEntityId(plaintext: string): string | null {
  if (!plaintext.startsWith("{")) return null;
  try {
    const id = (JSON.parse(plaintext) as { id?: unknown }).id;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}
