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
