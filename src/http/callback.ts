// POST /callback: the order of checks is the contract's, and a 200 is sent only once the change and its
// replay record are durable.
import { Hono, type Context } from "hono";
import type { Config } from "../config";
import { forReplayStore, passwordWrite, recordDelivery, type ApplyContext } from "../directory/apply-event";
import { checkBearer, authenticateEnvelope, openEnvelope, sealReply, type Opened, type SealContext } from "../protocol/callback";
import { sha256, toHex } from "../protocol/codec";
import type { Envelope } from "../protocol/envelope";
import { toWire, type Failure, type Result, type WireCode } from "../protocol/failures";
import { shardFor, shardName } from "../replay/shard";
import { replayTtlMs } from "../replay/ttl";
import type { GuardedOutcome, GuardedWork, StoredReply } from "../replay/types";
import { isJsonContentType, readBodyLimited } from "./body";
import { diagnostics } from "./diagnostics";
import { logCallback, type CallbackLogLine } from "./log";
import { requireConfig } from "./middleware";
import type { AppEnv } from "./types";

export const callback = new Hono<AppEnv>();

const NO_SEAL: SealContext = { encryption: "none" };

function answer(c: Context<AppEnv>, body: { code: WireCode; message: string; data: string }, headers?: Record<string, string>) {
  return c.json(body, Number(body.code) as 200, headers);
}

type LineExtras = Pick<CallbackLogLine, "shard" | "previousKeys" | "audit">;

/** The log line of a refusal: the precise reason (and a signature hint) for the operator, never a value. */
function refusalLine(failure: Failure, started: number, eventType: string | null, extra: LineExtras = {}): CallbackLogLine {
  return {
    eventType,
    code: toWire(failure).code,
    outcome: failure.kind,
    reason: "reason" in failure ? failure.reason : failure.kind === "bad-request" ? failure.message : null,
    ...(failure.kind === "unauthorized" && failure.hint ? { hint: failure.hint } : {}),
    durationMs: Date.now() - started,
    ...extra,
  };
}

function refuse(c: Context<AppEnv>, failure: Failure, started: number, eventType: string | null = null, extra: LineExtras = {}) {
  // A 405 is answered without loading the configuration (no middleware on that route): default level.
  const config = c.get("config") as Config | undefined;
  logCallback(refusalLine(failure, started, eventType, extra), config?.logLevel);
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

  if (!isJsonContentType(c.req.header("content-type"))) return refuse(c, { kind: "unsupported-media-type" }, started);
  const body = await readBodyLimited(c.req.raw, config.maxBodyBytes);
  if (!body.ok) return refuse(c, body.failure, started);
  const bearer = checkBearer(c.req.header("authorization") ?? null, settings.bearerTokens);
  if (!bearer.ok) {
    diagnostics.lastAuthFailure = { reason: "bearer token", at: new Date().toISOString() };
    return refuse(c, bearer.failure, started);
  }
  const auth = await authenticateEnvelope(settings, body.value.text, Date.now(), bearer.value);
  if (!auth.ok) {
    const f = auth.failure;
    if (f.kind === "unauthorized") {
      diagnostics.lastAuthFailure = { reason: f.reason, at: new Date().toISOString() };
      // The hint also goes to the request's one log line (refusalLine).
      if (f.hint) diagnostics.signatureHint = { hint: f.hint, at: new Date().toISOString() };
    }
    return refuse(c, f, started);
  }
  const envelope = auth.value.envelope;
  const keysUsed = (seal?: SealContext) => previousKeysUsed(bearer.value, auth.value.signingKeyIndex, seal);

  if (envelope.eventType === "CHECK_URL") return checkUrl(c, envelope, started, keysUsed);

  // Open and check the payload before anything is stored: verification came first, and a request that does
  // not open is refused here (400: its audit row and reply are still recorded below, like any reply).
  const opened = await openEnvelope(settings, envelope);
  let work: GuardedWork;
  let seal: SealContext = NO_SEAL;
  let reason: string | null = null;
  if (!opened.ok) {
    const wire = toWire(opened.failure);
    if (wire.code !== "400") return refuse(c, opened.failure, started, envelope.eventType, { previousKeys: keysUsed() });
    reason = refusalLine(opened.failure, started, null).reason ?? null;
    work = { kind: "refuse", eventType: envelope.eventType, code: "400", message: wire.message, receivedAtMs: started };
  } else if (opened.value.event.type === "CHECK_URL") {
    throw new Error("unreachable: CHECK_URL is answered above");
  } else {
    seal = opened.value.seal;
    const event = opened.value.event;
    const context: ApplyContext = {
      nonce: envelope.nonce,
      eventTimestampMs: envelope.timestampMs,
      receivedAtMs: started,
      password: await passwordWrite(event, config.passwordPolicy),
    };
    // The password never leaves the Worker: the store gets what the directory does with it.
    work = { kind: "apply", event: forReplayStore(event), context };
  }

  // The replay guard: ONE call to the nonce's Durable Object reserves the nonce, applies the event (one D1
  // batch) and records the reply, or says the nonce was seen before.
  const shard = shardFor(envelope.nonce, config.replayShards);
  const guard = c.env.REPLAY_GUARD.get(c.env.REPLAY_GUARD.idFromName(shardName(shard)));
  const bodyHash = toHex(await sha256(body.value.bytes));
  let result: GuardedOutcome;
  try {
    result = await guard.process({ nonce: envelope.nonce, bodyHash, ttlMs: replayTtlMs(settings.toleranceSeconds), work });
  } catch (e) {
    return refuse(c, { kind: "internal", reason: `replay store unreachable: ${errorName(e)}` }, started, envelope.eventType, {
      shard,
      previousKeys: keysUsed(),
    });
  }
  switch (result.state) {
    case "conflict":
      return refuse(c, { kind: "unauthorized", reason: "replay-different-body" }, started, envelope.eventType, { shard, previousKeys: keysUsed() });
    case "in-flight":
      return refuse(c, { kind: "in-flight" }, started, envelope.eventType, { shard, previousKeys: keysUsed() });
    case "failed":
      return refuse(c, { kind: "internal", reason: `storage failed: ${result.error}` }, started, envelope.eventType, { shard, previousKeys: keysUsed() });
    case "committed":
      return resend(c, envelope, result.reply, opened, started, shard, keysUsed);
    case "done":
      break;
  }
  const stored = result.reply;
  const reply = await sealReply(settings, seal, stored.code as WireCode, stored.message, stored.plaintext);
  logCallback({
    eventType: envelope.eventType,
    code: stored.code,
    // 200 with another message ("already applied", "nothing to delete"…) changed nothing.
    outcome: stored.code !== "200" ? "refused" : stored.message === "success" ? "applied" : "ignored",
    reason: reason ?? (stored.code === "200" ? null : stored.message),
    entityId: result.entityId,
    shard,
    durationMs: Date.now() - started,
    previousKeys: keysUsed(seal),
  }, config.logLevel);
  return answer(c, reply);
}

callback.all("/", (c) => refuse(c, { kind: "method-not-allowed" }, Date.now()));

/** Error class names only: a D1 or DO error message could quote the statement's values. */
function errorName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}

function delivery(envelope: Envelope, outcome: { code: string; message: string; entityId: string | null }, started: number) {
  return {
    receivedAtMs: started,
    eventType: envelope.eventType,
    nonce: envelope.nonce,
    code: outcome.code,
    message: outcome.message,
    entityId: outcome.entityId,
    durationMs: Date.now() - started,
  };
}

type KeysUsed = (seal?: SealContext) => string[];

/**
 * An exact duplicate: the first reply again, re-sealed with a fresh IV and the key the request opens with;
 * nothing is applied. If the request no longer opens (its encryption key was rotated out since), it is
 * refused like a new request would be: the stored reply is never sent unsealed.
 */
async function resend(
  c: Context<AppEnv>,
  envelope: Envelope,
  stored: StoredReply,
  opened: Result<Opened>,
  started: number,
  shard: number,
  keysUsed: KeysUsed,
) {
  const settings = c.get("config").protocol;
  let seal: SealContext = NO_SEAL;
  if (stored.plaintext !== "" && settings.encryption !== "none") {
    if (!opened.ok) return refuse(c, opened.failure, started, envelope.eventType, { shard, previousKeys: keysUsed() });
    seal = opened.value.seal;
  }
  const reply = await sealReply(settings, seal, stored.code as WireCode, stored.message, stored.plaintext);
  logCallback({
    eventType: envelope.eventType,
    code: stored.code,
    outcome: "duplicate",
    entityId: replyEntityId(stored.plaintext),
    shard,
    durationMs: Date.now() - started,
    previousKeys: keysUsed(seal),
  }, c.get("config").logLevel);
  return answer(c, reply);
}

/** The id in a stored `{"id": ...}` reply, for the log line; null for an empty reply. */
function replyEntityId(plaintext: string): string | null {
  if (plaintext === "") return null;
  try {
    const id = (JSON.parse(plaintext) as { id?: unknown }).id;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}

/** CHECK_URL: echo the random string, re-sealed. No replay record: answering it changes nothing. */
async function checkUrl(c: Context<AppEnv>, envelope: Envelope, started: number, keysUsed: KeysUsed) {
  const config = c.get("config");
  const settings = config.protocol;
  const opened = await openEnvelope(settings, envelope);
  // The audit row is written off the response path, and the request's one log line after it, saying
  // whether the row was written (a failure is logged, not answered). A failed CHECK_URL is the first thing
  // an integrator hits, so it is audited too.
  const auditThenLog = (code: string, message: string, line: CallbackLogLine) =>
    c.executionCtx.waitUntil(
      recordDelivery(c.env.DB, delivery(envelope, { code, message, entityId: null }, started)).then(
        () => logCallback({ ...line, audit: "written" }, config.logLevel),
        (e) => logCallback({ ...line, audit: "failed", reason: line.reason ?? `audit write failed: ${errorName(e)}` }, config.logLevel),
      ),
    );
  if (!opened.ok || opened.value.event.type !== "CHECK_URL") {
    const failure: Failure = opened.ok ? { kind: "internal", reason: "unreachable" } : opened.failure;
    const wire = toWire(failure);
    const extra = { previousKeys: keysUsed() };
    if (wire.code !== "400") return refuse(c, failure, started, envelope.eventType, extra);
    auditThenLog(wire.code, wire.message, refusalLine(failure, started, envelope.eventType, extra));
    return answer(c, { ...wire, data: "" });
  }
  const reply = await sealReply(settings, opened.value.seal, "200", "success", opened.value.event.echo);
  auditThenLog("200", "success", {
    eventType: "CHECK_URL",
    code: "200",
    outcome: "echoed",
    durationMs: Date.now() - started,
    previousKeys: keysUsed(opened.value.seal),
  });
  return answer(c, reply);
}
