// Section 1 of the contract: the strict five-key envelope.
import { badRequest, ok, type Result } from "./failures";

export const EVENT_TYPES = [
  "CHECK_URL",
  "CREATE_ORGANIZATION",
  "UPDATE_ORGANIZATION",
  "DELETE_ORGANIZATION",
  "CREATE_USER",
  "UPDATE_USER",
  "DELETE_USER",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface Envelope {
  nonce: string;
  /** The timestamp's digits exactly as received: they are what was signed. */
  timestampText: string;
  /** The timestamp in milliseconds (10 digits are seconds, 13 digits milliseconds; nothing else is accepted). */
  timestampMs: number;
  /** As received, stray spaces included: it is what was signed. */
  eventTypeRaw: string;
  eventType: EventType;
  /** As transmitted: ciphertext when encryption is on. A JSON-object `data` is kept as its own text. */
  data: string;
  /** True when `data` arrived as a JSON object (allowed only without encryption). */
  dataWasObject: boolean;
  signature: string;
}

const KEYS = ["nonce", "timestamp", "eventType", "data", "signature"] as const;
const MAX_NONCE_LENGTH = 128;

/**
 * Parses the request body text. `rawBody` is the exact text received; a `data` object is re-extracted from
 * it verbatim so that a signature over the transmitted characters can still be checked.
 */
export function parseEnvelope(rawBody: string): Result<Envelope> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawBody);
  } catch {
    return badRequest("body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return badRequest("body must be a JSON object");
  }
  const body = parsed as Record<string, unknown>;
  const spans = topLevelValueSpans(rawBody);
  if (spans === null) return badRequest("duplicate field in envelope");
  for (const key of Object.keys(body)) {
    if (!(KEYS as readonly string[]).includes(key)) return badRequest("unexpected field in envelope");
  }
  for (const key of KEYS) {
    if (!Object.hasOwn(body, key)) return badRequest(`${key} is required`);
  }

  const { nonce, timestamp, eventType, data, signature } = body;
  if (typeof nonce !== "string" || nonce.length === 0) return badRequest("nonce must be a non-empty string");
  if (nonce.length > MAX_NONCE_LENGTH) return badRequest(`nonce exceeds ${MAX_NONCE_LENGTH} characters`);

  let timestampText: string;
  if (typeof timestamp === "number") {
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) return badRequest("timestamp must be an integer");
    timestampText = String(timestamp);
  } else if (typeof timestamp === "string") {
    timestampText = timestamp;
  } else {
    return badRequest("timestamp must be an integer");
  }
  // Seconds or milliseconds, nothing in between: 11 or 12 digits would be read as a time centuries ahead.
  if (!/^(?:[0-9]{10}|[0-9]{13})$/.test(timestampText)) return badRequest("timestamp must have 10 or 13 digits");
  const value = Number(timestampText);
  const timestampMs = timestampText.length === 13 ? value : value * 1000;

  if (typeof eventType !== "string") return badRequest("eventType must be a string");
  const trimmed = eventType.trim();
  if (!(EVENT_TYPES as readonly string[]).includes(trimmed)) return badRequest("unknown eventType");

  let dataText: string;
  let dataWasObject = false;
  if (typeof data === "string") {
    dataText = data;
  } else if (typeof data === "object" && data !== null && !Array.isArray(data)) {
    // Signed as transmitted: the object's exact characters, not a re-serialisation.
    dataText = spans.get("data") ?? JSON.stringify(data);
    dataWasObject = true;
  } else {
    return badRequest("data must be a string");
  }

  if (typeof signature !== "string") return badRequest("signature must be a string");

  return ok({
    nonce,
    timestampText,
    timestampMs,
    eventTypeRaw: eventType,
    eventType: trimmed as EventType,
    data: dataText,
    dataWasObject,
    signature,
  });
}

/** The window check, both directions: `toleranceSeconds` 0 turns it off. */
export function withinWindow(timestampMs: number, nowMs: number, toleranceSeconds: number): boolean {
  if (toleranceSeconds === 0) return true;
  return Math.abs(nowMs - timestampMs) <= toleranceSeconds * 1000;
}

/**
 * Maps each top-level key of an already validated JSON object text to the exact source span of its value.
 * Returns `null` when a key repeats (JSON.parse would silently keep the last one).
 */
function topLevelValueSpans(text: string): Map<string, string> | null {
  const spans = new Map<string, string>();
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const skipString = () => {
    i++; // opening quote
    // Jump from quote to quote (a Base64 `data` has none inside); a quote after an odd run of backslashes
    // is escaped and belongs to the string.
    for (;;) {
      const quote = text.indexOf('"', i);
      if (quote < 0) {
        i = text.length; // unreachable for text JSON.parse accepted
        return;
      }
      let backslashes = 0;
      while (quote - 1 - backslashes >= i && text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
      i = quote + 1;
      if (backslashes % 2 === 0) return;
    }
  };
  const skipValue = () => {
    const c = text[i];
    if (c === '"') return skipString();
    if (c === "{" || c === "[") {
      let depth = 0;
      do {
        const d = text[i];
        if (d === '"') {
          skipString();
          continue;
        }
        if (d === "{" || d === "[") depth++;
        else if (d === "}" || d === "]") depth--;
        i++;
      } while (depth > 0);
      return;
    }
    while (i < text.length && !",}] \t\n\r".includes(text[i]!)) i++;
  };
  ws();
  i++; // {
  ws();
  while (text[i] === '"') {
    const keyStart = i;
    skipString();
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    if (spans.has(key)) return null;
    ws();
    i++; // :
    ws();
    const valueStart = i;
    skipValue();
    spans.set(key, text.slice(valueStart, i));
    ws();
    if (text[i] === ",") {
      i++;
      ws();
    }
  }
  return spans;
}
