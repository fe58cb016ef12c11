// The system a chaos run drives: one PostgreSQL server (embedded, or the one
// DATABASE_URL names), a database of the run's own on it with a recorder of
// every saga-log write, a proxy in front of it for the orchestrators and BFFs,
// and the roles of a cluster as processes the run can kill and restart.
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/http/server.js';
import { migrateParticipants } from '../../src/participants/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/persistence/embedded-postgres.js';
import { openMigratedDatabase } from '../../src/roles.js';
import { clusterRoles, type ClusterShape } from '../lib/cluster.js';
import { adminQuery } from '../lib/services.js';
import type { Query } from './ledger.js';
import { startPgProxy, type PgProxy } from './pg-proxy.js';
import { managedRole, type ManagedProcess } from './processes.js';
import { installWriteRecorder } from './recorder.js';

export interface ChaosDatabase {
  /** The run's database, directly (the harness's own reads). */
  url: string;
  /** The same database through the proxy (what the orchestrators and BFFs use). */
  proxiedUrl: string;
  proxy: PgProxy;
  pool: pg.Pool;
  query: Query;
  /** Every backend of the run's database terminated. */
  terminateBackends(): Promise<void>;
  /** PostgreSQL stopped in immediate mode and started again; false when the server is not ours (DATABASE_URL). */
  restart(): Promise<boolean>;
  close(): Promise<void>;
}

export async function openChaosDatabase(): Promise<ChaosDatabase> {
  const dataDir = path.join(tmpdir(), `saga-chaos-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  let embedded: EmbeddedDatabase | undefined;
  let serverUrl = process.env.DATABASE_URL;
  if (serverUrl === undefined || serverUrl === '') {
    embedded = await startEmbeddedPostgres({ dataDir, port, persistent: true });
    serverUrl = embedded.url;
  }
  const admin: string = serverUrl;
  const name = `saga_chaos_${randomBytes(4).toString('hex')}`;
  await adminQuery(admin, `create database ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  await (await openMigratedDatabase(databaseUrl)).close();
  await migrateParticipants(databaseUrl);
  await installWriteRecorder(databaseUrl);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  pool.on('error', () => undefined);
  const proxy = await startPgProxy({ host: url.hostname, port: Number(url.port || 5432) });
  return {
    url: databaseUrl,
    proxiedUrl: proxy.via(databaseUrl),
    proxy,
    pool,
    query: async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await pool.query<R>(sql, params)).rows,
    async terminateBackends() {
      await adminQuery(admin, `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`);
    },
    async restart() {
      if (embedded === undefined) return false;
      const postmasterPid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
      process.kill(postmasterPid, 'SIGQUIT');
      await new Promise((r) => setTimeout(r, 1_000));
      embedded = await startEmbeddedPostgres({ dataDir, port, persistent: true });
      return true;
    },
    async close() {
      await pool.end().catch(() => undefined);
      await proxy.close().catch(() => undefined);
      await adminQuery(admin, `drop database if exists ${name} with (force)`).catch(() => undefined);
      await embedded?.stop().catch(() => undefined);
      if (embedded !== undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Cluster {
  orchestrators: ManagedProcess[];
  bffs: ManagedProcess[];
  /** The BFFs up now, by URL (clients pick among them). */
  liveBffs: () => string[];
  start(): Promise<void>;
  /** Every process stopped: SIGTERM gives the leases back at once, SIGKILL leaves them to expire. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/** The orchestrators and BFFs of `shape` (its participants are the run's own), on free ports. */
export function cluster(shape: Omit<ClusterShape, 'orchestratorPort' | 'bffPort' | 'host'>, logDir: string): Cluster {
  const roles = clusterRoles({ ...shape, host: '127.0.0.1', orchestratorPort: () => 0, bffPort: () => 0 });
  const orchestrators = roles.filter((r) => r.script === 'orchestrator').map((r) => managedRole(r, logDir));
  const bffs = roles.filter((r) => r.script === 'bff').map((r) => managedRole(r, logDir));
  return {
    orchestrators,
    bffs,
    liveBffs: () => bffs.filter((b) => b.alive() && !b.starting()).map((b) => b.url),
    async start() {
      for (const p of [...orchestrators, ...bffs]) await p.start();
    },
    async stop(signal) {
      for (const p of [...orchestrators, ...bffs]) {
        p.resume();
        await p.kill(signal);
      }
    },
  };
}

/** The reference participants of a run: one process, on fixed ports (restarted on the same ones). */
export async function participantsProcess(
  databaseUrl: string,
  logDir: string,
): Promise<{ process: ManagedProcess; campaignsPort: number; appPort: number; campaigns: string; app: string }> {
  const campaignsPort = await freePort();
  const appPort = await freePort();
  const [spec] = clusterRoles({
    host: '127.0.0.1',
    orchestrators: 0,
    bffs: 0,
    orchestratorPort: () => 0,
    bffPort: () => 0,
    campaignsPort,
    appPort,
    env: { DATABASE_URL: databaseUrl },
    // Faults on, and only a repeated Idempotency-Key recognised: "one effect per call" then rests on the orchestrator's keys.
    participantsEnv: { PARTICIPANT_FAULTS: 'on', PARTICIPANT_DEDUPE: 'clave' },
  });
  return {
    process: managedRole(spec!, logDir),
    campaignsPort,
    appPort,
    campaigns: `http://127.0.0.1:${campaignsPort}`,
    app: `http://127.0.0.1:${appPort}`,
  };
}
