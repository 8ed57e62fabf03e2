// A D1 binding that counts what one invocation costs: queries (each statement of a batch is one, as the
// Workers plan limits count them), bound parameters per statement, and rows read and written from each
// result's `meta`. Hand `db` to the Worker (or to an object, test/helpers/directory-db.ts) for one
// invocation and read `tally` afterwards. Sessions (`withSession`) are counted into the same tally.

export interface CountedStatement {
  sql: string;
  /** Values bound with `bind()` (D1 refuses more than 100 per statement). */
  params: number;
  /** From the result's meta; NaN for `raw()`, which returns no meta. */
  rowsRead: number;
  rowsWritten: number;
}

export interface D1Tally {
  queries: number;
  maxParams: number;
  rowsRead: number;
  rowsWritten: number;
  /** Every statement run, in order. */
  statements: CountedStatement[];
}

/** Our wrapper of a statement → the real one, its SQL and its bound-value count (a batch needs the real ones). */
const wrappers = new WeakMap<object, { real: D1PreparedStatement; sql: string; params: number }>();

type Meta = { rows_read?: number; rows_written?: number };

export function countD1(target: D1Database): { db: D1Database; tally: D1Tally } {
  const tally: D1Tally = { queries: 0, maxParams: 0, rowsRead: 0, rowsWritten: 0, statements: [] };

  function record(sql: string, params: number, meta: Meta | null) {
    const rowsRead = meta === null ? NaN : (meta.rows_read ?? 0);
    const rowsWritten = meta === null ? NaN : (meta.rows_written ?? 0);
    tally.queries++;
    tally.maxParams = Math.max(tally.maxParams, params);
    tally.rowsRead += rowsRead;
    tally.rowsWritten += rowsWritten;
    tally.statements.push({ sql, params, rowsRead, rowsWritten });
  }

  function statement(sql: string, real: D1PreparedStatement, params: number): D1PreparedStatement {
    const wrapped = {
      bind: (...values: unknown[]) => statement(sql, real.bind(...values), values.length),
      all: async () => {
        const result = await real.all();
        record(sql, params, result.meta);
        return result;
      },
      run: async () => {
        const result = await real.run();
        record(sql, params, result.meta);
        return result;
      },
      // D1's first() runs the whole statement and keeps the first row: all() does the same and has a meta.
      first: async (column?: string) => {
        const result = await real.all<Record<string, unknown>>();
        record(sql, params, result.meta);
        const row = result.results[0];
        if (row === undefined) return null;
        if (column === undefined) return row;
        if (!(column in row)) throw new Error(`D1_COLUMN_NOTFOUND: ${column}`);
        return row[column] ?? null;
      },
      raw: async (options?: { columnNames?: boolean }) => {
        const rows = await real.raw(options as { columnNames: true });
        record(sql, params, null);
        return rows;
      },
    };
    wrappers.set(wrapped, { real, sql, params });
    return wrapped as unknown as D1PreparedStatement;
  }

  /** Runs a batch of our statements on the real binding; each statement of it is one query. */
  async function batch<T>(run: (real: D1PreparedStatement[]) => Promise<D1Result<T>[]>, statements: D1PreparedStatement[]) {
    const parts = statements.map((s) => {
      const found = wrappers.get(s);
      if (found === undefined) throw new Error("countD1: a batch got a statement this wrapper did not prepare");
      return found;
    });
    const results = await run(parts.map((p) => p.real));
    results.forEach((result, i) => record(parts[i]!.sql, parts[i]!.params, result.meta));
    return results;
  }

  const prepareOn = (source: { prepare(query: string): D1PreparedStatement }) => (query: string) =>
    statement(query, source.prepare(query), 0);

  function session(real: D1DatabaseSession): D1DatabaseSession {
    return {
      prepare: prepareOn(real),
      batch: <T>(statements: D1PreparedStatement[]) => batch<T>((r) => real.batch<T>(r), statements),
      getBookmark: () => real.getBookmark(),
    } as unknown as D1DatabaseSession;
  }

  const db = {
    prepare: prepareOn(target),
    batch: <T>(statements: D1PreparedStatement[]) => batch<T>((r) => target.batch<T>(r), statements),
    exec: async (query: string) => {
      const result = await target.exec(query);
      // exec returns no meta: each of its statements counts as a query, with rows unknown.
      for (let i = 0; i < result.count; i++) record(query, 0, null);
      return result;
    },
    withSession: (constraintOrBookmark?: string) => session(target.withSession(constraintOrBookmark)),
    dump: () => target.dump(),
  } as unknown as D1Database;

  return { db, tally };
}
