// Small pieces every reader of the saga log shares: what can run a query, and
// a timestamp column written as the contract writes times.
import type pg from 'pg';

/** A pool, a client or a transaction's client: anything that runs a query. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** `column` as JavaScript's toISOString writes a time (UTC, milliseconds, Z), in SQL. */
export const isoSql = (column: string): string => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * A saga of saga_log that has not ended: its estado_final (the terminal estado, generated from estado) is null.
 * Said this way rather than `estado not in (…terminal)`, so that the running sagas' partial indexes serve it
 * (Migration20261205000001_saga_log_hot_updates).
 */
export const RUNNING_SQL = 'estado_final is null';

/**
 * A named statement that reads rows by id: `text` writes it around `where(column)`, the condition on
 * the ids, which is `column = $1` for one id and `column = any($1)` for several. PostgreSQL plans a
 * prepared statement at every run while its custom plan looks cheaper than the generic one, and with an
 * array of unknown length the custom plan always does: the status read was planned at nearly every call
 * (about 0.4 ms of PostgreSQL's CPU, more than running it took). With one id both plans cost the same, so
 * the generic plan is kept after five runs; a read of several ids (a burst, batched) is planned for its
 * own array, once for them all.
 */
export function byIdsStatement(
  name: string,
  text: (where: (column: string) => string) => string,
  ids: readonly string[],
): pg.QueryConfig<unknown[]> {
  if (ids.length === 1) return { name: `${name}_one`, text: text((column) => `${column} = $1::uuid`), values: [ids[0]] };
  return { name, text: text((column) => `${column} = any($1::uuid[])`), values: [ids] };
}
