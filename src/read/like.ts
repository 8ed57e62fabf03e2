// LIKE patterns from user text. D1 refuses a LIKE pattern longer than 50 bytes ("LIKE or GLOB pattern too
// complex", SQLite's LIKE pattern length limit, checked only when a row is compared): the parameter check
// (params.ts) and the query (queries.ts) build the pattern the same way, so what passes the check runs.

/** Longest LIKE pattern D1 runs, in bytes of UTF-8 (test/api/like-limit.test.ts measures it). */
export const LIKE_PATTERN_MAX_BYTES = 50;

/** `text` with the escape character and both wildcards escaped (used with `ESCAPE '\'`). */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

/** `%text%` for LIKE: a substring match. */
export function containsPattern(text: string): string {
  return `%${escapeLike(text)}%`;
}

/** The longest term `containsPattern` can wrap: the pattern's two `%` take two of its bytes. */
export const CONTAINS_TERM_MAX_BYTES = LIKE_PATTERN_MAX_BYTES - 2;

export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}
