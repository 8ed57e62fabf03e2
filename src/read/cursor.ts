// Opaque pagination cursors: base64url of a small JSON object naming the list it belongs to and the last key
// the previous page ended on (keyset pagination: no OFFSET, so pages neither skip nor repeat rows while the
// directory changes). A cursor is not a secret and not signed: editing one only moves the position, and its
// key is always a bound value.

/**
 * Users and members page on user ids, organizations and children on organization ids, deliveries on row
 * ids, and the change feed (events) on row ids too: a position in the log, 0 being before its start.
 */
export type CursorList = "users" | "organizations" | "deliveries" | "events";

export type CursorKey = string | number;

const MAX_ID_LENGTH = 200;
const MAX_CURSOR_LENGTH = 400;

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string | null {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return null;
  }
}

export function encodeCursor(list: CursorList, key: CursorKey): string {
  return toBase64Url(JSON.stringify({ l: list, k: key }));
}

/** The key a cursor of `list` carries, or null when it is not one (another list's, edited, truncated). */
export function decodeCursor(list: CursorList, cursor: string): CursorKey | null {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH) return null;
  const json = fromBase64Url(cursor);
  if (json === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const { l, k } = value as { l?: unknown; k?: unknown };
  if (l !== list) return null;
  if (list === "deliveries") return typeof k === "number" && Number.isSafeInteger(k) && k > 0 ? k : null;
  if (list === "events") return typeof k === "number" && Number.isSafeInteger(k) && k >= 0 ? k : null;
  return typeof k === "string" && k.length > 0 && k.length <= MAX_ID_LENGTH ? k : null;
}
