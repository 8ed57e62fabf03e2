// The Worker: Hono routes everything; the event ledger and the webhook dispatcher Durable Objects are exported
// for their bindings.
import { Hono } from "hono";
import { admin } from "./http/admin";
import { api } from "./http/api";
import { callback } from "./http/callback";
import { health } from "./http/health";
import type { AppEnv } from "./http/types";
import { scheduledRetention } from "./ops/retention";
import { wakeDispatcher } from "./webhooks/poke";

export { EventLedger } from "./ingest/event-ledger";
export { WebhookDispatcher } from "./webhooks/dispatcher";

const app = new Hono<AppEnv>();

app.route("/callback", callback);
app.route("/healthz", health);
app.route("/api/v1", api);
app.route("/admin", admin);

app.notFound((c) => c.json({ code: "404", message: "not found", data: "" }, 404));
app.onError((err, c) => {
  // Fixed message to the client; the error's class name (never its text, which may quote data) to the log.
  console.error(JSON.stringify({ msg: "unhandled error", error: err.name }));
  return c.json({ code: "500", message: "internal error, retry later", data: "" }, 500);
});

export default {
  fetch: app.fetch,
  // Cron Trigger (wrangler.toml [triggers]): trims the audit table to AUDIT_RETENTION_DAYS, and wakes the
  // webhook dispatcher, whose heartbeat would otherwise wait for the next change if its alarm were ever lost.
  async scheduled(controller, env) {
    await Promise.all([scheduledRetention(env, controller.scheduledTime), wakeDispatcher(env)]);
  },
} satisfies ExportedHandler<Env>;

export { app };
