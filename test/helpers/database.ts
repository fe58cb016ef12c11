// PostgreSQL for tests and the benchmark. `npm test` starts one embedded server for
// the whole run (scripts/run-tests.ts) and passes it as DATABASE_URL; a test file run
// on its own without DATABASE_URL starts its own. Either way each test file works in a
// fresh database of its own, created here and migrated like production. The benchmark
// (scripts/bench) takes its server and databases from here too.
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { createPool } from '../../src/persistence/pool.js';
import { openMigratedDatabase } from '../../src/roles.js';
import { migrateParticipants, participantPool } from '../../src/participants/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/persistence/embedded-postgres.js';

export interface TestServer {
  /** URL of a maintenance database on the server (for CREATE DATABASE). */
  adminUrl: string;
  /** Started here (and removed by stop), not DATABASE_URL's. */
  embedded: boolean;
  stop(): Promise<void>;
}

export async function startTestServer(): Promise<TestServer> {
  const given = process.env.DATABASE_URL;
  if (given !== undefined && given !== '') return { adminUrl: given, embedded: false, stop: () => Promise.resolve() };
  const embedded: EmbeddedDatabase = await startEmbeddedPostgres({
    dataDir: path.join(tmpdir(), `saga-test-pg-${process.pid}-${randomBytes(4).toString('hex')}`),
    port: await freePort(),
    persistent: false,
  });
  return { adminUrl: embedded.url, embedded: true, stop: () => embedded.stop() };
}

/** Creates an empty database on the server and returns its URL. */
export async function createDatabase(adminUrl: string, prefix = 'saga_test'): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface MigratedDatabase {
  url: string;
  /** The production pool (lost connections are logged, not thrown). */
  pool: pg.Pool;
  /** Ends the pool, drops the database, stops an embedded server. */
  close(): Promise<void>;
}

/**
 * For files that talk SQL directly: a fresh database, migrated like production,
 * behind a pool: the saga log's, or (`participants`) the reference participants'.
 */
export async function migratedDatabase(prefix: string, poolMax: number, opts: { participants?: boolean } = {}): Promise<MigratedDatabase> {
  const server = await startTestServer();
  try {
    const created = await createDatabase(server.adminUrl, prefix);
    const log = createLogger('silent');
    let pool: pg.Pool;
    if (opts.participants === true) {
      await migrateParticipants(created.url);
      pool = participantPool(created.url, poolMax, log);
    } else {
      await (await openMigratedDatabase(created.url)).close();
      pool = createPool(created.url, poolMax, log);
    }
    return {
      url: created.url,
      pool,
      async close() {
        await pool.end();
        await created.drop();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
