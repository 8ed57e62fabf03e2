// /admin and the webhooks: the change feed's newest changes and the dispatcher's state (delivered, retrying
// with the next attempt and last error, dead letters with "redeliver" one and all), and the redeliver POSTs
// behind the session and the same-origin check. Neither the page nor the logs ever show a secret, the URL
// beyond its origin, or a message body.
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { ADMIN_ORIGIN, adminCookie, adminGet } from "../helpers/admin-session";
import { callWorker } from "../helpers/worker";
import {
  alarmOf,
  appendChange,
  dispatcher,
  DISPATCHER_NAME,
  fireAlarm,
  HOUR,
  PREVIOUS_SECRET,
  SECOND,
  SECRET,
  setClock,
  sink,
  stored,
  T0,
  webhookEnv,
  type Dispatcher,
} from "./support";

const EVIL = "https://evil.example";
const DEAD_AT = T0 + 24 * HOUR;

let cookie: string;
let d: Dispatcher;
const positions = { ok: 0, dead: 0, dead2: 0, retrying: 0 };

/** A dispatcher with one delivered change, two dead letters and one retrying change. */
async function scene() {
  await sink.reset();
  d = await dispatcher({ name: DISPATCHER_NAME });
  positions.dead = await appendChange("usr_admindead001", { version: 3 });
  positions.dead2 = await appendChange("org_admindead002", { type: "organization.moved", version: 7 });
  positions.ok = await appendChange("usr_adminok00001", { version: 1 });
  await sink.mode({ byEntity: { usr_admindead001: 500, org_admindead002: 502 } });
  await d.poke();
  await fireAlarm(d);
  while ((await stored(d)).dead.length < 2) {
    await setClock(d, Math.max(...(await stored(d)).held.map((h) => h.next_attempt_at!)));
    await d.runOnce();
  }
  positions.retrying = await appendChange("usr_adminretry01", { version: 2 });
  await sink.mode({ byEntity: { usr_adminretry01: 503 } });
  await setClock(d, DEAD_AT);
  await d.runOnce();
}

async function post(path: string, opts: { cookie?: string; origin?: string; secFetchSite?: string; body?: string } = {}) {
  const headers = new Headers({ "content-type": "application/x-www-form-urlencoded" });
  if (opts.cookie) headers.set("cookie", opts.cookie);
  if (opts.origin !== undefined) headers.set("origin", opts.origin);
  if (opts.secFetchSite !== undefined) headers.set("sec-fetch-site", opts.secFetchSite);
  const res = await callWorker(new Request(`${ADMIN_ORIGIN}${path}`, { method: "POST", headers, body: opts.body ?? "", redirect: "manual" }), webhookEnv());
  return { status: res.status, location: res.headers.get("location"), text: await res.text() };
}

beforeAll(async () => {
  cookie = await adminCookie();
});

describe("the webhook card and the change feed", () => {
  beforeEach(scene);

  /** A dispatcher binding that fails when used. */
  const unreachable = {
    idFromName: () => {
      throw new Error("the dispatcher was asked");
    },
  };

  it("off when not configured: the page says so and asks nothing of the dispatcher", async () => {
    const { status, html } = await adminGet("/admin", cookie, { WEBHOOK_DISPATCHER: unreachable });
    expect(status).toBe(200);
    expect(html).toMatch(/id="webhooks"><h2>Webhooks <span class="pill warn">off<\/span>/);
  });

  it("a dispatcher that does not answer leaves the rest of the page working", async () => {
    const { status, html } = await adminGet("/admin", cookie, { ...webhookEnv(), WEBHOOK_DISPATCHER: unreachable });
    expect(status).toBe(200);
    expect(html).toContain("The dispatcher did not answer; reload to try again. Endpoint: https://hooks.receiver.test</p>");
    expect(html).toContain('id="changes"');
  });

  it("misconfigured: the card names the setting, never its value", async () => {
    const { html } = await adminGet("/admin", cookie, { ...webhookEnv(), WEBHOOK_URL: "http://hooks.example.com/in?token=leak-me" });
    expect(html).toContain("Nothing is sent until WEBHOOK_URL is fixed");
    expect(html).not.toContain("leak-me");
  });

  it("on: delivered, retrying with next attempt and last error, dead letters with redeliver, the feed's newest changes", async () => {
    const { status, html } = await adminGet("/admin", cookie, webhookEnv({ WEBHOOK_SECRET_PREVIOUS: PREVIOUS_SECRET }));
    expect(status).toBe(200);
    const card = html.slice(html.indexOf('id="webhooks"'), html.indexOf('id="changes"'));
    expect(card).toContain('<span class="pill bad">2 dead letters</span>');
    expect(card).toContain("<dd>https://hooks.receiver.test</dd>");
    expect(card).toContain("WEBHOOK_SECRET and WEBHOOK_SECRET_PREVIOUS (rotation)");
    expect(card).toContain('data-delivered="1"');
    // Retrying: the next attempt 30 s after its failure, and what it got.
    const retrying = card.slice(card.indexOf(`data-webhook-id="${positions.retrying}"`));
    expect(retrying).toMatch(/^data-webhook-id="\d+"><td class="mono">\d+<\/td><td class="mono">user\.updated<\/td><td class="mono">user usr_adminretry01<\/td><td>2<\/td><td>1<\/td><td class="nowrap">2031-01-02 00:00:30 UTC<\/td><td class="message">HTTP 503<\/td><\/tr>/);
    // Dead letters, newest first, each with its last error and a redeliver button; and one for all.
    expect(card).toContain('<form class="inline" method="post" action="/admin/webhooks/redeliver-all"><button type="submit">Redeliver all 2</button></form>');
    for (const [position, type, entity, version, error] of [
      [positions.dead, "user.updated", "user usr_admindead001", 3, "HTTP 500"],
      [positions.dead2, "organization.moved", "organization org_admindead002", 7, "HTTP 502"],
    ] as const) {
      const row = card.slice(card.indexOf(`<tr class="failed" data-webhook-id="${position}">`));
      expect(row).toMatch(
        new RegExp(
          `^<tr class="failed" data-webhook-id="${position}"><td class="mono">${position}</td><td class="mono">${type.replace(".", "\\.")}</td><td class="mono">${entity}</td><td>${version}</td><td>15</td><td class="nowrap">2031-01-02 00:00:00 UTC</td><td class="message">${error}</td><td><form class="row" method="post" action="/admin/webhooks/redeliver"><input type="hidden" name="id" value="${position}"/><button class="small" type="submit">Redeliver</button></form></td></tr>`,
        ),
      );
    }
    // The feed: newest first, type, entity, version, when.
    const feed = html.slice(html.indexOf('id="changes"'), html.indexOf('id="deliveries"'));
    const shown = [...feed.matchAll(/data-change-id="(\d+)"/g)].map((m) => Number(m[1]));
    expect(shown.slice(0, 4)).toEqual([positions.retrying, positions.ok, positions.dead2, positions.dead]);
    expect(feed).toContain(`<tr data-change-id="${positions.dead2}"><td class="nowrap">2031-01-01 00:00:00 UTC</td><td class="mono">organization.moved</td><td class="mono">organization org_admindead002</td><td>7</td>`);
    // Never a secret, the URL's path or query, or a body.
    for (const hidden of [SECRET, SECRET.slice(6), PREVIOUS_SECRET.slice(6), "path-secret-9f3c", "/oneaccess", "entity usr_admindead001", '"data"']) {
      expect(html, hidden).not.toContain(hidden);
    }
  });
});

describe("redeliver from /admin", () => {
  beforeEach(scene);
  afterEach(() => vi.restoreAllMocks());

  it("one dead letter: back in line at once, then delivered with its webhook-id", async () => {
    const res = await post("/admin/webhooks/redeliver", { cookie, origin: ADMIN_ORIGIN, body: `id=${positions.dead}` });
    expect(res).toMatchObject({ status: 303, location: "/admin#webhooks" });
    expect((await stored(d)).dead.map((x) => x.position)).toEqual([positions.dead2]);
    expect(await alarmOf(d)).toBe(DEAD_AT);
    await sink.mode({});
    expect(await fireAlarm(d)).toMatchObject({ sent: 1, delivered: 1 });
    const last = (await sink.received()).at(-1)!;
    expect([last.headers["webhook-id"], last.answered]).toEqual([String(positions.dead), 200]);
  });

  it("all dead letters, with Sec-Fetch-Site: same-origin and no Origin", async () => {
    const res = await post("/admin/webhooks/redeliver-all", { cookie, secFetchSite: "same-origin" });
    expect(res).toMatchObject({ status: 303, location: "/admin#webhooks" });
    expect((await stored(d)).dead).toEqual([]);
    await sink.mode({});
    expect(await fireAlarm(d)).toMatchObject({ sent: 2, delivered: 2 });
  });

  it("a cross-site POST is refused whatever it carries, a POST without a session goes to the login form, a bad id is a 400", async () => {
    for (const [what, opts] of [
      ["cross-site Origin", { cookie, origin: EVIL }],
      ["cross-site Origin and Sec-Fetch-Site", { cookie, origin: EVIL, secFetchSite: "cross-site" }],
      ["Origin: null", { cookie, origin: "null" }],
      ["same-site", { cookie, secFetchSite: "same-site" }],
      ["neither header", { cookie }],
    ] as const) {
      for (const path of ["/admin/webhooks/redeliver", "/admin/webhooks/redeliver-all"]) {
        const res = await post(path, { ...opts, body: `id=${positions.dead}` });
        expect(res, `${what} ${path}`).toMatchObject({ status: 403, text: "Forbidden" });
      }
    }
    const noSession = await post("/admin/webhooks/redeliver-all", { origin: ADMIN_ORIGIN });
    expect(noSession).toMatchObject({ status: 302, location: "/admin/login" });
    const forged = await post("/admin/webhooks/redeliver-all", { origin: ADMIN_ORIGIN, cookie: "oneaccess_admin=v1.9999999999.AAAA" });
    expect(forged).toMatchObject({ status: 302, location: "/admin/login" });
    for (const body of ["", "id=", "id=0", "id=-1", "id=1e3", `id=${positions.dead} `, "id=12345678901234567"]) {
      expect((await post("/admin/webhooks/redeliver", { cookie, origin: ADMIN_ORIGIN, body })).status, body).toBe(400);
    }
    // Nothing moved.
    expect((await stored(d)).dead.map((x) => x.position)).toEqual([positions.dead, positions.dead2]);
    // An id that is no dead letter: nothing to do, back to the page.
    expect(await post("/admin/webhooks/redeliver", { cookie, origin: ADMIN_ORIGIN, body: `id=${positions.ok}` })).toMatchObject({ status: 303 });
    expect((await stored(d)).held.map((h) => h.position)).toEqual([positions.retrying]);
  });
});

describe("the logs", () => {
  it("carry neither a secret, nor the URL, nor a message body, from the runs to the dead letters and the operator's actions", async () => {
    const lines: string[] = [];
    for (const level of ["log", "warn", "error", "info"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    }
    try {
      await scene();
      await post("/admin/webhooks/redeliver-all", { cookie, origin: ADMIN_ORIGIN });
      await sink.mode({});
      await setClock(d, DEAD_AT + 30 * SECOND);
      await d.runOnce();
    } finally {
      vi.restoreAllMocks();
    }
    expect(lines.some((l) => l.includes('"msg":"webhook dead letter"'))).toBe(true);
    expect(lines.some((l) => l.includes('"event":"webhook-redeliver-all"'))).toBe(true);
    for (const hidden of [SECRET.slice(6), "hooks.receiver.test", "path-secret", "entity usr_", '"data"', "user.updated\",\"timestamp"]) {
      expect(lines.filter((l) => l.includes(hidden)), hidden).toEqual([]);
    }
  });
});
