import pg from 'pg';
import type { Logger } from '../log.js';

/**
 * A pg pool that survives its server going away (a restart, a terminated
 * backend): the error of an idle client, or of one checked out between two
 * queries of a transaction, is logged instead of crashing the process; the
 * query in progress fails as usual and the pool opens new connections.
 */
export function createPool(url: string, max: number, log: Logger, opts: { searchPath?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    ...(opts.searchPath === undefined ? {} : { options: `-c search_path=${opts.searchPath}` }),
  });
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost'));
  pool.on('connect', (client) => {
    client.on('error', (err) => log.warn({ err: err.message }, 'database connection lost'));
  });
  return pool;
}
