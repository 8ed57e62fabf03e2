// Reads go through a D1 session (Sessions API), so a replicated database can answer them from a nearby
// replica. By default the session may start anywhere ("first-unconstrained"): a directory mirror that is a
// moment behind is fine to read. A client that needs to see at least what it saw before (say, following
// `next_cursor` right after a change) sends back the `x-d1-bookmark` header of its previous answer.
import { createMiddleware } from "hono/factory";

export type ReadEnv = {
  Bindings: Env;
  Variables: { reader: D1DatabaseSession };
};

export const BOOKMARK_HEADER = "x-d1-bookmark";

/** D1 bookmarks are hex groups joined by dashes; anything else is refused before it reaches D1. */
const BOOKMARK_SHAPE = /^[0-9A-Za-z-]{1,200}$/;

export const readSession = () =>
  createMiddleware<ReadEnv>(async (c, next) => {
    const bookmark = c.req.header(BOOKMARK_HEADER);
    if (bookmark !== undefined && !BOOKMARK_SHAPE.test(bookmark)) {
      return c.json({ error: "bad_request", parameter: BOOKMARK_HEADER, message: `${BOOKMARK_HEADER} is invalid` }, 400);
    }
    const session = c.env.DB.withSession(bookmark ?? "first-unconstrained");
    c.set("reader", session);
    await next();
    const after = session.getBookmark();
    if (after) c.header(BOOKMARK_HEADER, after);
  });
