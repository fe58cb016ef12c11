// One database transaction on a client of its own: committed when the callback
// returns, rolled back when it throws.
import type pg from 'pg';

export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    try {
      await client.query('rollback');
    } catch {
      // A connection that cannot even roll back must not go back to the pool.
      broken = true;
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
