// Query parameters of the read API: each one checked before any SQL runs, and a bad one answered 400 with a
// message naming it. Values only ever reach SQL as bound parameters.
import { decodeCursor, type CursorKey, type CursorList } from "./cursor";
import { CONTAINS_TERM_MAX_BYTES, escapeLike, utf8Length } from "./like";

export const LIMIT_DEFAULT = 50;
export const LIMIT_MAX = 200;
/** Longest id accepted in a filter or a path: ours are 16 characters; anything much longer is not one. */
export const ID_MAX = 200;

/** A parameter the route cannot use: the message names it and is safe to show. */
export class BadParameter extends Error {
  override name = "BadParameter";
  constructor(readonly parameter: string, message: string) {
    super(message);
  }
}

/**
 * The query string as a map, refusing a parameter the route does not know (a typo such as `org=` would
 * otherwise silently return everything) and a parameter given twice (which value would win is a guess).
 */
export function queryParameters(url: URL, allowed: readonly string[]): Map<string, string> {
  const params = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    if (!allowed.includes(name)) {
      const shown = name.length > 40 ? `${name.slice(0, 40)}…` : name;
      throw new BadParameter(name, `unknown parameter ${JSON.stringify(shown)}; this route takes ${allowed.join(", ")}`);
    }
    if (params.has(name)) throw new BadParameter(name, `${name} must be given at most once`);
    params.set(name, value);
  }
  return params;
}

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return LIMIT_DEFAULT;
  const n = /^[0-9]{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= LIMIT_MAX)) throw new BadParameter("limit", `limit must be an integer from 1 to ${LIMIT_MAX}`);
  return n;
}

/** A cursor of `list`, from the parameter `name` (`cursor` for the lists, `after` for the change feed). */
export function parseCursor(list: CursorList, raw: string | undefined, name = "cursor"): CursorKey | null {
  if (raw === undefined) return null;
  const key = decodeCursor(list, raw);
  if (key === null) throw new BadParameter(name, `${name} is invalid`);
  return key;
}

export function parseBoolean(name: string, raw: string | undefined): boolean {
  if (raw === undefined) return false;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new BadParameter(name, `${name} must be true or false`);
}

/**
 * `q`: empty means no search (a submitted empty search box). The trimmed term becomes a LIKE pattern
 * (like.ts), which D1 caps in bytes: the limit is on the term as escaped, so any term accepted here runs.
 */
export function parseSearch(raw: string | undefined): string | null {
  if (raw === undefined || raw.trim() === "") return null;
  const term = raw.trim();
  if (utf8Length(escapeLike(term)) > CONTAINS_TERM_MAX_BYTES) {
    throw new BadParameter("q", `q must be at most ${CONTAINS_TERM_MAX_BYTES} bytes of UTF-8 (after escaping \\ % _)`);
  }
  return term;
}

export function parseId(name: string, raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (raw === "") throw new BadParameter(name, `${name} must not be empty`);
  if (raw.length > ID_MAX) throw new BadParameter(name, `${name} must be at most ${ID_MAX} characters`);
  return raw;
}

/** A reply code as the audit log stores it: three digits. */
export function parseCode(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (!/^[1-5][0-9]{2}$/.test(raw)) throw new BadParameter("code", "code must be a 3-digit reply code such as 200 or 404");
  return raw;
}
