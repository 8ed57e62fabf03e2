// The OneAccess emulator: a Hono app with OneAccess's management API paths, fields and answers for one
// application, which turns every change into the callback OneAccess would send. Web APIs only: the Node
// runner (emulator/cli, scripts/emulator.mjs) serves it with @hono/node-server, and the tests run the very
// same app inside workerd with the receiver reached through the Worker's fetch.
import { Hono, type Context } from "hono";
import { checkUrl, type CheckUrlResult } from "../../sim/core/modes";
import { describeProfile } from "../../sim/core/profile";
import { MonotonicClock, Sender, type FetchLike } from "../../sim/core/wire";
import {
  accountView,
  createAccount,
  createOrganization,
  createUser,
  deleteAccount,
  deleteOrganization,
  findAccount,
  findOrganization,
  findUser,
  modifyAccount,
  modifyOrganization,
  organizationView,
  setAccountDisabled,
  userView,
} from "./directory";
import { ApiError, errors } from "./errors";
import { generalFromBody, generalView, settingsFromBody, settingsView } from "./settings";
import { checkState, emptyState, type EmulatorState, type SyncRecord, type SyncSettings } from "./state";
import type { StateStore } from "./store";
import { addRecord, drain, retryAll, retryRecord, type Deliver, type RecordDraft } from "./sync";
import { jsonObject, page, paging } from "./validate";

export const DEFAULTS = {
  applicationId: "local-app",
  clientId: "emulator-client-id",
  clientSecret: "emulator-client-secret",
  /** OneAccess's default token lifetime (30 minutes). */
  tokenTtlSeconds: 1800,
} as const;

export interface EmulatorOptions {
  store: StateStore;
  /** How callbacks travel: the global fetch in Node, the Worker's fetch in tests. */
  fetch: FetchLike;
  applicationId?: string;
  clientId?: string;
  clientSecret?: string;
  tokenTtlSeconds?: number;
  /** Callback settings to use from the start, replacing saved ones (the runner reads them from .dev.vars). */
  settings?: SyncSettings;
  /** The receiver runs with LOCAL_DEV=true (the runner's files say so): settings changes may use the public development values. */
  localDev?: boolean;
  /** Milliseconds since the epoch; Date.now by default. */
  now?: () => number;
  /** One line per request and per sync event (the runner prints them). */
  log?: (line: string) => void;
}

/** Runs one thing at a time: every request sees (and leaves) a consistent state, even while a callback is in flight. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export const recordView = (r: SyncRecord) => ({
  id: r.id,
  event_type: r.eventType,
  object_type: r.objectType,
  object_id: r.objectId,
  object_name: r.objectName,
  status: r.status,
  code: r.code,
  message: r.message,
  attempts: r.attempts,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

export class Emulator {
  readonly applicationId: string;
  readonly app: Hono;
  private state: EmulatorState | null = null;
  private loading: Promise<EmulatorState> | null = null;
  private readonly mutex = new Mutex();
  private readonly clock = new MonotonicClock();
  private sender: { settings: SyncSettings; deliver: Deliver; sender: Sender } | null = null;
  private readonly now: () => number;

  constructor(private readonly options: EmulatorOptions) {
    this.applicationId = options.applicationId ?? DEFAULTS.applicationId;
    this.now = options.now ?? (() => Date.now());
    this.app = this.routes();
  }

  private iso = () => new Date(this.now()).toISOString();

  /** Loads the saved state once (applying the start settings) and sends what was waiting for them. */
  ready(): Promise<EmulatorState> {
    this.loading ??= this.mutex.run(async () => {
      const saved = await this.options.store.load();
      const state = saved === null || saved === undefined ? emptyState() : checkState(saved);
      if (this.options.settings) state.settings = this.options.settings;
      this.state = state;
      await drain(state, this.deliverer(), this.iso, this.syncLog);
      await this.options.store.save(state);
      return state;
    });
    return this.loading;
  }

  /** Runs `fn` on the state, one request at a time; saves afterwards when it may have changed something. */
  async withState<T>(fn: (state: EmulatorState) => Promise<T> | T, mutates = true): Promise<T> {
    await this.ready();
    return this.mutex.run(async () => {
      const state = this.state!;
      try {
        return await fn(state);
      } finally {
        if (mutates) await this.options.store.save(state);
      }
    });
  }

  /** The sender for the current settings (rebuilt when they change), or null before any are set. */
  private deliverer(): Deliver | null {
    const settings = this.state?.settings ?? null;
    if (settings === null) return null;
    if (this.sender?.settings !== settings) {
      const sender = new Sender(settings.profile, { url: settings.callbackUrl, fetch: this.options.fetch, retries: 0 });
      // One clock across settings changes: the receiver ignores an event older than the last one applied.
      const deliver: Deliver = async (eventType, message) => (await sender.send(eventType, message, { timestamp: this.clock.nowMs() })).reply;
      this.sender = { settings, deliver, sender };
    }
    return this.sender.deliver;
  }

  private syncLog = (r: SyncRecord, latencyMs: number | null) => {
    if (!this.options.log) return;
    const what = `sync #${r.id} ${r.eventType} ${r.objectName}`;
    if (latencyMs === null) this.options.log(`${what}: ${r.message}`);
    else this.options.log(`${what} -> ${r.code} ${r.message} (${latencyMs.toFixed(0)} ms)${r.status === "failed" ? " FAILED" : ""}`);
  };

  /** Records the change's event and sends whatever can be sent now (this one, usually). */
  private async record(state: EmulatorState, draft: RecordDraft | null): Promise<void> {
    await this.options.store.save(state);
    if (draft === null) return;
    addRecord(state, draft, this.iso());
    await drain(state, this.deliverer(), this.iso, this.syncLog);
  }

  /** Sends CHECK_URL with the given settings (the current ones by default). */
  async checkUrl(settings?: SyncSettings): Promise<CheckUrlResult | null> {
    const s = settings ?? (await this.ready()).settings;
    if (!s) return null;
    return checkUrl(new Sender(s.profile, { url: s.callbackUrl, fetch: this.options.fetch, retries: 0 }));
  }

  /** Counts for a banner or GET /. */
  async summary() {
    const state = await this.ready();
    const count = (status: SyncRecord["status"]) => state.records.filter((r) => r.status === status).length;
    return {
      organizations: state.organizations.length,
      accounts: state.accounts.length,
      users: state.users.length,
      sync_records: { success: count("success"), failed: count("failed"), waiting: count("waiting") },
    };
  }

  private routes(): Hono {
    const app = new Hono();
    const log = this.options.log;
    if (log) {
      app.use("*", async (c, next) => {
        await next();
        if (c.req.method !== "GET") log(`${c.req.method} ${new URL(c.req.url).pathname} -> ${c.res.status}`);
      });
    }

    app.get("/", async (c) => {
      const state = await this.ready();
      return c.json({
        emulator: "OneAccess (management API and event callbacks), local",
        application_id: this.applicationId,
        token_url: new URL("/api/v2/tenant/token", c.req.url).href,
        callback_url: state.settings?.callbackUrl ?? null,
        profile: state.settings ? describeProfile(state.settings.profile) : null,
        general: generalView(state.general),
        ...(await this.summary()),
      });
    });

    const tenant = new Hono();
    tenant.post("/token", (c) => this.token(c));
    tenant.use("*", async (c, next) => {
      if (c.req.method === "POST" && c.req.path.endsWith("/api/v2/tenant/token")) return next();
      await this.authorize(c.req.header("authorization"));
      return next();
    });

    // Tenant users: the people application accounts belong to (user_id); they do not sync themselves.
    tenant.post("/users", async (c) => {
      const body = jsonObject(await bodyText(c));
      const user = await this.withState((s) => createUser(s, body, this.now()));
      return c.json({ user_id: user.id }, 201);
    });
    tenant.get("/users", (c) =>
      this.withState((s) => {
        const p = paging((n) => c.req.query(n));
        return c.json({ total: s.users.length, users: page(s.users, p).map(userView) });
      }, false),
    );
    tenant.get("/users/:user_id", (c) => this.withState((s) => c.json(userView(findUser(s, c.req.param("user_id")))), false));

    const application = new Hono();
    application.use("*", async (c, next) => {
      const id = c.req.param("application_id");
      if (id !== this.applicationId) throw errors.notFound(`application ${id}`);
      return next();
    });

    // Application accounts.
    application.post("/accounts/basic-account", async (c) => {
      const body = jsonObject(await bodyText(c));
      const account = await this.withState(async (s) => {
        const { account, draft } = createAccount(s, body, this.now());
        await this.record(s, draft);
        return account;
      });
      return c.json({ account_id: account.id }, 201);
    });
    application.get("/accounts", (c) =>
      this.withState((s) => {
        const p = paging((n) => c.req.query(n));
        const type = c.req.query("account_type");
        const accounts = type === undefined || type === "" || type === "BASIC_ACCOUNT" ? s.accounts : [];
        return c.json({ total: accounts.length, accounts: page(accounts, p).map(accountView) });
      }, false),
    );
    application.get("/accounts/:account_id", (c) =>
      this.withState((s) => c.json(accountView(findAccount(s, c.req.param("account_id")))), false),
    );
    application.put("/accounts/:account_id", async (c) => {
      const body = jsonObject(await bodyText(c));
      const id = await this.withState(async (s) => {
        const account = findAccount(s, c.req.param("account_id"));
        await this.record(s, modifyAccount(s, account, body));
        return account.id;
      });
      return c.json({ account_id: id });
    });
    for (const [action, disabled] of [["enable", false], ["disable", true]] as const) {
      application.put(`/accounts/:account_id/${action}`, async (c) => {
        const id = await this.withState(async (s) => {
          const account = findAccount(s, c.req.param("account_id"));
          await this.record(s, setAccountDisabled(s, account, disabled));
          return account.id;
        });
        return c.json({ account_id: id });
      });
    }
    application.delete("/accounts/:account_id", async (c) => {
      await this.withState(async (s) => this.record(s, deleteAccount(s, findAccount(s, c.req.param("account_id")))));
      return c.body(null, 204);
    });

    // Application organizations.
    application.post("/organizations", async (c) => {
      const body = jsonObject(await bodyText(c));
      const org = await this.withState(async (s) => {
        const { org, draft } = createOrganization(s, body, this.now());
        await this.record(s, draft);
        return org;
      });
      return c.json({ org_id: org.id }, 201);
    });
    application.get("/organizations", (c) =>
      this.withState((s) => {
        const p = paging((n) => c.req.query(n));
        return c.json({ total: s.organizations.length, organizations: page(s.organizations, p).map(organizationView) });
      }, false),
    );
    application.get("/organizations/:org_id", (c) =>
      this.withState((s) => c.json(organizationView(findOrganization(s, c.req.param("org_id")))), false),
    );
    application.put("/organizations/:org_id", async (c) => {
      const body = jsonObject(await bodyText(c));
      const id = await this.withState(async (s) => {
        const org = findOrganization(s, c.req.param("org_id"));
        await this.record(s, modifyOrganization(s, org, body));
        return org.id;
      });
      return c.json({ org_id: id });
    });
    application.delete("/organizations/:org_id", async (c) => {
      await this.withState(async (s) => this.record(s, deleteOrganization(s, findOrganization(s, c.req.param("org_id")))));
      return c.body(null, 204);
    });

    // Synchronization settings (the emulator's names: OneAccess configures these in its console).
    application.get("/sync-settings", (c) => this.withState((s) => c.json(settingsView(s.settings, s.general)), false));
    application.put("/sync-settings", async (c) => {
      const body = jsonObject(await bodyText(c));
      return this.withState(async (s) => {
        const settings = settingsFromBody(body, s.settings, this.options.localDev ?? false);
        // Saving sends CHECK_URL; as in OneAccess, settings the receiver does not accept are not saved.
        const check = (await this.checkUrl(settings))!;
        if (!check.ok) {
          const reply = check.reply;
          const opened = reply.code === "200" ? `: ${check.lines.slice(1, -1).join("; ")}` : "";
          throw errors.checkUrl(`CHECK_URL failed: ${reply.code} ${reply.message}${opened}`);
        }
        s.settings = settings;
        await drain(s, this.deliverer(), this.iso, this.syncLog);
        return c.json({ check_url: { code: check.reply.code, message: check.reply.message, echoed: true }, ...settingsView(s.settings, s.general) });
      });
    });
    application.put("/sync-settings/general", async (c) => {
      const body = jsonObject(await bodyText(c));
      return this.withState((s) => {
        s.general = generalFromBody(body, s.general);
        return c.json(generalView(s.general));
      });
    });

    // Sync records: one per event, with the code and message of its last delivery.
    application.get("/sync-records", (c) =>
      this.withState((s) => {
        const p = paging((n) => c.req.query(n), false);
        const status = c.req.query("status");
        if (status !== undefined && !["success", "failed", "waiting"].includes(status)) {
          throw errors.invalid("status", "must be one of success, failed, waiting");
        }
        const records = s.records.filter((r) => status === undefined || r.status === status).reverse();
        return c.json({ total: records.length, records: page(records, p).map(recordView) });
      }, false),
    );
    application.get("/sync-records/:record_id", (c) => this.withState((s) => c.json(recordView(findRecord(s, c.req.param("record_id")))), false));
    application.post("/sync-records/retry", (c) =>
      this.withState(async (s) => c.json(await retryAll(s, this.deliverer(), this.iso, this.syncLog))),
    );
    application.post("/sync-records/:record_id/retry", (c) =>
      this.withState(async (s) => {
        const r = findRecord(s, c.req.param("record_id"));
        await retryRecord(s, r, this.deliverer(), this.iso, this.syncLog);
        return c.json(recordView(r));
      }),
    );

    tenant.route("/applications/:application_id", application);
    app.route("/api/v2/tenant", tenant);

    app.notFound((c) => {
      const e = errors.noSuchApi(c.req.method, new URL(c.req.url).pathname);
      return c.json(e.body(), e.status);
    });
    app.onError((err, c) => {
      const e = err instanceof ApiError ? err : errors.internal();
      if (!(err instanceof ApiError)) console.error(`emulator: ${err instanceof Error ? err.stack : String(err)}`);
      return c.json(e.body(), e.status);
    });
    return app;
  }

  /** POST /api/v2/tenant/token: client credentials (form-encoded as in OneAccess's example, or JSON). */
  private async token(c: Context) {
    const text = await bodyText(c);
    const type = c.req.header("content-type") ?? "";
    let fields: Record<string, unknown>;
    if (type.includes("application/json") || text.trimStart().startsWith("{")) fields = jsonObject(text);
    else fields = Object.fromEntries(new URLSearchParams(text));
    for (const name of ["grant_type", "client_id", "client_secret"]) {
      if (typeof fields[name] !== "string" || fields[name] === "") throw errors.required(name);
    }
    if (fields.grant_type !== "client_credentials") throw errors.invalid("grant_type", "must be client_credentials");
    const clientId = this.options.clientId ?? DEFAULTS.clientId;
    const clientSecret = this.options.clientSecret ?? DEFAULTS.clientSecret;
    if (fields.client_id !== clientId || fields.client_secret !== clientSecret) throw errors.credentials();
    const ttl = this.options.tokenTtlSeconds ?? DEFAULTS.tokenTtlSeconds;
    const token = await this.withState((s) => {
      const now = this.now();
      s.tokens = s.tokens.filter((t) => t.expiresAt > now);
      const t = { token: crypto.randomUUID(), expiresAt: now + ttl * 1000 };
      s.tokens.push(t);
      return t.token;
    });
    return c.json({ access_token: token, token_type: "Bearer", expires_in: ttl });
  }

  private async authorize(header: string | undefined): Promise<void> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!m) throw errors.unauthorized("Authorization: Bearer {access_token} is required");
    const found = await this.withState((s) => s.tokens.find((t) => t.token === m[1]), false);
    if (!found) throw errors.unauthorized("the access token is invalid");
    if (found.expiresAt <= this.now()) throw errors.unauthorized("the access token has expired");
  }
}

/** The body as UTF-8 text, whatever its Content-Type (curl's -d says form-encoded even for JSON). */
async function bodyText(c: Context): Promise<string> {
  return new TextDecoder().decode(await c.req.arrayBuffer());
}

function findRecord(state: EmulatorState, id: string): SyncRecord {
  const r = /^[0-9]{1,9}$/.test(id) ? state.records.find((x) => x.id === Number(id)) : undefined;
  if (!r) throw errors.notFound(`sync record ${id}`);
  return r;
}

export function createEmulator(options: EmulatorOptions): Emulator {
  return new Emulator(options);
}
