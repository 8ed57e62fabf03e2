// What one request cost in storage, as the platform bills it: D1 statements run, and D1 rows read and
// written as D1's `meta` reports them (every index entry a row); the event ledger's own SQLite rows
// written, as its cursors report them. Logged on the request's line, so Workers Logs and the bench show
// the cost of each event type.
import type { DirectoryDb } from "../directory/audit";

export interface Cost {
  d1Queries: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  storeRowsWritten: number;
}

export const NO_COST: Cost = { d1Queries: 0, d1RowsRead: 0, d1RowsWritten: 0, storeRowsWritten: 0 };

/** A D1 binding that adds up what each batch cost into `cost` (the write path only ever sends batches). */
export function metered(db: DirectoryDb, cost: Cost): DirectoryDb {
  return {
    prepare: (query) => db.prepare(query),
    batch: async <T = unknown>(statements: D1PreparedStatement[]) => {
      cost.d1Queries += statements.length;
      const results = await db.batch<T>(statements);
      for (const r of results) {
        cost.d1RowsRead += r.meta.rows_read ?? 0;
        cost.d1RowsWritten += r.meta.rows_written ?? 0;
      }
      return results;
    },
  };
}
