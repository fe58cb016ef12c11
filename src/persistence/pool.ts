import pg from 'pg';
import type { Logger } from '../log.js';

/**
 * A pg pool that survives its server going away: an idle client's error (a
 * restart, a terminated backend) is logged instead of crashing the process, and
 * the pool opens a new connection on the next query.
 */
export function createPool(url: string, max: number, log: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost'));
  return pool;
}
