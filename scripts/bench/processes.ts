// Process handling for the benchmark: its own PostgreSQL (or databases of its
// own on DATABASE_URL), the participants (a stub process, the reference
// services, or an external server), and the system under test: the engine in
// this process, or the full path as processes (N orchestrators, M BFFs).
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { freePort } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { Orchestrator } from '../../src/orchestrator.js';
import { httpGateway } from '../../src/gateway/participant-gateway.js';
import { openMigratedDatabase } from '../../src/roles.js';
import { crearCampanaCompleta } from '../../src/sagas/crear-campana-completa/index.js';
import type { AnySagaType } from '../../src/saga/saga-type.js';
import { createDatabase as createServerDatabase, startTestServer, type TestServer } from '../../test/helpers/database.js';
import { spawnNode, stopChild } from '../lib/processes.js';
import { waitHealthy } from '../lib/services.js';
import { engineDriver, fullDriver, type Driver } from './drivers.js';
import { cpuSeconds } from './measure.js';
import type { ParticipantUrls } from './outcomes.js';

export interface ProcessOptions {
  logLevel: string;
  /** Child processes write V8 CPU profiles here. */
  profileDir?: string;
}

/** What a measurement runs against. */
export interface System {
  driver: Driver;
  /** Live saga actors (engine mode; 0 where it cannot be asked). */
  actors(): Promise<number>;
  /**
   * CPU seconds so far of the orchestrator(s), of the BFF(s) and of the driver
   * (this process, in full mode); null where there is none or it is counted with the orchestrator.
   */
  cpu(): { orchestrator: number; bff: number | null; driver: number | null };
  /** The processes whose memory is reported (the orchestrators). */
  pids: number[];
  stop(): Promise<void>;
}

export interface Participants {
  urls: ParticipantUrls;
  description: string;
  /** The participants' process, when the benchmark started it (its CPU is reported too). */
  pid?: number;
}

const children: ChildProcess[] = [];
/** Drops the databases created on the server, at the end. */
const drops: (() => Promise<void>)[] = [];
let server: TestServer | undefined;

/** A PostgreSQL server: DATABASE_URL's, or an embedded one removed at the end (the tests' own, test/helpers/database.ts). */
export async function postgresServer(): Promise<{ serverUrl: string; embedded: boolean }> {
  server = await startTestServer();
  return { serverUrl: server.adminUrl, embedded: server.embedded };
}

/** A new database on `serverUrl`, dropped at the end. */
export async function createDatabase(serverUrl: string, prefix: string): Promise<string> {
  const created = await createServerDatabase(serverUrl, prefix);
  drops.push(created.drop);
  return created.url;
}

/** Stops every child process and the embedded server, or drops the databases created on DATABASE_URL. */
export async function cleanUp(): Promise<void> {
  await Promise.all(children.map((c) => stopProcess(c)));
  if (server?.embedded === true) await server.stop();
  else for (const drop of drops) await drop().catch(() => undefined);
}

/** `env` is over this process's environment; a key set to undefined is left out. */
export function startProcess(script: string, env: Record<string, string | undefined>, opts: ProcessOptions, readStdout = false): ChildProcess {
  // An unread pipe would fill and block a process that logs: only read what we need.
  const profile = opts.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`];
  const child = spawnNode(script, [], { env, nodeArgs: profile, stdout: readStdout ? 'pipe' : 'ignore', stderr: 'inherit' });
  children.push(child);
  return child;
}

export const stopProcess = (child: ChildProcess): Promise<void> => stopChild(child);

/** The engine in this process, through the Orchestrator library, as a library user would run it. */
export async function startEngine(databaseUrl: string, urls: ParticipantUrls, opts: ProcessOptions & { writeConcurrency?: number }): Promise<System> {
  const db = await openMigratedDatabase(databaseUrl);
  const orchestrator = new Orchestrator({
    db,
    log: createLogger(opts.logLevel),
    gateway: httpGateway({ ...urls }),
    types: [crearCampanaCompleta() as unknown as AnySagaType],
    ...(opts.writeConcurrency === undefined ? {} : { writer: { concurrency: opts.writeConcurrency } }),
  });
  await orchestrator.start();
  return {
    driver: engineDriver(orchestrator),
    actors: () => orchestrator.activeActors(),
    cpu: () => {
      const u = process.cpuUsage();
      return { orchestrator: (u.user + u.system) / 1e6, bff: null, driver: null };
    },
    pids: [process.pid],
    async stop() {
      await orchestrator.stop();
      await db.close();
    },
  };
}

/** The full path: `orchestrators` orchestrator processes sharing the shards, and `bffs` BFF processes clients spread over. */
export async function startFull(
  databaseUrl: string,
  urls: ParticipantUrls,
  shape: { orchestrators: number; bffs: number; pollMs?: number },
  opts: ProcessOptions & { pulsarEnv?: Record<string, string> },
): Promise<System> {
  const common = { DATABASE_URL: databaseUrl, LOG_LEVEL: opts.logLevel, HOST: '127.0.0.1' };
  // The orchestrators publish to Pulsar only with --pulsar: a PULSAR_URL of the shell is not passed on.
  const pulsar = opts.pulsarEnv ?? { PULSAR_URL: undefined, PULSAR_WEB_URL: undefined, PULSAR_TOPIC: undefined };
  const orchestrators: ChildProcess[] = [];
  for (let i = 0; i < shape.orchestrators; i++) {
    const port = await freePort();
    orchestrators.push(
      startProcess(
        'src/bin/orchestrator.ts',
        { ...common, ...pulsar, PORT: String(port), CAMPAIGNS_URL: urls.campaigns, PAGOS_URL: urls.pagos, REPORTING_URL: urls.reporting },
        opts,
      ),
    );
    await waitHealthy(`http://127.0.0.1:${port}/health`);
  }
  const bffs: ChildProcess[] = [];
  const bffUrls: string[] = [];
  for (let i = 0; i < shape.bffs; i++) {
    const port = await freePort();
    bffs.push(startProcess('src/bin/bff.ts', { ...common, BFF_PORT: String(port) }, opts));
    bffUrls.push(`http://127.0.0.1:${port}`);
    await waitHealthy(`http://127.0.0.1:${port}/health`);
  }
  await sharesTaken(databaseUrl, shape.orchestrators);
  const sum = (ps: ChildProcess[]) => ps.reduce((s, p) => s + cpuSeconds(p.pid ?? 0), 0);
  return {
    driver: fullDriver(bffUrls, shape.pollMs),
    actors: () => Promise.resolve(0),
    cpu: () => {
      const u = process.cpuUsage();
      return { orchestrator: sum(orchestrators), bff: sum(bffs), driver: (u.user + u.system) / 1e6 };
    },
    pids: orchestrators.map((o) => o.pid ?? 0),
    async stop() {
      await Promise.all([...bffs, ...orchestrators].map((c) => stopProcess(c)));
    },
  };
}

/** Waits (at most a minute) until each of `n` orchestrators holds its fair share of the shards. */
async function sharesTaken(databaseUrl: string, n: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (const until = Date.now() + 60_000; Date.now() < until; ) {
      const { rows } = await client.query<{ owner: string; n: number }>(
        'select owner, count(*)::int as n from saga_shards where owner is not null and lease_until > now() group by owner',
      );
      const total = rows.reduce((s, r) => s + r.n, 0);
      if (rows.length === n && rows.every((r) => r.n >= Math.floor(total / n))) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`the ${n} orchestrators did not share the shards within a minute`);
  } finally {
    await client.end();
  }
}

/** The participants: an external server, the reference services (a database of their own), or the in-memory stub. */
export async function startParticipants(
  serverUrl: string,
  kind: { participants: string; url?: string },
  opts: ProcessOptions,
): Promise<Participants> {
  if (kind.url !== undefined) {
    return { urls: { campaigns: kind.url, pagos: kind.url, reporting: kind.url }, description: `external server at ${kind.url}` };
  }
  if (kind.participants === 'reference') {
    const campaignsPort = await freePort();
    const appPort = await freePort();
    const child = startProcess(
      'src/bin/participants.ts',
      {
        DATABASE_URL: await createDatabase(serverUrl, 'saga_bench_participants'),
        CAMPAIGNS_PORT: String(campaignsPort),
        APP_PORT: String(appPort),
        LOG_LEVEL: 'warn',
        HOST: '127.0.0.1',
      },
      opts,
    );
    const campaigns = `http://127.0.0.1:${campaignsPort}`;
    const app = `http://127.0.0.1:${appPort}`;
    await waitHealthy(`${campaigns}/health`);
    await waitHealthy(`${app}/health`);
    return { urls: { campaigns, pagos: app, reporting: app }, description: 'the reference services (own database)', ...(child.pid === undefined ? {} : { pid: child.pid }) };
  }
  if (kind.participants !== 'stub') throw new Error('--participants is stub or reference');
  const stub = startProcess('scripts/bench/participants-stub.ts', {}, opts, true);
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: stub.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    stub.once('exit', () => reject(new Error('the participants stub exited')));
  });
  return { urls: { campaigns: url, pagos: url, reporting: url }, description: 'in-memory stub over HTTP, separate process', ...(stub.pid === undefined ? {} : { pid: stub.pid }) };
}
