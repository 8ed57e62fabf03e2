// D1's LIKE pattern limit, measured on the local D1, and the read API's `q` held to it: a term whose
// `%…%` pattern would be refused by D1 (a 500) is a 400 naming `q` before any query runs, on the API and on
// /admin's search box. The limit only bites once a row is compared, so every check here has rows in `users`.
import { beforeAll, describe, expect, it } from "vitest";
import { adminCookie, adminGet } from "../helpers/admin-session";
import { countD1 } from "../helpers/d1-counter";
import { testEnv } from "../helpers/worker";
import { api } from "./support";

/** The message, written out (not the source's constant). */
const LIMIT_MESSAGE = "q must be at most 48 bytes of UTF-8 (after escaping \\ % _)";

const bytes = (text: string) => new TextEncoder().encode(text).length;

let seq = 0;
async function insertUser(name: string, email: string | null = null): Promise<string> {
  const id = `usr_like${String(++seq).padStart(8, "0")}`;
  await testEnv.DB.prepare(
    "INSERT INTO users (id, username, name, email, event_ts, created_at, updated_at) VALUES (?, ?, ?, ?, 1, 1, 1)",
  )
    .bind(id, `like-user-${seq}`, name, email)
    .run();
  return id;
}

/** Whether D1 runs `name LIKE pattern ESCAPE '\'` (the read API's form) over the users table. */
async function likeRuns(pattern: string): Promise<boolean> {
  try {
    await testEnv.DB.prepare("SELECT count(*) AS n FROM users WHERE name LIKE ? ESCAPE '\\'").bind(pattern).first();
    return true;
  } catch (e) {
    if (String(e).includes("LIKE or GLOB pattern too complex")) return false;
    throw e;
  }
}

describe("D1's LIKE pattern limit (local D1)", () => {
  it("is not checked on an empty table (why a 100-character q once passed its test)", async () => {
    const { n } = (await testEnv.DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>())!;
    expect(n).toBe(0);
    expect(await likeRuns(`%${"a".repeat(200)}%`)).toBe(true);
  });

  it("is 50 bytes: the longest pattern that runs is 50 bytes, the shortest refused 51", async () => {
    await insertUser("someone");
    // Every pattern length from 2 to 120 bytes: which run, which are refused.
    const lengths = Array.from({ length: 119 }, (_, i) => i + 2);
    const runs = new Map<number, boolean>();
    for (const n of lengths) runs.set(n, await likeRuns(`%${"a".repeat(n - 2)}%`));
    const longestRun = Math.max(...lengths.filter((n) => runs.get(n)));
    const shortestRefused = Math.min(...lengths.filter((n) => !runs.get(n)));
    expect({ longestRun, shortestRefused }).toEqual({ longestRun: 50, shortestRefused: 51 });
    // One boundary, not a band: everything up to it runs, everything above is refused.
    expect(lengths.every((n) => runs.get(n) === n <= 50)).toBe(true);
  });

  it("counts bytes of UTF-8, not characters, and counts escape characters", async () => {
    // 2 + 16 × 3 = 50 bytes (18 characters) runs; 2 + 17 × 3 = 53 bytes (19 characters) does not.
    expect(await likeRuns(`%${"字".repeat(16)}%`)).toBe(true);
    expect(await likeRuns(`%${"字".repeat(17)}%`)).toBe(false);
    // Emoji: 4 bytes, 2 UTF-16 units each.
    expect(await likeRuns(`%${"😀".repeat(12)}%`)).toBe(true);
    expect(await likeRuns(`%${"😀".repeat(12)}a%`)).toBe(false);
    // `\%` is two bytes of pattern for one character matched.
    expect(await likeRuns(`%${"\\%".repeat(24)}%`)).toBe(true);
    expect(await likeRuns(`%${"\\%".repeat(24)}a%`)).toBe(false);
  });
});

describe("q on the read API", () => {
  /** Boundary pairs: [what, longest accepted, shortest refused]; each accepted term is in a user's name. */
  const PAIRS: Array<[string, string, string]> = [
    ["ASCII", "a".repeat(48), "a".repeat(49)],
    ["2-byte (é)", "é".repeat(24), `${"é".repeat(24)}a`],
    ["CJK (3 bytes)", "字".repeat(16), "字".repeat(17)],
    ["CJK after ASCII", `ab${"字".repeat(15)}a`, `ab${"字".repeat(15)}ab`],
    ["emoji (4 bytes)", "😀".repeat(12), "😀".repeat(13)],
    ["emoji after ASCII", `${"a".repeat(44)}😀`, `${"a".repeat(45)}😀`],
    ["% (2 bytes escaped)", "%".repeat(24), `${"%".repeat(24)}a`],
    ["_ (2 bytes escaped)", `${"a".repeat(46)}_`, `${"a".repeat(47)}_`],
    ["\\ (2 bytes escaped)", "\\".repeat(24), "\\".repeat(25)],
    ["all three escaped", `${"\\%_".repeat(8)}`, `${"\\%_".repeat(8)}a`],
  ];

  const users = new Map<string, string>();
  beforeAll(async () => {
    for (const [what, accepted] of PAIRS) users.set(what, await insertUser(`x${accepted}y`));
  });

  it("each pair sits on the limit: 48 bytes once escaped, and one character more", () => {
    const escaped = (t: string) => t.replace(/[\\%_]/g, (c) => `\\${c}`);
    for (const [what, accepted, refused] of PAIRS) {
      expect(bytes(escaped(accepted)), what).toBe(48);
      expect(bytes(escaped(refused)) - 48, what).toBeGreaterThan(0);
      expect(bytes(escaped(refused)) - 48, what).toBeLessThanOrEqual(4);
    }
  });

  it("accepts the longest and finds the user whose name holds it; refuses the shortest too long, naming q", async () => {
    for (const [what, accepted, refused] of PAIRS) {
      const ok = await api(`/users?q=${encodeURIComponent(accepted)}`);
      expect(ok.status, `${what}: ${ok.text}`).toBe(200);
      expect(ok.body.data.map((u: { id: string }) => u.id), what).toContain(users.get(what));

      const no = await api(`/users?q=${encodeURIComponent(refused)}`);
      expect(no.status, what).toBe(400);
      expect(no.body, what).toEqual({ error: "bad_request", parameter: "q", message: LIMIT_MESSAGE });
    }
  });

  it("measures the term as searched: surrounding spaces are trimmed first", async () => {
    expect((await api(`/users?q=${encodeURIComponent(`   ${"a".repeat(48)}   `)}`)).status).toBe(200);
    expect((await api(`/users?q=${encodeURIComponent(` ${"a".repeat(49)} `)}`)).status).toBe(400);
  });

  it("refuses before any query runs", async () => {
    const { db, tally } = countD1(testEnv.DB);
    const res = await api(`/users?q=${"a".repeat(49)}`, { env: { DB: db } });
    expect(res.status).toBe(400);
    expect(tally.queries).toBe(0);
  });
});

describe("q on /admin's search box", () => {
  it("shows the limit's message on the page (200, not a 500) and searches at the limit", async () => {
    const cookie = await adminCookie();
    await insertUser(`admin ${"b".repeat(48)} box`);
    for (const refused of ["b".repeat(49), "字".repeat(17), "😀".repeat(13), "%".repeat(25)]) {
      const page = await adminGet(`/admin?q=${encodeURIComponent(refused)}`, cookie);
      expect(page.status, refused).toBe(200);
      expect(page.html, refused).toContain(`<p class="error">${LIMIT_MESSAGE}</p>`);
    }
    const found = await adminGet(`/admin?q=${"b".repeat(48)}`, cookie);
    expect(found.status).toBe(200);
    expect(found.html).not.toContain(LIMIT_MESSAGE);
    expect(found.html).toContain(`admin ${"b".repeat(48)} box`);
  });
});
