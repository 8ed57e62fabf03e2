// The read API's D1 session (src/http/read-session.ts): the x-d1-bookmark request header reaches
// DB.withSession as is, without it the session is "first-unconstrained", a malformed one is a 400 before D1
// is touched, and the answer carries the session's own bookmark. The DB binding is wrapped per call (env
// override) to record what the route asks of it.
import { describe, expect, it } from "vitest";
import { callWorker, testEnv } from "../helpers/worker";
import { api, createUser } from "./support";

interface Recorded {
  /** Every method called on the DB binding, by name. */
  calls: string[];
  /** The argument of each withSession call. */
  sessions: unknown[];
  /** What each session's getBookmark returned, in order. */
  bookmarks: Array<string | null>;
}

/**
 * The test database behind a recording wrapper; `bookmark`, when given, replaces what the sessions'
 * getBookmark returns (everything else goes to the real session).
 */
function recordingDb(bookmark?: () => string | null): { DB: D1Database; recorded: Recorded } {
  const recorded: Recorded = { calls: [], sessions: [], bookmarks: [] };
  const real = testEnv.DB;
  const DB = new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      if (prop === "withSession") {
        return (constraint: unknown) => {
          recorded.calls.push("withSession");
          recorded.sessions.push(constraint);
          const session = target.withSession(constraint as string);
          return new Proxy(session, {
            get(s, p) {
              if (p === "getBookmark") {
                return () => {
                  const b = bookmark ? bookmark() : s.getBookmark();
                  recorded.bookmarks.push(b);
                  return b;
                };
              }
              const v = Reflect.get(s, p, s) as unknown;
              return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(s) : v;
            },
          });
        };
      }
      return (...args: unknown[]) => {
        recorded.calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { DB, recorded };
}

describe("x-d1-bookmark and DB.withSession", () => {
  it("without the header the session is first-unconstrained, and the answer carries its bookmark", async () => {
    await createUser("rs-alice");
    const { DB, recorded } = recordingDb();
    const res = await api("/users", { env: { DB } });
    expect(res.status).toBe(200);
    expect(res.body.data.map((u: { username: string }) => u.username)).toContain("rs-alice");
    expect(recorded.sessions).toEqual(["first-unconstrained"]);
    expect(recorded.calls).toEqual(["withSession"]); // every read went through the session
    expect(recorded.bookmarks).toHaveLength(1);
    expect(recorded.bookmarks[0]).toMatch(/^[0-9A-Za-z-]+$/);
    expect(res.headers.get("x-d1-bookmark")).toBe(recorded.bookmarks[0]);
  });

  it("a bookmark sent back reaches withSession exactly as sent", async () => {
    const first = await api("/users");
    const bookmark = first.headers.get("x-d1-bookmark")!;
    expect(bookmark).toMatch(/^[0-9A-Za-z-]+$/);
    const { DB, recorded } = recordingDb();
    const res = await api("/organizations", { env: { DB }, headers: { "x-d1-bookmark": bookmark } });
    expect(res.status).toBe(200);
    expect(recorded.sessions).toEqual([bookmark]);
    expect(res.headers.get("x-d1-bookmark")).toBe(recorded.bookmarks[0]);
  });

  it("the answer's header is the session's bookmark, whatever it is, and absent when the session has none", async () => {
    const distinctive = "0000002a-0000beef-00004f2b-c0ffee0000000000000000000000000000000000";
    const withOne = recordingDb(() => distinctive);
    const res = await api("/deliveries", { env: { DB: withOne.DB } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-d1-bookmark")).toBe(distinctive);

    const without = recordingDb(() => null);
    const none = await api("/deliveries", { env: { DB: without.DB } });
    expect(none.status).toBe(200);
    expect(without.recorded.bookmarks).toEqual([null]);
    expect(none.headers.has("x-d1-bookmark")).toBe(false);
  });

  it("a malformed bookmark is a 400 naming the header, and D1 is never touched", async () => {
    const malformed = [
      "' OR 1=1 --",
      "abc_def",
      "abc def",
      "abc/def",
      "abc.def",
      "first-unconstrained;drop",
      "abc%20def",
      "",
      "a".repeat(201),
    ];
    for (const bookmark of malformed) {
      const { DB, recorded } = recordingDb();
      const res = await api("/users", { env: { DB }, headers: { "x-d1-bookmark": bookmark } });
      expect(res.status, JSON.stringify(bookmark)).toBe(400);
      expect(res.body).toEqual({ error: "bad_request", parameter: "x-d1-bookmark", message: "x-d1-bookmark is invalid" });
      expect(res.headers.has("x-d1-bookmark")).toBe(false);
      expect(recorded.calls, JSON.stringify(bookmark)).toEqual([]);
    }
  });

  it("the shape's edges: 1 and 200 characters of [0-9A-Za-z-] reach withSession as sent", async () => {
    // Any well-formed value is handed to D1, which judges it (local D1 takes any string).
    for (const bookmark of ["a", "-", "A".repeat(200), "00000000-00000000-00000000-0123456789abcdefABCDEF"]) {
      const { DB, recorded } = recordingDb();
      const res = await api("/users", { env: { DB }, headers: { "x-d1-bookmark": bookmark } });
      expect(res.status, bookmark).toBe(200);
      expect(recorded.sessions, bookmark).toEqual([bookmark]);
    }
  });

  it("pinned: the constraint names pass the shape check, so a client can ask for a session on the primary", async () => {
    // withSession takes "first-primary" / "first-unconstrained" as constraints, not bookmarks; the header
    // lets either through. Documented as a bookmark only; this pins what happens today.
    for (const constraint of ["first-primary", "first-unconstrained"]) {
      const { DB, recorded } = recordingDb();
      const res = await api("/users", { env: { DB }, headers: { "x-d1-bookmark": constraint } });
      expect(res.status).toBe(200);
      expect(recorded.sessions).toEqual([constraint]);
    }
  });

  it("needs the token first: without it, neither the bookmark nor D1 is looked at", async () => {
    const { DB, recorded } = recordingDb();
    const res = await api("/users", { token: null, env: { DB }, headers: { "x-d1-bookmark": "' OR 1=1 --" } });
    expect(res.status).toBe(401);
    expect(recorded.calls).toEqual([]);
  });

  it("the operator page reads through a first-unconstrained session too", async () => {
    const login = await callWorker(
      new Request("https://receiver.test/admin/login", {
        method: "POST",
        headers: { origin: "https://receiver.test", "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: testEnv.DIRECTORY_API_TOKEN }).toString(),
        redirect: "manual",
      }),
    );
    const cookie = login.headers.get("set-cookie")!.split(";", 1)[0]!;
    const { DB, recorded } = recordingDb();
    const page = await callWorker(new Request("https://receiver.test/admin", { headers: { cookie } }), { DB });
    expect(page.status).toBe(200);
    expect(recorded.sessions).toEqual(["first-unconstrained"]);
    expect(recorded.calls).toEqual(["withSession"]);
  });
});
