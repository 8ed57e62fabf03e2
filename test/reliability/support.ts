// Shared by the reliability families (issue #7): how many runs, the summary line each family prints, a
// console capture for leak checks, and a directory view that two namespaces (or a model) can be compared in.
import type { TestContext } from "vitest";
import { vi } from "vitest";
import type { OrgRecord, UserRecord } from "../../src/directory/rules";
import { readDirectory, type DirectorySnapshot } from "../../src/directory/snapshot";
import { testEnv } from "../helpers/worker";

/**
 * fast-check runs per property: RELIABILITY_RUNS from the environment (vitest.config.ts passes it as a
 * binding, workerd having no process.env), 1 000 by default. The other families scale from it.
 */
export const RUNS = (() => {
  const raw = (testEnv as unknown as { RELIABILITY_RUNS?: string }).RELIABILITY_RUNS ?? "";
  const n = Number(raw);
  return raw !== "" && Number.isInteger(n) && n > 0 ? n : 1000;
})();

/** The real console.log, kept before any test replaces it with a capture. */
const print = console.log.bind(console);

/**
 * Prints the family's one summary line (`reliability: <family> key=value …`) and publishes it as a
 * test annotation, which test/reliability/summary-reporter.ts prints again at the end of the run.
 */
export async function summarize(
  context: Pick<TestContext, "annotate">,
  family: string,
  figures: Record<string, number | string>,
): Promise<string> {
  const line = `reliability: ${family} ${Object.entries(figures)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}`;
  print(line);
  await context.annotate(line, "reliability");
  return line;
}

export interface Captured {
  level: string;
  text: string;
}

/** Replaces every console method with a recorder until `restore()`; returns the live list of lines. */
export function captureConsole(): { lines: Captured[]; restore: () => void } {
  const lines: Captured[] = [];
  const spies = (["log", "info", "warn", "error", "debug"] as const).map((level) =>
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      lines.push({ level, text: args.map((a) => (typeof a === "string" ? a : safeJson(a))).join(" ") });
    }),
  );
  return { lines, restore: () => spies.forEach((s) => s.mockRestore()) };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// --- directory views -------------------------------------------------------------------------------

export interface OrgView {
  code: string;
  name: string;
  /** The parent's code (not its id, which differs between namespaces), or null. */
  parent: string | null;
  extensions: Record<string, unknown>;
}

export interface UserViewByKey {
  username: string;
  name: string;
  /** The organization's code, or null. */
  org: string | null;
  disabled: boolean;
  firstName: string | null;
  middleName: string | null;
  lastName: string | null;
  mobile: string | null;
  email: string | null;
  extensions: Record<string, unknown>;
}

export interface KeyedDirectory {
  organizations: OrgView[];
  users: UserViewByKey[];
}

/**
 * The live directory restricted to codes and usernames starting with `prefix`, with ids replaced by the
 * code they name (ids are random, so two namespaces can only be compared this way) and the prefix removed.
 */
export async function keyedDirectory(prefix: string, snapshot?: DirectorySnapshot): Promise<KeyedDirectory> {
  const all = snapshot ?? (await readDirectory(testEnv.DB));
  return keyed(all, prefix);
}

export function keyed(all: { organizations: OrgRecord[]; users: UserRecord[] }, prefix: string): KeyedDirectory {
  const codeOf = new Map(all.organizations.map((o) => [o.id, o.code]));
  const strip = (s: string) => (s.startsWith(prefix) ? s.slice(prefix.length) : s);
  const ref = (id: string | null) => (id === null ? null : strip(codeOf.get(id) ?? `missing:${id}`));
  return {
    organizations: all.organizations
      .filter((o) => o.code.startsWith(prefix))
      .map((o) => ({ code: strip(o.code), name: o.name, parent: ref(o.parentId), extensions: { ...o.extensions } }))
      .sort((a, b) => (a.code < b.code ? -1 : 1)),
    users: all.users
      .filter((u) => u.username.startsWith(prefix))
      .map((u) => ({
        username: strip(u.username),
        name: u.name,
        org: ref(u.organizationId),
        disabled: u.disabled,
        firstName: u.firstName,
        middleName: u.middleName,
        lastName: u.lastName,
        mobile: u.mobile,
        email: u.email,
        extensions: { ...u.extensions },
      }))
      .sort((a, b) => (a.username < b.username ? -1 : 1)),
  };
}

/** A short unique prefix for one run's codes and usernames (storage is shared by a file's tests). */
let prefixCounter = 0;
export function runPrefix(tag: string): string {
  prefixCounter += 1;
  return `${tag}${prefixCounter.toString(36)}${Math.random().toString(36).slice(2, 6)}-`;
}
