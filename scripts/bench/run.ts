// `npm run bench [-- --n N] [--concurrency C] [--mode engine|full] [--json FILE]
//                  [--participants stub|reference] [--participants-url URL]`
//
// Runs N three-step sagas (10% of them refused at the report, so they
// compensate two steps) at concurrency 1, 50 and 200 after a warm-up, in two
// modes: the engine alone (sagas started in this process through the
// Orchestrator library) and the full path (HTTP to the BFF, then a status
// request that waits for the end; `--poll-ms N` polls instead).
// Prints one table; refuses to print figures if any saga ended wrong.
//
// It is a benchmark, not a test: nothing in `npm test` depends on its timings.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { Orchestrator } from '../../src/orchestrator.js';
import { httpGateway } from '../../src/participants/gateway.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/persistence/embedded-postgres.js';
import { openMigratedDatabase } from '../../src/roles.js';
import { crearCampanaCompleta } from '../../src/sagas/crear-campana-completa/index.js';
import type { AnySagaType } from '../../src/saga/saga-type.js';
import { drive, engineDriver, fullDriver, type Driver, type SagaRun } from './drivers.js';
import { commitsSoFar, cpuSeconds, peakRss, percentile, postgresCpuSeconds } from './measure.js';
import { checkOutcomes, type ParticipantUrls } from './outcomes.js';
import { seedHistory, timeRequests } from './history.js';
import { adminQuery, waitHealthy } from '../lib/services.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    concurrency: { type: 'string' },
    mode: { type: 'string' },
    json: { type: 'string' },
    participants: { type: 'string', default: 'stub' },
    'participants-url': { type: 'string' },
    warmup: { type: 'string', default: '300' },
    'poll-ms': { type: 'string' },
    'log-level': { type: 'string', default: 'error' },
    history: { type: 'string', default: '0' },
    memory: { type: 'boolean', default: false },
    'write-concurrency': { type: 'string' },
    /** Child processes (orchestrator, BFF, participants) write V8 CPU profiles here. */
    'profile-dir': { type: 'string' },
  },
});
const HISTORY = Number(values.history);
const N = Number(values.n);
const CONCURRENCIES = values.concurrency === undefined ? [1, 50, 200] : [Number(values.concurrency)];
const MODES = values.mode === undefined ? (['engine', 'full'] as const) : ([values.mode] as ('engine' | 'full')[]);
const WARMUP = Number(values.warmup);
const LOG_LEVEL = values['log-level'];
if (!Number.isInteger(N) || N < 1 || CONCURRENCIES.some((c) => !Number.isInteger(c) || c < 1)) {
  throw new Error('--n and --concurrency take positive integers');
}
if (MODES.some((m) => m !== 'engine' && m !== 'full')) throw new Error('--mode is engine or full');

export interface Figures {
  mode: 'engine' | 'full';
  concurrency: number;
  n: number;
  sagas_per_second: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  commits_per_saga: number;
  orchestrator_cpu_s_per_1000: number;
  postgres_cpu_s_per_1000: number;
  peak_rss_mb: number;
  /** CPU of the participants' process, when the benchmark started it; null otherwise. */
  participants_cpu_s_per_1000: number | null;
  outcomes_ok: boolean;
  /** Finished sagas already in the log when this configuration ran. */
  history_sagas: number;
}

const children: ChildProcess[] = [];
/** Databases created on a server given by DATABASE_URL, dropped at the end. */
const createdDatabases: { serverUrl: string; name: string }[] = [];
let embedded: EmbeddedDatabase | undefined;
const say = (line: string) => process.stdout.write(`${line}\n`);

try {
  await main();
} finally {
  await Promise.all(children.map((c) => stopProcess(c)));
  if (embedded) await embedded.stop();
  else for (const d of createdDatabases) await adminQuery(d.serverUrl, `drop database if exists ${d.name} with (force)`).catch(() => undefined);
}

async function main(): Promise<void> {
  // ------------------------------------------------------------ PostgreSQL
  let serverUrl = process.env.DATABASE_URL;
  if (serverUrl === undefined || serverUrl === '') {
    embedded = await startEmbeddedPostgres({
      dataDir: path.join(os.tmpdir(), `saga-bench-${randomBytes(4).toString('hex')}`),
      port: await freePort(),
      persistent: false,
    });
    serverUrl = embedded.url;
  }
  const databaseUrl = await createDatabase(serverUrl, 'saga_bench');
  await (await openMigratedDatabase(databaseUrl)).close();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  pool.on('error', () => undefined);
  const { rows: version } = await pool.query<{ v: string }>("select current_setting('server_version') as v");

  // ------------------------------------------------------------ participants
  const participants = await startParticipants(serverUrl);
  say(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}, PostgreSQL ${version[0]?.v ?? '?'}${embedded ? ' (embedded)' : ''}`);
  say(`participants: ${participants.description}; ${N} sagas per configuration, 10% refused at the report; warm-up ${WARMUP}`);

  const figures: Figures[] = [];
  const problems: string[] = [];
  const runSet = async (history: number) => {
    for (const mode of MODES) {
      const system = mode === 'engine' ? await startEngine(databaseUrl, participants.urls) : await startFull(databaseUrl, participants.urls);
      try {
        await drive(system.driver, WARMUP, 50, `${mode}-warmup`);
        for (const concurrency of CONCURRENCIES) {
          const tag = `${mode}-${concurrency}-${randomBytes(3).toString('hex')}`;
          say(`… ${mode}, concurrency ${concurrency}${history > 0 ? `, ${history} sagas of history` : ''}`);
          const { figure, runs } = await measure(pool, participants.pid, system, mode, concurrency, tag);
          figure.history_sagas = history;
          const wrong = await checkOutcomes(pool, participants.urls, runs);
          figure.outcomes_ok = wrong.length === 0;
          problems.push(...wrong.map((p) => `${mode} c=${concurrency}: ${p}`));
          figures.push(figure);
        }
      } finally {
        await system.stop();
      }
    }
  };

  if (values.memory) {
    await memoryRun(databaseUrl, participants.urls);
  } else {
    await runSet(0);
    if (HISTORY > 0) {
      const t0 = Date.now();
      await seedHistory(pool, HISTORY, (done) => say(`  history: ${done} finished sagas written`));
      say(`  history seeded in ${Math.round((Date.now() - t0) / 1000)} s`);
      await timeListQuery(databaseUrl);
      await runSet(HISTORY);
    }
  }
  await pool.end();

  if (problems.length > 0) {
    say('\nWRONG OUTCOMES: no figures are printed for this run.');
    for (const p of problems.slice(0, 20)) say(`  ${p}`);
    process.exitCode = 1;
    return;
  }
  if (figures.length > 0) printTable(figures);
  if (values.json !== undefined) {
    await writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
    say(`figures written to ${values.json}`);
  }
}

interface System {
  driver: Driver;
  /** Live saga actors (engine mode; 0 where it cannot be asked). */
  actors(): Promise<number>;
  /** CPU seconds of the orchestrator so far. */
  cpu(): number;
  /** The process whose memory is reported. */
  pid: number;
  stop(): Promise<void>;
}

async function measure(
  pool: pg.Pool,
  participantsPid: number | undefined,
  system: System,
  mode: 'engine' | 'full',
  concurrency: number,
  tag: string,
): Promise<{ figure: Figures; runs: SagaRun[] }> {
  const commits0 = await commitsSoFar(pool);
  const pg0 = await postgresCpuSeconds(pool);
  const cpu0 = system.cpu();
  const part0 = participantsPid === undefined ? 0 : cpuSeconds(participantsPid);
  const memory = peakRss(system.pid);
  const t0 = performance.now();
  const runs = await drive(system.driver, N, concurrency, tag);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = system.cpu();
  const part1 = participantsPid === undefined ? 0 : cpuSeconds(participantsPid);
  const pg1 = await postgresCpuSeconds(pool);
  const peak = memory.stop();
  const commits1 = await commitsSoFar(pool);
  const latencies = runs.map((r) => r.latencyMs).sort((a, b) => a - b);
  const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    runs,
    figure: {
      mode,
      concurrency,
      n: N,
      sagas_per_second: round(N / seconds, 1),
      p50_ms: round(percentile(latencies, 50), 1),
      p95_ms: round(percentile(latencies, 95), 1),
      p99_ms: round(percentile(latencies, 99), 1),
      commits_per_saga: round((commits1 - commits0) / N),
      orchestrator_cpu_s_per_1000: round(((cpu1 - cpu0) * 1000) / N),
      postgres_cpu_s_per_1000: round(((pg1 - pg0) * 1000) / N),
      peak_rss_mb: round(peak, 0),
      participants_cpu_s_per_1000: participantsPid === undefined ? null : round(((part1 - part0) * 1000) / N),
      outcomes_ok: false,
      history_sagas: 0,
    },
  };
}

function printTable(figures: Figures[]): void {
  const header = ['mode', 'history', 'conc', 'n', 'sagas/s', 'p50 ms', 'p95 ms', 'p99 ms', 'commits/saga', 'orch CPU s/1000', 'PG CPU s/1000', 'participants CPU s/1000', 'peak RSS MB', 'outcomes'];
  const rows = figures.map((f) => [
    f.mode,
    f.history_sagas,
    f.concurrency,
    f.n,
    f.sagas_per_second,
    f.p50_ms,
    f.p95_ms,
    f.p99_ms,
    f.commits_per_saga,
    f.orchestrator_cpu_s_per_1000,
    f.postgres_cpu_s_per_1000,
    f.participants_cpu_s_per_1000 ?? '-',
    f.peak_rss_mb,
    f.outcomes_ok ? 'ok' : 'WRONG',
  ].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  say('');
  say(line(header));
  say(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) say(line(r));
}

// -------------------------------------------------------------- history and memory

/** List queries on a BFF over the long history: a deep page, and searches by business data. */
async function timeListQuery(databaseUrl: string): Promise<void> {
  const port = await freePort();
  const bff = startProcess('src/bin/bff.ts', {
    DATABASE_URL: databaseUrl,
    BFF_PORT: String(port),
    LOG_LEVEL,
    HOST: '127.0.0.1',
  });
  try {
    await waitHealthy(`http://127.0.0.1:${port}/health`);
    const f = (x: number) => x.toFixed(1);
    const history = HISTORY;
    for (const query of [
      'estado=COMPLETADA&pagina=500&limite=10',
      `id_afiliado=afiliado_${Math.floor(history / 3) % 10000}`,
      `referencia_pago=ref_${Math.floor(history / 2)}`,
      `id_afiliado=afiliado_7&estado=COMPLETADA&pagina=3&limite=10`,
    ]) {
      const url = `http://127.0.0.1:${port}/saga/?${query}`;
      await timeRequests(url, 3); // warm: connections, plans, cache
      const ms = await timeRequests(url, 100);
      say(`  GET /saga/?${query} over the history: p50 ${f(percentile(ms, 50))} ms, p99 ${f(percentile(ms, 99))} ms, max ${f(ms[ms.length - 1] ?? 0)} ms (100 requests)`);
    }
  } finally {
    await stopProcess(bff);
  }
}

/**
 * Memory against history: N sagas (default 2000; use --n 100000) at the first
 * concurrency, engine mode, with the orchestrator's resident memory and its
 * live actors reported at each tenth of the run.
 */
async function memoryRun(databaseUrl: string, urls: ParticipantUrls): Promise<void> {
  const system = await startEngine(databaseUrl, urls);
  try {
    await drive(system.driver, WARMUP, 50, 'memory-warmup');
    const concurrency = CONCURRENCIES[values.concurrency === undefined ? 2 : 0] ?? 200;
    const step = Math.max(1, Math.floor(N / 10));
    const points: { done: number; rssMb: number; heapMb: number; actors: number }[] = [];
    // A full collection before each reading, so a reading is what is retained
    // rather than where V8 happened to be in its collection cycle.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await drive(system.driver, N, concurrency, `memory-${randomBytes(3).toString('hex')}`, (done) => {
      if (done % step !== 0) return;
      gc();
      const m = process.memoryUsage();
      void system.actors().then((actors) => points.push({ done, rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20, actors }));
    });
    await new Promise((r) => setTimeout(r, 200));
    say(`\nmemory, engine mode, concurrency ${concurrency}`);
    say('| sagas done | RSS MB (after a full GC) | heap used MB | live saga actors |');
    say('|------------|--------------------------|--------------|------------------|');
    for (const p of points) say(`| ${p.done} | ${p.rssMb.toFixed(0)} | ${p.heapMb.toFixed(0)} | ${p.actors} |`);
  } finally {
    await system.stop();
  }
}

// -------------------------------------------------------------- the systems

async function startEngine(databaseUrl: string, urls: ParticipantUrls): Promise<System> {
  const db = await openMigratedDatabase(databaseUrl);
  const orchestrator = new Orchestrator({
    db,
    log: createLogger(LOG_LEVEL),
    gateway: httpGateway({ ...urls }),
    types: [crearCampanaCompleta() as unknown as AnySagaType],
    ...(values['write-concurrency'] === undefined ? {} : { writer: { concurrency: Number(values['write-concurrency']) } }),
  });
  await orchestrator.start();
  return {
    driver: engineDriver(orchestrator),
    actors: () => orchestrator.activeActors(),
    cpu: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
    pid: process.pid,
    async stop() {
      await orchestrator.stop();
      await db.close();
    },
  };
}

async function startFull(databaseUrl: string, urls: ParticipantUrls): Promise<System> {
  const orchestratorPort = await freePort();
  const bffPort = await freePort();
  const common = { DATABASE_URL: databaseUrl, LOG_LEVEL, HOST: '127.0.0.1' };
  const orchestrator = startProcess('src/bin/orchestrator.ts', {
    ...common,
    PORT: String(orchestratorPort),
    CAMPAIGNS_URL: urls.campaigns,
    PAGOS_URL: urls.pagos,
    REPORTING_URL: urls.reporting,
  });
  await waitHealthy(`http://127.0.0.1:${orchestratorPort}/health`);
  const bff = startProcess('src/bin/bff.ts', {
    ...common,
    BFF_PORT: String(bffPort),
    ORCHESTRATOR_URL: `http://127.0.0.1:${orchestratorPort}`,
  });
  await waitHealthy(`http://127.0.0.1:${bffPort}/health`);
  const pid = orchestrator.pid ?? 0;
  return {
    driver: fullDriver(`http://127.0.0.1:${bffPort}`, values['poll-ms'] === undefined ? undefined : Number(values['poll-ms'])),
    actors: () => Promise.resolve(0),
    cpu: () => cpuSeconds(pid),
    pid,
    async stop() {
      await Promise.all([stopProcess(bff), stopProcess(orchestrator)]);
    },
  };
}

interface Participants {
  urls: ParticipantUrls;
  description: string;
  /** The participants' process, when the benchmark started it (its CPU is reported too). */
  pid?: number;
}

async function startParticipants(serverUrl: string): Promise<Participants> {
  const external = values['participants-url'];
  if (external !== undefined) {
    return { urls: { campaigns: external, pagos: external, reporting: external }, description: `external server at ${external}` };
  }
  if (values.participants === 'reference') {
    // The reference services keep their own database, so their commits are not counted as the orchestrator's.
    const campaignsPort = await freePort();
    const appPort = await freePort();
    const child = startProcess('src/bin/participants.ts', {
      DATABASE_URL: await createDatabase(serverUrl, 'saga_bench_participants'),
      CAMPAIGNS_PORT: String(campaignsPort),
      APP_PORT: String(appPort),
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
    });
    const campaigns = `http://127.0.0.1:${campaignsPort}`;
    const app = `http://127.0.0.1:${appPort}`;
    await waitHealthy(`${campaigns}/health`);
    await waitHealthy(`${app}/health`);
    return { urls: { campaigns, pagos: app, reporting: app }, description: 'the reference services (own database)', pid: child.pid };
  }
  if (values.participants !== 'stub') throw new Error('--participants is stub or reference');
  const stub = startProcess('scripts/bench/participants-stub.ts', {}, true);
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: stub.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    stub.once('exit', () => reject(new Error('the participants stub exited')));
  });
  return { urls: { campaigns: url, pagos: url, reporting: url }, description: 'in-memory stub over HTTP, separate process', pid: stub.pid };
}

function startProcess(script: string, env: Record<string, string>, readStdout = false): ChildProcess {
  // An unread pipe would fill and block a process that logs: only read what we need.
  const profile = values['profile-dir'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['profile-dir']}`];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', readStdout ? 'pipe' : 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(hard);
}

async function createDatabase(serverUrl: string, prefix: string): Promise<string> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await adminQuery(serverUrl, `create database ${name}`);
  createdDatabases.push({ serverUrl, name });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
