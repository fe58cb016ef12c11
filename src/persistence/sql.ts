// Small pieces every reader of the saga log shares: what can run a query, and
// a timestamp column written as the contract writes times.
import type pg from 'pg';

/** A pool, a client or a transaction's client: anything that runs a query. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** `column` as JavaScript's toISOString writes a time (UTC, milliseconds, Z), in SQL. */
export const isoSql = (column: string): string => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
