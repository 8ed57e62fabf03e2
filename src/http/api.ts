import { createMiddleware } from "hono/factory";
// GET /api/v1/…: the mirrored directory and the audit log as JSON, for the holder of DIRECTORY_API_TOKEN.
// Lists are `{ "data": [...], "next_cursor": "…" | null }` in a stable order (ids ascending; deliveries
// newest first), paginated by keyset cursors; one item is `{ "data": {...} }`. Errors are
// `{ "error": "<kind>", "message": "…" }` (400s also name the `parameter`).
import { Hono, type Context } from "hono";
import { CHANGE_TYPES, listChanges, newestPosition, type ChangeType } from "../read/changes";
import { encodeCursor, type CursorList } from "../read/cursor";
import {
  BadParameter,
  parseBoolean,
  parseCode,
  parseCursor,
  parseId,
  parseLimit,
  parseSearch,
  queryParameters,
} from "../read/params";
import {
  getOrganization,
  getUser,
  listChildren,
  listDeliveries,
  listMembers,
  listOrganizations,
  listUsers,
  type Page,
  type PageRequest,
} from "../read/queries";
import { requireApiToken } from "./directory-access";
import { readSession, type ReadEnv } from "./read-session";

export const api = new Hono<ReadEnv>();

/** Directory data (and every refusal) is per caller and changes any moment: no cache keeps it. */
const noStore = () =>
  createMiddleware(async (c, next) => {
    await next();
    c.header("cache-control", "no-store");
  });

api.use("*", noStore(), requireApiToken(), readSession());

type Ctx = Context<ReadEnv>;

function pageRequest(params: Map<string, string>, list: CursorList): PageRequest {
  return { limit: parseLimit(params.get("limit")), after: parseCursor(list, params.get("cursor")) };
}

function listBody<T>(page: Page<T>, list: CursorList) {
  return { data: page.items, next_cursor: page.next === null ? null : encodeCursor(list, page.next) };
}

function notFound(c: Ctx, what: string) {
  return c.json({ error: "not_found", message: `${what} not found` }, 404);
}

/** The `{id}` path segment, checked like a query parameter. */
function pathId(c: Ctx): string {
  return parseId("id", c.req.param("id"))!;
}

const LIST = ["limit", "cursor", "include_deleted"] as const;

api.get("/users", async (c) => {
  const params = queryParameters(new URL(c.req.url), [...LIST, "organization", "q"]);
  const filter = {
    organizationId: parseId("organization", params.get("organization")),
    search: parseSearch(params.get("q")),
    includeDeleted: parseBoolean("include_deleted", params.get("include_deleted")),
  };
  const page = await listUsers(c.var.reader, filter, pageRequest(params, "users"));
  return c.json(listBody(page, "users"));
});

api.get("/users/:id", async (c) => {
  const params = queryParameters(new URL(c.req.url), ["include_deleted"]);
  const user = await getUser(c.var.reader, pathId(c), parseBoolean("include_deleted", params.get("include_deleted")));
  return user ? c.json({ data: user }) : notFound(c, "user");
});

api.get("/organizations", async (c) => {
  const params = queryParameters(new URL(c.req.url), LIST);
  const includeDeleted = parseBoolean("include_deleted", params.get("include_deleted"));
  const page = await listOrganizations(c.var.reader, includeDeleted, pageRequest(params, "organizations"));
  return c.json(listBody(page, "organizations"));
});

api.get("/organizations/:id", async (c) => {
  const params = queryParameters(new URL(c.req.url), ["include_deleted"]);
  const org = await getOrganization(c.var.reader, pathId(c), parseBoolean("include_deleted", params.get("include_deleted")));
  return org ? c.json({ data: org }) : notFound(c, "organization");
});

api.get("/organizations/:id/children", async (c) => {
  const params = queryParameters(new URL(c.req.url), LIST);
  const includeDeleted = parseBoolean("include_deleted", params.get("include_deleted"));
  const page = await listChildren(c.var.reader, pathId(c), includeDeleted, pageRequest(params, "organizations"));
  return page ? c.json(listBody(page, "organizations")) : notFound(c, "organization");
});

api.get("/organizations/:id/members", async (c) => {
  const params = queryParameters(new URL(c.req.url), LIST);
  const includeDeleted = parseBoolean("include_deleted", params.get("include_deleted"));
  const page = await listMembers(c.var.reader, pathId(c), includeDeleted, pageRequest(params, "users"));
  return page ? c.json(listBody(page, "users")) : notFound(c, "organization");
});

api.get("/deliveries", async (c) => {
  const params = queryParameters(new URL(c.req.url), ["limit", "cursor", "code"]);
  const filter = { code: parseCode(params.get("code")) };
  const page = await listDeliveries(c.var.reader, filter, pageRequest(params, "deliveries"));
  return c.json(listBody(page, "deliveries"));
});

/** `types`: a comma-separated list of change types (docs/read-api.md), each known. */
function parseTypes(raw: string | undefined): ChangeType[] | null {
  if (raw === undefined || raw.trim() === "") return null;
  const types = raw.split(",").map((t) => t.trim());
  for (const t of types) {
    if (!(CHANGE_TYPES as readonly string[]).includes(t)) {
      throw new BadParameter("types", `types must be a comma-separated list of ${CHANGE_TYPES.join(", ")}`);
    }
  }
  return [...new Set(types)] as ChangeType[];
}

api.get("/events", async (c) => {
  const params = queryParameters(new URL(c.req.url), ["after", "limit", "types"]);
  const after = parseCursor("events", params.get("after"), "after");
  const limit = parseLimit(params.get("limit"));
  const page = await listChanges(c.var.reader, after === null ? null : Number(after), limit, parseTypes(params.get("types")));
  if (!page.ok) {
    return c.json(
      {
        error: "gone",
        message:
          "this cursor is outside the change log (older than AUDIT_RETENTION_DAYS kept, or from another database): take the newest cursor (GET /api/v1/events/latest), re-read the users and organizations lists, then follow the feed from that cursor",
      },
      410,
    );
  }
  return c.json({ data: page.items.map((i) => i.change), next_cursor: encodeCursor("events", page.next) });
});

api.get("/events/latest", async (c) => {
  queryParameters(new URL(c.req.url), []);
  return c.json({ data: { cursor: encodeCursor("events", await newestPosition(c.var.reader)) } });
});

api.all("*", (c) => {
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    return c.json({ error: "method_not_allowed", message: "the read API is read-only: use GET" }, 405, { allow: "GET, HEAD" });
  }
  return c.json({ error: "not_found", message: "no such route under /api/v1" }, 404);
});

api.onError((err, c) => {
  if (err instanceof BadParameter) {
    return c.json({ error: "bad_request", parameter: err.parameter, message: err.message }, 400);
  }
  // The error's class name only: a D1 message could quote a bound value.
  console.error(JSON.stringify({ msg: "read api error", route: c.req.routePath, error: err.name }));
  return c.json({ error: "internal", message: "internal error, retry later" }, 500);
});
