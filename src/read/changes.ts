// The change log, read: each audit row that is a change record (migration 0004), as the events API and the
// webhooks show it, in commit order. A page walks the primary key from a cursor and looks at a bounded number
// of rows, so one read costs at most SCAN_ROWS rows however few of them are changes of the types asked for.
import { CHANGE_TYPES, type ChangeType } from "../directory/changes";
import { extensionsOf, isoTime, type ApiOrganization, type ApiUser } from "../directory/rows";
import type { Reader } from "./queries";

export { CHANGE_TYPES, type ChangeType };

/** Most audit rows one page looks at: its rows-read cost, whatever the filter. */
export const SCAN_ROWS = 1_000;

export interface ApiChange {
  /** The change's id: its position in the log, only growing; the webhook's `webhook-id`. */
  id: string;
  type: ChangeType;
  entity_type: "user" | "organization";
  entity_id: string;
  /** The entity's version after the change: a consumer ignores a change older than one it has applied. */
  version: number;
  /** API names of the attributes that changed. */
  changed: string[];
  /** When OneAccess says the change happened (the event's timestamp). */
  occurred_at: string | null;
  /** When the receiver received the event it applied (its clock). */
  recorded_at: string | null;
  /** The entity as the read API showed it right after the change; null for a delete. */
  entity: ApiUser | ApiOrganization | null;
}

interface ChangeRow {
  id: number;
  received_at: number;
  change_type: ChangeType;
  changed: string;
  entity_id: string;
  entity_version: number;
  event_at: number;
  entity: string | null;
}

const CHANGE_COLUMNS = "id, received_at, change_type, changed, entity_id, entity_version, event_at, entity";

export function apiChange(r: ChangeRow): ApiChange {
  const entity = r.entity === null ? null : (extensionsOf(r.entity) as unknown as ApiUser | ApiOrganization);
  return {
    id: String(r.id),
    type: r.change_type,
    entity_type: r.change_type.startsWith("user.") ? "user" : "organization",
    entity_id: r.entity_id,
    version: r.entity_version,
    changed: JSON.parse(r.changed) as string[],
    occurred_at: isoTime(r.event_at),
    recorded_at: isoTime(r.received_at),
    entity,
  };
}

export type ChangePage =
  | { ok: true; items: Array<{ position: number; change: ApiChange }>; next: number }
  /** The cursor is outside what the log holds: older than the retention kept, or ahead of its newest row. */
  | { ok: false; oldest: number; newest: number };

/**
 * The changes after position `after` (null: from the oldest the log still holds), oldest first, at most
 * `limit`, of the given types (all when null). `next` is where the following page starts: after the last
 * change returned when the page is full, else after the last row looked at (so a filter that matches nothing
 * still moves a consumer on).
 */
/** Where a page starts: after the cursor ?1, or just before the oldest row the log holds (a constant subquery, one row). */
const START = "coalesce(?1, (SELECT coalesce(min(id), 1) - 1 FROM deliveries))";

export async function listChanges(db: Reader, from: number | null, limit: number, types: readonly ChangeType[] | null): Promise<ChangePage> {
  // Placeholders ?1–?3 are the cursor (null: from the oldest row), the scan and the page size; the types follow from ?4.
  const filter = types === null ? "" : ` AND change_type IN (${types.map((_, i) => `?${4 + i}`).join(", ")})`;
  const [bounds, page] = await db.batch([
    // Two subqueries: SQLite reads one row for a lone min() or max(), but the whole table for both in one SELECT.
    db.prepare("SELECT (SELECT min(id) FROM deliveries) AS oldest, (SELECT max(id) FROM deliveries) AS newest"),
    // The scan window is a range of ids, (start, start + SCAN_ROWS]: a page reads its own rows (and the
    // non-change rows between them), never more, and the window's end is known without reading it.
    db
      .prepare(
        `SELECT ${CHANGE_COLUMNS} FROM deliveries
         WHERE id > ${START} AND id <= ${START} + ?2 AND change_type IS NOT NULL${filter} ORDER BY id LIMIT ?3`,
      )
      .bind(from, SCAN_ROWS, limit, ...(types ?? [])),
  ]);
  const { oldest, newest } = bounds!.results[0] as { oldest: number | null; newest: number | null };
  const start = from ?? (oldest ?? 1) - 1;
  // Ids only grow and retention trims the oldest, so rows (start, oldest) were trimmed if `start` is below.
  const trimmed = from !== null && oldest !== null && start < oldest - 1;
  const ahead = (newest !== null && start > newest) || (newest === null && start > 0);
  if (trimmed || ahead) {
    return { ok: false, oldest: oldest ?? 0, newest: newest ?? 0 };
  }
  const rows = page!.results as ChangeRow[];
  const items = rows.map((r) => ({ position: r.id, change: apiChange(r) }));
  // A short page looked at the whole window, up to the newest row.
  const next = items.length === limit ? items[items.length - 1]!.position : Math.max(start, Math.min(start + SCAN_ROWS, newest ?? 0));
  return { ok: true, items, next };
}

/** The position of the newest row of the log (0 when it is empty): following the feed from there sees only what comes next. */
export async function newestPosition(db: Reader): Promise<number> {
  const row = await db.prepare("SELECT max(id) AS newest FROM deliveries").first<{ newest: number | null }>();
  return row?.newest ?? 0;
}
