// Checking management API input: one field at a time, each problem a 400 naming the field. Limits are the
// callback contract's (src/protocol/events.ts LIMITS), so whatever the emulator accepts the receiver can hold.
import { LIMITS } from "../../src/protocol/events";
import { errors } from "./errors";
import type { Scalar } from "./state";

export type Body = Record<string, unknown>;

/** The request body as a JSON object (whatever the Content-Type says: curl's -d sends a form type). */
export function jsonObject(text: string): Body {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errors.body();
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw errors.body();
  return value as Body;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

function boundedText(field: string, value: string, max: number): string {
  if (value.trim() === "") throw errors.invalid(field, "must not be empty");
  if (CONTROL.test(value)) throw errors.invalid(field, "must not contain control characters");
  if ([...value].length > max) throw errors.invalid(field, `exceeds ${max} characters`);
  return value;
}

/** A required, non-empty string of at most `max` characters. */
export function requiredText(body: Body, field: string, max: number): string {
  const v = body[field];
  if (v === undefined || v === null || v === "") throw errors.required(field);
  if (typeof v !== "string") throw errors.invalid(field, "must be a string");
  return boundedText(field, v, max);
}

/** Absent → undefined; present → a non-empty string of at most `max` characters. */
export function optionalText(body: Body, field: string, max: number): string | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw errors.invalid(field, "must be a string");
  return boundedText(field, v, max);
}

/** Absent → undefined; null or "" → null ("none"); otherwise a string. */
export function optionalReference(body: Body, field: string): string | null | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (v === null || v === "") return null;
  if (typeof v !== "string") throw errors.invalid(field, "must be a string");
  return v;
}

export function optionalBoolean(body: Body, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw errors.invalid(field, "must be true or false");
  return v;
}

/** A password, never echoed: absent, null or "" → undefined (no password). */
export function optionalPassword(body: Body, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw errors.invalid(field, "must be a string");
  if (v.length > 256) throw errors.invalid(field, "exceeds 256 characters");
  return v;
}

/** Organization codes: letters (any script), digits, `_` and `-`. */
export const ORG_CODE = /^[\p{L}\p{N}_-]+$/u;

export function orgCode(body: Body, field: string): string {
  const code = requiredText(body, field, LIMITS.code);
  if (!ORG_CODE.test(code)) throw errors.invalid(field, "may contain only letters, digits, _ and -");
  return code;
}

/**
 * Extension keys named like the contract's optional user attributes travel as those attributes (OneAccess
 * maps account model attributes onto the event by name); every other key is an extension attribute.
 */
export const STANDARD_USER_ATTRIBUTES: Readonly<Record<string, number>> = {
  firstName: LIMITS.namePart,
  middleName: LIMITS.namePart,
  lastName: LIMITS.namePart,
  mobile: LIMITS.mobile,
  email: LIMITS.email,
};

/** Keys the event itself uses: an extension attribute cannot take their place. */
export const RESERVED_KEYS = new Set(["id", "username", "name", "organizationId", "password", "disabled", "code", "parentId"]);

const EXTENSION_KEY = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * The `extension` object: up to 64 keys (letters, digits, `_`), each a string, number or boolean; null is
 * allowed where `allowNull` (a modify: it removes the key). Absent → undefined.
 */
export function extension(body: Body, allowNull: boolean): Record<string, Scalar | null> | undefined {
  const v = body.extension;
  if (v === undefined) return undefined;
  if (v === null && !allowNull) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw errors.invalid("extension", "must be an object");
  const out: Record<string, Scalar | null> = {};
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > LIMITS.extensionCount) throw errors.invalid("extension", `has more than ${LIMITS.extensionCount} keys`);
  for (const [key, value] of entries) {
    const field = `extension.${key}`;
    if (!EXTENSION_KEY.test(key) || key.length > LIMITS.extensionName) {
      throw errors.invalid("extension", `key ${JSON.stringify(key)} must be letters, digits and _ (starting with a letter, at most ${LIMITS.extensionName})`);
    }
    if (RESERVED_KEYS.has(key)) throw errors.invalid(field, "is reserved: it is a field of the event itself");
    if (value === null) {
      if (!allowNull) continue;
      out[key] = null;
    } else if (key in STANDARD_USER_ATTRIBUTES) {
      if (typeof value !== "string") throw errors.invalid(field, "must be a string");
      out[key] = boundedText(field, value, STANDARD_USER_ATTRIBUTES[key]!);
    } else if (typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) {
      out[key] = value;
    } else {
      throw errors.invalid(field, "must be a string, a number or a boolean");
    }
  }
  return out;
}

/** Merged extension attributes stay within the contract's bounds. */
export function checkExtensionSize(ext: Record<string, Scalar>): void {
  if (Object.keys(ext).length > LIMITS.extensionCount) throw errors.invalid("extension", `has more than ${LIMITS.extensionCount} keys`);
  if (new TextEncoder().encode(JSON.stringify(ext)).length > LIMITS.extensionBytes) {
    throw errors.invalid("extension", `exceeds ${LIMITS.extensionBytes} bytes`);
  }
}

/** Paging as OneAccess's list APIs take it: `offset` (page number, from 0) and `limit` (1–100), both required. */
export function paging(query: (name: string) => string | undefined, required = true): { offset: number; limit: number } {
  const read = (name: string, min: number, max: number, fallback: number) => {
    const v = query(name);
    if (v === undefined || v === "") {
      if (required) throw errors.required(name);
      return fallback;
    }
    if (!/^[0-9]{1,9}$/.test(v) || Number(v) < min || Number(v) > max) throw errors.invalid(name, `must be an integer from ${min} to ${max}`);
    return Number(v);
  };
  return { offset: read("offset", 0, 1_000_000, 0), limit: read("limit", 1, 100, 100) };
}

export function page<T>(items: readonly T[], p: { offset: number; limit: number }): T[] {
  return items.slice(p.offset * p.limit, (p.offset + 1) * p.limit);
}
