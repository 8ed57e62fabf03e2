// /admin: the operator page. Same token as the read API, typed once into a login form (POST /admin/login)
// and then kept as a session cookie holding an HMAC keyed with the token (Secure, HttpOnly,
// SameSite=Strict, Path=/admin): the cookie opens nothing once the token changes. Logins and logouts are
// POSTs that must come from this origin, whatever their content type (`sameOriginPosts`), on top of
// SameSite=Strict. The page reads the directory; its only actions are logging out and putting webhook dead
// letters back in line (POSTs behind the session and the same origin check).
import { Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { readWebhookSettings, type ConfigProblem } from "../config";
import { BadParameter, parseSearch } from "../read/params";
import { isoTime } from "../directory/rows";
import { listChanges, newestPosition, type ApiChange } from "../read/changes";
import { directoryCounts, listDeliveries, listUsers, organizationTree, type Reader } from "../read/queries";
import { errorName } from "../errors";
import { dispatcherHint } from "../webhooks/poke";
import { dispatcherStub } from "../webhooks/stub";
import { Dashboard, DisabledPage, LoginPage, type ConfigStatus, type DashboardProps, type WebhookView } from "./admin-views";
import { readBodyLimited } from "./body";
import { operatorStatus } from "./health";
import {
  ADMIN_COOKIE,
  ADMIN_SESSION_SECONDS,
  directoryAccess,
  sessionCookieValue,
  tokensEqual,
  validSession,
} from "./directory-access";
import { readSession, type ReadEnv } from "./read-session";

export const admin = new Hono<ReadEnv>();

const COOKIE_OPTIONS = { path: "/admin", secure: true, httpOnly: true, sameSite: "Strict" } as const;
/** Rows the page shows at most: organizations in the tree, matching users, recent deliveries. */
const TREE_MAX = 2000;
const SEARCH_MAX_ROWS = 50;
const DELIVERIES_SHOWN = 50;
/** The change feed card: the changes among the newest FEED_WINDOW rows of the log, newest first, at most FEED_SHOWN. */
const FEED_WINDOW = 100;
const FEED_SHOWN = 20;

const nowSeconds = () => Math.floor(Date.now() / 1000);

function logAdmin(event: string, detail: Record<string, unknown> = {}) {
  const line = JSON.stringify({ msg: "admin", event, ...detail });
  if (event === "login-refused") console.warn(line);
  else console.log(line);
}

/** No script may run, nothing may be framed or cached, and forms only post back here. */
const pageHeaders = () =>
  createMiddleware<ReadEnv>(async (c, next) => {
    await next();
    c.header(
      "content-security-policy",
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    c.header("x-frame-options", "DENY");
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "no-referrer");
    c.header("cache-control", "no-store");
  });

/**
 * A state-changing request must come from this origin: `Sec-Fetch-Site: same-origin`, or an `Origin` equal to
 * the request's own. hono/csrf checks only form and text content types; a browser also sends
 * `application/json, text/plain` cross-site without a preflight, so here every content type is checked.
 */
const sameOriginPosts = () =>
  createMiddleware<ReadEnv>(async (c, next) => {
    const sameOrigin = c.req.header("sec-fetch-site") === "same-origin" || c.req.header("origin") === new URL(c.req.url).origin;
    if (!sameOrigin) return c.text("Forbidden", 403);
    await next();
  });

/** The dashboard's gate: 404 while no token is configured, to the login form without a valid session. */
const requireAdminSession = () =>
  createMiddleware<ReadEnv>(async (c, next) => {
    const access = await directoryAccess(c.env);
    if (!access.enabled) return c.html(<DisabledPage reason={access.reason} />, 404);
    if (!(await validSession(access.token, getCookie(c, ADMIN_COOKIE), nowSeconds()))) {
      return c.redirect("/admin/login", 302);
    }
    await next();
  });

admin.use("*", pageHeaders());

admin.get("/login", async (c) => {
  const access = await directoryAccess(c.env);
  if (!access.enabled) return c.html(<DisabledPage reason={access.reason} />, 404);
  if (await validSession(access.token, getCookie(c, ADMIN_COOKIE), nowSeconds())) return c.redirect("/admin", 302);
  return c.html(<LoginPage />);
});

admin.post("/login", sameOriginPosts(), async (c) => {
  const access = await directoryAccess(c.env);
  if (!access.enabled) return c.html(<DisabledPage reason={access.reason} />, 404);
  const type = (c.req.header("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    return c.html(<LoginPage error="Send the login form." />, 415);
  }
  const body = await readBodyLimited(c.req.raw, 4096);
  const token = body.ok ? (new URLSearchParams(body.value.text).get("token") ?? "") : "";
  if (token === "" || !(await tokensEqual(token.trim(), access.token))) {
    logAdmin("login-refused");
    return c.html(<LoginPage error="That is not the directory API token." />, 401);
  }
  setCookie(c, ADMIN_COOKIE, await sessionCookieValue(access.token, nowSeconds()), {
    ...COOKIE_OPTIONS,
    maxAge: ADMIN_SESSION_SECONDS,
  });
  logAdmin("login");
  return c.redirect("/admin", 303);
});

admin.post("/logout", sameOriginPosts(), (c) => {
  deleteCookie(c, ADMIN_COOKIE, COOKIE_OPTIONS);
  logAdmin("logout");
  return c.redirect("/admin/login", 303);
});

admin.get("/", requireAdminSession(), readSession(), async (c) => {
  const reader = c.var.reader;
  const failuresOnly = c.req.query("failures") === "1";
  const q = c.req.query("q");

  let search: DashboardProps["search"] = null;
  let searchTerm: string | null = null;
  try {
    searchTerm = parseSearch(q);
  } catch (e) {
    if (!(e instanceof BadParameter)) throw e;
    search = { q: q!.slice(0, 100), error: e.message, users: [], more: false };
  }

  const [counts, tree, found, deliveries, changes, webhooks] = await Promise.all([
    directoryCounts(reader),
    organizationTree(reader, TREE_MAX),
    searchTerm === null
      ? null
      : listUsers(reader, { organizationId: null, search: searchTerm, includeDeleted: false }, { limit: SEARCH_MAX_ROWS, after: null }),
    listDeliveries(reader, { code: null, failuresOnly }, { limit: DELIVERIES_SHOWN, after: null }),
    newestChanges(reader),
    webhookView(c.env),
  ]);
  if (found !== null && searchTerm !== null) {
    const users = [...found.items].sort((a, b) => a.username.localeCompare(b.username));
    search = { q: searchTerm, error: null, users, more: found.next !== null };
  }

  return c.html(
    <Dashboard
      config={configStatus(c.env)}
      counts={counts}
      tree={tree}
      search={search}
      deliveries={deliveries.items}
      changes={changes}
      webhooks={webhooks}
      failuresOnly={failuresOnly}
      renderedAt={isoTime(Date.now())!}
    />,
  );
});

// Webhook dead letters back in line: one (its id, the change's position) or all. Same origin first, so a
// cross-site post is refused whether or not the browser holds a session.
admin.post("/webhooks/redeliver", sameOriginPosts(), requireAdminSession(), async (c) => {
  const form = await readForm(c.req.raw);
  const id = form?.get("id") ?? "";
  if (!/^[1-9][0-9]{0,15}$/.test(id)) return c.text("Send the id of a dead letter.", 400);
  const redelivered = await dispatcherStub(c.env.WEBHOOK_DISPATCHER, dispatcherHint(c.env)).redeliver(Number(id));
  logAdmin("webhook-redeliver", { id, redelivered });
  return c.redirect("/admin#webhooks", 303);
});

admin.post("/webhooks/redeliver-all", sameOriginPosts(), requireAdminSession(), async (c) => {
  const redelivered = await dispatcherStub(c.env.WEBHOOK_DISPATCHER, dispatcherHint(c.env)).redeliverAll();
  logAdmin("webhook-redeliver-all", { redelivered });
  return c.redirect("/admin#webhooks", 303);
});

admin.all("*", (c) => c.redirect("/admin", 302));

admin.onError((err, c) => {
  if (err instanceof HTTPException) return err.getResponse();
  console.error(JSON.stringify({ msg: "admin error", route: c.req.routePath, error: err.name }));
  return c.text("internal error, retry later", 500);
});

/** A small urlencoded form (the redeliver button's), or null when the request is not one. */
async function readForm(request: Request): Promise<URLSearchParams | null> {
  const type = (request.headers.get("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") return null;
  const body = await readBodyLimited(request, 1024);
  return body.ok ? new URLSearchParams(body.value.text) : null;
}

/** The changes among the newest FEED_WINDOW rows of the log, newest first (a page of the feed, read backwards). */
async function newestChanges(reader: Reader): Promise<ApiChange[]> {
  const newest = await newestPosition(reader);
  if (newest === 0) return [];
  const from = newest - FEED_WINDOW;
  let page = await listChanges(reader, from > 0 ? from : null, FEED_WINDOW, null);
  // The log holds fewer rows than the window (retention): read it from its oldest.
  if (!page.ok) page = await listChanges(reader, null, FEED_WINDOW, null);
  return page.ok ? page.items.map((i) => i.change).reverse().slice(0, FEED_SHOWN) : [];
}

/**
 * The webhook card: off, misconfigured, or the dispatcher's state (the URL's origin only: its path may carry
 * a token). The settings are read as the dispatcher reads them, whatever the rest of the configuration says.
 */
async function webhookView(env: Env): Promise<WebhookView> {
  const problems: ConfigProblem[] = [];
  const webhook = readWebhookSettings(env, problems);
  if (problems.length > 0) return { state: "misconfigured", settings: problems.map((p) => p.setting) };
  if (webhook === null) return { state: "off" };
  const target = new URL(webhook.url).origin;
  try {
    const status = await dispatcherStub(env.WEBHOOK_DISPATCHER, dispatcherHint(env)).status();
    return { state: "on", target, rotation: webhook.keys.length > 1, status };
  } catch (e) {
    console.error(JSON.stringify({ msg: "admin error", route: "webhook status", error: errorName(e) }));
    return { state: "unreachable", target };
  }
}

/** What the page says about the configuration: names, choices and states, never a secret's value. */
export function configStatus(env: Env): ConfigStatus {
  const view = operatorStatus(env);
  const p = view.profile;
  const profile: Array<[string, string]> =
    p === null
      ? []
      : [
          ["signature", p.signature],
          ["encryption", p.encryption + (p.gcmLayout !== undefined ? ` (layout ${p.gcmLayout})` : "")],
          ...(p.receiveIdChecked !== undefined ? [["receive id", p.receiveIdChecked ? "checked" : "not checked"] as [string, string]] : []),
          ["timestamp window", p.timestampToleranceSeconds === 0 ? "off" : `±${p.timestampToleranceSeconds} s`],
          ["passwords", p.passwordPolicy === "drop" ? "dropped" : "pbkdf2 hash"],
          ["replay shards", String(p.replayShards)],
          ["audit retention", `${p.auditRetentionDays} days`],
        ];
  const seen = view.seenByThisInstance;
  return {
    ok: view.status === "ok",
    problems: view.problems,
    profile,
    secrets: view.secrets,
    rotations: view.rotationInProgress.map((name) => ({ name, lastUsed: seen.previousKeyLastUsed[name] ?? null })),
    warnings: view.warnings,
    signatureHint: seen.signatureHint,
    recentRefusals: seen.recentRefusals,
  };
}
