// One structured line per callback. Only fixed fields: never a key, token, password or payload.
import { LOG_LEVELS, type LogLevel } from "../config";
import type { Cost } from "../ingest/cost";

export interface CallbackLogLine {
  /** The envelope's eventType once the envelope parsed (a known type), else null. */
  eventType: string | null;
  code: string;
  outcome: string;
  /** The precise refusal reason, for the operator (a fixed token or a field name, never a value). */
  reason?: string | null;
  /** Which setting to change, when a signature verifies under the other algorithm. */
  hint?: string;
  entityId?: string | null;
  /** Replay-guard shard the nonce belongs to, once the guard was consulted. */
  shard?: number | null;
  durationMs: number;
  /** Names of the secrets whose `*_PREVIOUS` value authenticated or opened this request (a rotation). */
  previousKeys?: string[];
  /** A refused payload leaves an audit row once per replay key: written now, or already there. */
  audit?: "written" | "already";
  /** What the request cost in storage (D1 statements and rows, the event ledger's rows), once it was ingested. */
  cost?: Cost;
}

/**
 * Writes the line if its level reaches `threshold`; the fields every line has are always present, null
 * when they do not apply.
 */
export function logCallback(line: CallbackLogLine, threshold: LogLevel = "log"): void {
  const level: LogLevel = Number(line.code) >= 500 ? "error" : line.code !== "200" ? "warn" : "log";
  if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(threshold)) return;
  const { previousKeys, ...rest } = line;
  const record = {
    msg: "callback",
    ...rest,
    reason: line.reason ?? null,
    entityId: line.entityId ?? null,
    shard: line.shard ?? null,
    ...(previousKeys && previousKeys.length > 0 ? { previousKeys } : {}),
  };
  console[level](JSON.stringify(record));
}
