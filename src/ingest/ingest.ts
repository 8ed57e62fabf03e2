// Ingest: the one call the callback route makes for an authenticated request. It prepares the work (the
// event to apply, a CHECK_URL to echo, or a payload refused after authentication), hands it to the event
// ledger object of the request's replay key, and returns the ledger's outcome.
import type { Config } from "../config";
import { passwordIntent } from "../directory/passwords";
import type { Opened } from "../protocol/callback";
import type { Envelope } from "../protocol/envelope";
import type { DirectoryEvent } from "../protocol/events";
import { toWire, type Failure, type Result } from "../protocol/failures";
import type { EventLedger } from "./event-ledger";
import { shardFor, shardName } from "./shard";
import { replayTtlMs } from "./ttl";
import type { LedgerOutcome, Work } from "./types";

export interface IngestRequest {
  /** What was signed (protocol/callback.ts): the ledger's key, and the shard it lands on. */
  replayKey: string;
  envelope: Envelope;
  /** The opened payload, or why it was refused after authentication (a 400). */
  opened: Result<Opened>;
  receivedAtMs: number;
}

export interface Ingested {
  shard: number;
  outcome: LedgerOutcome;
}

/** Throws when the ledger cannot be reached (nothing was done: the route answers 500). */
export async function ingest(ledger: DurableObjectNamespace<EventLedger>, config: Config, request: IngestRequest): Promise<Ingested> {
  const { replayKey, envelope, opened, receivedAtMs } = request;
  const shard = shardFor(replayKey, config.replayShards);
  const stub = ledger.get(ledger.idFromName(shardName(shard)), { locationHint: config.placement?.ledger });
  const work = workOf(envelope, opened, config);
  const outcome = await stub.processOnce({ key: replayKey, ttlMs: replayTtlMs(config.protocol.toleranceSeconds), nonce: envelope.nonce, receivedAtMs, work });
  return { shard, outcome };
}

function workOf(envelope: Envelope, opened: Result<Opened>, config: Config): Work {
  if (!opened.ok) return refusal(envelope, opened.failure);
  const event = opened.value.event;
  if (event.type === "CHECK_URL") return { kind: "echo", echo: event.echo };
  // The password travels only when it is to be hashed (pbkdf2); the ledger hashes it once the key is new.
  return { kind: "apply", event: withoutPassword(event), eventTimestampMs: envelope.timestampMs, password: passwordIntent(event, config.passwordPolicy) };
}

function refusal(envelope: Envelope, failure: Failure): Work {
  return { kind: "refuse", eventType: envelope.eventType, message: toWire(failure).message };
}

/**
 * The event as the ledger gets it: without its password (the password intent carries what the directory
 * needs), and with its extension attributes in a plain object (the parser builds them without a prototype,
 * which RPC does not clone).
 */
function withoutPassword(event: DirectoryEvent): DirectoryEvent {
  switch (event.type) {
    case "CREATE_USER":
    case "UPDATE_USER": {
      const { password: _dropped, ...user } = event.user;
      return { ...event, user: { ...user, extensions: { ...user.extensions } } } as DirectoryEvent;
    }
    case "CREATE_ORGANIZATION":
    case "UPDATE_ORGANIZATION":
      return { ...event, org: { ...event.org, extensions: { ...event.org.extensions } } } as DirectoryEvent;
    default:
      return event;
  }
}
