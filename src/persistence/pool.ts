import pg from 'pg';
import type { Logger } from '../log.js';

/** How long `end()` waits for the pool's connections to close, after pg-pool has let go of them. */
const CLOSE_WAIT_MS = 2_000;

/**
 * A pg pool that survives its server going away (a restart, a terminated
 * backend): the error of an idle client, or of one checked out between two
 * queries of a transaction, is logged instead of crashing the process; the
 * query in progress fails as usual and the pool opens new connections.
 *
 * Its `end()` resolves once every connection is closed. pg-pool's resolves
 * when it has asked each to close, before the server has answered: a server
 * stopped right after (as `npm start` stops its embedded one last) then
 * terminated connections that were still closing, and each was logged as lost.
 */
export function createPool(url: string, max: number, log: Logger, opts: { searchPath?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    ...(opts.searchPath === undefined ? {} : { options: `-c search_path=${opts.searchPath}` }),
  });
  const open = new Set<pg.PoolClient>();
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost'));
  pool.on('connect', (client) => {
    open.add(client);
    client.on('error', (err) => log.warn({ err: err.message }, 'database connection lost'));
  });
  // Emitted once a removed client's connection has ended.
  pool.on('remove', (client) => open.delete(client));
  const end = pool.end.bind(pool);
  pool.end = async () => {
    await end();
    if (open.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      // After the listener above, so `open` has lost the client by then.
      pool.on('remove', () => {
        if (open.size > 0) return;
        clearTimeout(timer);
        resolve();
      });
    });
  };
  return pool;
}
