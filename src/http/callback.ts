// POST /callback, top to bottom: transport checks (bearer token first, then media type and body size),
// authenticate (envelope, window, signature), open (decrypt, check the payload), ingest (one call to the
// request's event ledger, which does the work once and records the reply), reply. A 200 is sent only once
// the change and its record are durable.
import { Hono, type Context } from "hono";
import type { Config } from "../config";
import { errorName } from "../errors";
import type { Cost } from "../ingest/cost";
import { ingest } from "../ingest/ingest";
import type { LedgerOutcome } from "../ingest/types";
import { authenticateEnvelope, checkBearer, openEnvelope, sealReply, type SealContext } from "../protocol/callback";
import { toWire, type Failure, type WireCode } from "../protocol/failures";
import { isJsonContentType, readBodyLimited } from "./body";
import { diagnostics, noteRefusal } from "./diagnostics";
import { logCallback, type CallbackLogLine } from "./log";
import { requireConfig } from "./middleware";
import type { AppEnv } from "./types";

export const callback = new Hono<AppEnv>();

callback.post("/", requireConfig(), async (c) => {
  const call = new CallbackCall(c);
  try {
    return await handle(call);
  } catch (e) {
    // Whatever went wrong unexpectedly still gets its one log line (class name only) and a fixed 500.
    return call.refuse({ kind: "internal", reason: `unexpected: ${errorName(e)}` });
  }
});

callback.all("/", (c) => new CallbackCall(c).refuse({ kind: "method-not-allowed" }));

async function handle(call: CallbackCall) {
  const { c, config } = call;
  const settings = config.protocol;

  // Transport: the bearer token first, so nothing of an unauthenticated request is read, not even its body.
  const bearer = await checkBearer(c.req.header("authorization") ?? null, settings.bearerTokens);
  if (!bearer.ok) return call.refuse(bearer.failure);
  if (!isJsonContentType(c.req.header("content-type"))) return call.refuse({ kind: "unsupported-media-type" });
  const body = await readBodyLimited(c.req.raw, config.maxBodyBytes);
  if (!body.ok) return call.refuse(body.failure);

  // Authenticate: envelope, window, signature. Nothing is stored for a request refused here.
  const auth = await authenticateEnvelope(settings, body.value.text, Date.now(), bearer.value);
  if (!auth.ok) return call.refuse(auth.failure);
  const { envelope, replayKey } = auth.value;
  call.authenticated(envelope.eventType, bearer.value, auth.value.signingKeyIndex);

  // Open: decrypt and check the payload. A receive-id mismatch is an authentication failure; a payload
  // refused here (400) is still ingested, for its audit row.
  const opened = await openEnvelope(settings, envelope);
  if (!opened.ok && toWire(opened.failure).code !== "400") return call.refuse(opened.failure);

  // Ingest: one call to the replay key's event ledger.
  let outcome: LedgerOutcome;
  try {
    const ingested = await ingest(c.env.EVENT_LEDGER, config, { replayKey, envelope, opened, receivedAtMs: call.started });
    call.shard = ingested.shard;
    call.cost = ingested.outcome.cost;
    outcome = ingested.outcome;
  } catch (e) {
    return call.refuse({ kind: "internal", reason: `event ledger unreachable: ${errorName(e)}` });
  }
  if (outcome.state === "failed") return call.refuse({ kind: "internal", reason: `storage failed: ${outcome.error}` });

  // Reply.
  if (!opened.ok) return call.refuse(opened.failure, outcome.state === "done" ? "written" : "already");
  return call.reply(outcome, opened.value.seal);
}

const PREVIOUS_NAMES = ["ONEACCESS_BEARER_TOKEN", "ONEACCESS_SIGNING_KEY", "ONEACCESS_ENCRYPTION_KEY"] as const;

/**
 * One callback request as it goes: when it started, what is known of it so far (its event type once
 * authenticated, the keys it used, its shard once ingested), and its two ways out, each writing the
 * request's one log line.
 */
class CallbackCall {
  readonly started = Date.now();
  shard: number | null = null;
  cost: Cost | null = null;
  private eventType: string | null = null;
  private keyIndexes: { bearer: number; signing: number } | null = null;

  constructor(readonly c: Context<AppEnv>) {}

  /** Loaded by requireConfig on the POST route; a 405 is answered without it (default log level). */
  get config(): Config {
    return this.c.get("config");
  }

  authenticated(eventType: string, bearerIndex: number, signingKeyIndex: number): void {
    this.eventType = eventType;
    this.keyIndexes = { bearer: bearerIndex, signing: signingKeyIndex };
  }

  /** A refusal: its precise reason (and a signature hint) to the log and this instance's diagnosis, never a value. */
  refuse(failure: Failure, audit?: CallbackLogLine["audit"]) {
    const wire = toWire(failure);
    const reason = "reason" in failure ? failure.reason : failure.kind === "bad-request" ? failure.message : null;
    const hint = failure.kind === "unauthorized" ? failure.hint : undefined;
    this.log({ code: wire.code, outcome: failure.kind, reason, ...(hint ? { hint } : {}), ...(audit ? { audit } : {}) });
    noteRefusal({ code: wire.code, reason, eventType: this.eventType, ...(hint ? { hint } : {}) });
    const headers = failure.kind === "method-not-allowed" ? { Allow: "POST" } : undefined;
    return this.answer({ ...wire, data: "" }, headers);
  }

  /** The recorded reply, sealed like the request (same layout and key, fresh IV); a duplicate gets the first reply again. */
  async reply(outcome: Exclude<LedgerOutcome, { state: "failed" }>, seal: SealContext) {
    const stored = outcome.reply;
    const sealed = await sealReply(this.config.protocol, seal, stored.code as WireCode, stored.message, stored.plaintext);
    this.log(
      {
        code: stored.code,
        outcome: outcomeOf(this.eventType, outcome),
        reason: stored.code === "200" ? null : stored.message,
        entityId: outcome.state === "done" ? outcome.entityId : replyEntityId(stored.plaintext),
      },
      seal,
    );
    return this.answer(sealed);
  }

  private answer(body: { code: WireCode; message: string; data: string }, headers?: Record<string, string>) {
    return this.c.json(body, Number(body.code) as 200, headers);
  }

  private log(line: Omit<CallbackLogLine, "eventType" | "durationMs" | "shard" | "previousKeys" | "cost">, seal?: SealContext): void {
    const config = this.c.get("config") as Config | undefined;
    logCallback(
      {
        eventType: this.eventType,
        ...line,
        shard: this.shard,
        durationMs: Date.now() - this.started,
        previousKeys: this.previousKeysUsed(seal),
        ...(this.cost ? { cost: this.cost } : {}),
      },
      config?.logLevel,
    );
  }

  /**
   * Which secrets' `*_PREVIOUS` value this request used (index 1 of a [current, previous] list), for the log
   * line and the health view: while a rotation is in progress, the operator cuts over once these stop.
   */
  private previousKeysUsed(seal?: SealContext): string[] {
    if (this.keyIndexes === null) return [];
    const used = [this.keyIndexes.bearer > 0, this.keyIndexes.signing > 0, seal !== undefined && seal.encryption !== "none" && seal.keyIndex > 0];
    const names = PREVIOUS_NAMES.filter((_, i) => used[i]);
    const at = new Date().toISOString();
    for (const name of names) diagnostics.previousKeyLastUsed[name] = at;
    return names;
  }
}

/** 200 with another message ("already applied", "nothing to delete"…) changed nothing. */
function outcomeOf(eventType: string | null, outcome: Exclude<LedgerOutcome, { state: "failed" }>): string {
  if (outcome.state === "duplicate") return "duplicate";
  if (eventType === "CHECK_URL") return "echoed";
  if (outcome.reply.code !== "200") return "refused";
  return outcome.reply.message === "success" ? "applied" : "ignored";
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
