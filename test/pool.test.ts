// The saga log's connection pool (src/persistence/pool.ts): its end waits for
// the server to have closed every connection, so a server stopped next (as
// `npm start` stops its embedded one, last) terminates none of them.
import test from 'ava';
import type pg from 'pg';
import { createLogger } from '../src/log.js';
import { createPool } from '../src/persistence/pool.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);

test.before(async () => {
  await env.ready();
});

test("a pool's end resolves once every one of its connections has closed", async (t) => {
  const pool = createPool(env.databaseUrl, 3, createLogger('silent'));
  const ended = new Set<pg.PoolClient>();
  const connected: pg.PoolClient[] = [];
  pool.on('connect', (client) => {
    connected.push(client);
    client.on('end', () => ended.add(client));
  });
  // Three at once: three connections, idle in the pool afterwards.
  await Promise.all([1, 2, 3].map(() => pool.query('select pg_sleep(0.05)')));
  t.is(connected.length, 3);
  await pool.end();
  t.is(ended.size, 3, 'every connection closed before end resolved');
});
