// What the benchmark runs and measures: each mode at each concurrency after a
// warm-up, its figures, and the check that every saga ended where it should;
// the list queries over a long history; memory against the number of sagas.
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type pg from 'pg';
import { freePort } from '../../src/http/server.js';
import { waitHealthy } from '../lib/services.js';
import { drive, driveOpen, type SagaRun } from './drivers.js';
import { seedHistory, timeRequests } from './history.js';
import { commitsSoFar, cpuSeconds, deadlocksSoFar, peakRss, percentile, postgresCpuSeconds, walBytesBetween, walPosition } from './measure.js';
import { databaseNow, publishFigures, waitPublished } from './published.js';
import { checkOutcomes, sagaLogEnds, type EndsOf } from './outcomes.js';
import { startEngine, startFull, startProcess, stopProcess, type Participants, type ProcessOptions, type System } from './processes.js';
import type { Figures, Mode } from './report.js';
import { startDbos } from './dbos.js';

export interface Settings extends ProcessOptions {
  n: number;
  warmup: number;
  /** In this order; `dbos` is DBOS Transact running the same saga (dbos.ts), compared with `engine`. */
  modes: readonly Mode[];
  /** The database DBOS Transact is given as its system database (mode dbos). */
  dbosDatabaseUrl?: string;
  /** DBOS's system database pool (--dbos-pool-size); DBOS's default (10) when undefined. */
  dbosPoolSize?: number;
  concurrencies: readonly number[];
  /** Open loop: sagas started per second, whatever the earlier ones are doing (replaces the concurrencies). */
  rate?: number;
  /** Full mode: orchestrator and BFF processes. */
  orchestrators: number;
  bffs: number;
  pollMs?: number;
  writeConcurrency?: number;
  history: number;
  /**
   * --pulsar: the orchestrators' environment to publish to the broker (full mode). After
   * each run the benchmark waits, at most `publishWaitMs`, until the run's events are
   * published, then reads events/s and the outbox lag off the saga log.
   */
  pulsarEnv?: Record<string, string>;
  publishWaitMs?: number;
}

export interface Results {
  figures: Figures[];
  /** Sagas that ended wrong (at most 20 per configuration): no figures are valid then. */
  problems: string[];
}

/** Every mode at every concurrency, on an empty log and then (with --history) after seeding a long one. */
export async function runAll(s: Settings, databaseUrl: string, pool: pg.Pool, participants: Participants, say: (l: string) => void): Promise<Results> {
  const results: Results = { figures: [], problems: [] };
  await runSet(s, databaseUrl, pool, participants, 0, results, say);
  if (s.history > 0) {
    const t0 = Date.now();
    await seedHistory(pool, s.history, (done) => say(`  history: ${done} finished sagas written`));
    say(`  history seeded in ${Math.round((Date.now() - t0) / 1000)} s`);
    await timeListQueries(s, databaseUrl, say);
    await runSet(s, databaseUrl, pool, participants, s.history, results, say);
  }
  return results;
}

async function runSet(
  s: Settings,
  databaseUrl: string,
  pool: pg.Pool,
  participants: Participants,
  history: number,
  results: Results,
  say: (l: string) => void,
): Promise<void> {
  for (const mode of s.modes) {
    // The figures' pool: commits are counted in the database the system writes to (DBOS's own, for dbos).
    let figuresPool = pool;
    let endsOf: EndsOf = sagaLogEnds(pool);
    let system: System;
    if (mode === 'dbos') {
      if (s.dbosDatabaseUrl === undefined) throw new Error('mode dbos needs a database of its own');
      const dbos = await startDbos(s.dbosDatabaseUrl, participants.urls, s.logLevel, s.dbosPoolSize);
      ({ pool: figuresPool } = dbos);
      endsOf = (ids) => dbos.ends(ids);
      system = dbos;
    } else {
      system =
        mode === 'engine'
          ? await startEngine(databaseUrl, participants.urls, { ...s, ...(s.writeConcurrency === undefined ? {} : { writeConcurrency: s.writeConcurrency }) })
          : await startFull(databaseUrl, participants.urls, { orchestrators: s.orchestrators, bffs: s.bffs, ...(s.pollMs === undefined ? {} : { pollMs: s.pollMs }) }, s);
    }
    try {
      await drive(system.driver, s.warmup, 50, `${mode}-warmup-${randomBytes(3).toString('hex')}`);
      const loads: Load[] = s.rate === undefined ? s.concurrencies.map((concurrency) => ({ concurrency })) : [{ rate: s.rate }];
      for (const load of loads) {
        const name = 'rate' in load ? `rate ${load.rate}/s (open loop)` : `concurrency ${load.concurrency}`;
        const tag = `${mode}-${'rate' in load ? `r${load.rate}` : load.concurrency}-${randomBytes(3).toString('hex')}`;
        const shape = mode === 'full' ? `, ${s.orchestrators} orchestrator(s), ${s.bffs} BFF(s)` : '';
        say(`… ${mode}${shape}, ${name}${history > 0 ? `, ${history} sagas of history` : ''}`);
        // One saga per client first, off the clock, so the run starts with its
        // connections open: a burst of new connections waits in a busy BFF's
        // accept queue (0.5–3.9 s measured), and the previous configuration's
        // idle connections were closed by the BFF's keep-alive timeout. An open
        // loop opens about one second's worth.
        const clients = 'rate' in load ? Math.min(200, Math.ceil(load.rate)) : load.concurrency;
        await drive(system.driver, clients, clients, `${tag}-connections`);
        const { figure, runs } = await measure(s, figuresPool, participants.pid, system, mode, load, tag, say);
        figure.history_sagas = history;
        const wrong = await checkOutcomes(endsOf, participants.urls, runs);
        figure.outcomes_ok = wrong.length === 0;
        results.problems.push(...wrong.map((p) => `${mode} ${'rate' in load ? `rate=${load.rate}` : `c=${load.concurrency}`}: ${p}`));
        results.figures.push(figure);
      }
    } finally {
      await system.stop();
    }
  }
}

/** A closed loop (so many sagas in flight at any time) or an open one (so many started per second). */
type Load = { concurrency: number } | { rate: number };

async function measure(
  s: Settings,
  pool: pg.Pool,
  participantsPid: number | undefined,
  system: System,
  mode: Mode,
  load: Load,
  tag: string,
  say: (l: string) => void,
): Promise<{ figure: Figures; runs: SagaRun[] }> {
  const commits0 = await commitsSoFar(pool);
  const deadlocks0 = await deadlocksSoFar(pool);
  const pg0 = await postgresCpuSeconds(pool);
  const cpu0 = system.cpu();
  const part0 = participantsPid === undefined ? 0 : cpuSeconds(participantsPid);
  const memory = system.pids.map((pid) => peakRss(pid));
  const wal0 = await walPosition(pool);
  // With Pulsar: the run's start on the clock publicado_en is written with.
  const since = s.pulsarEnv === undefined || mode !== 'full' ? undefined : await databaseNow(pool);
  const t0 = performance.now();
  let runs: SagaRun[];
  let concurrency: number;
  if ('rate' in load) {
    // The concurrency of an open loop is what the rate and the latency made it: the most in flight at once.
    ({ runs, peakInFlight: concurrency } = await driveOpen(system.driver, s.n, load.rate, tag));
  } else {
    concurrency = load.concurrency;
    runs = await drive(system.driver, s.n, concurrency, tag);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = system.cpu();
  const part1 = participantsPid === undefined ? 0 : cpuSeconds(participantsPid);
  const pg1 = await postgresCpuSeconds(pool);
  const walBytes = await walBytesBetween(pool, wal0, await walPosition(pool));
  const peak = Math.max(...memory.map((m) => m.stop()));
  const commits1 = await commitsSoFar(pool);
  const deadlocks1 = await deadlocksSoFar(pool);
  const latencies = runs.map((r) => r.latencyMs).sort((a, b) => a - b);
  const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  const per1000 = (seconds: number) => round((seconds * 1000) / s.n);
  let published: Pick<Figures, 'events_per_second' | 'outbox_lag_p99_s' | 'events_unpublished'> = {
    events_per_second: null,
    outbox_lag_p99_s: null,
    events_unpublished: null,
  };
  if (since !== undefined) {
    // Every figure above is taken; now the relay may finish publishing the run's events.
    const sagaIds = runs.map((r) => r.sagaId);
    const waitMs = s.publishWaitMs ?? 60_000;
    const left = await waitPublished(pool, sagaIds, waitMs);
    const p = await publishFigures(pool, sagaIds, since);
    if (left > 0) say(`  ${left} of the run's ${p.events} events were still unpublished ${waitMs / 1000} s after the run: events/s counts the published ones; the lag counts the others as published now`);
    if (p.setAside > 0) say(`  ${p.setAside} of the run's events were set aside by the relay (saga_events_descartados)`);
    published = { events_per_second: round(p.eventsPerSecond, 1), outbox_lag_p99_s: round(p.lagP99S, 3), events_unpublished: left };
  }
  return {
    runs,
    figure: {
      mode,
      orchestrators: mode === 'full' ? s.orchestrators : 1,
      bffs: mode === 'full' ? s.bffs : 0,
      concurrency,
      rate: 'rate' in load ? load.rate : null,
      n: s.n,
      sagas_per_second: round(s.n / seconds, 1),
      p50_ms: round(percentile(latencies, 50), 1),
      p95_ms: round(percentile(latencies, 95), 1),
      p99_ms: round(percentile(latencies, 99), 1),
      commits_per_saga: round((commits1 - commits0) / s.n),
      orchestrator_cpu_s_per_1000: per1000(cpu1.orchestrator - cpu0.orchestrator),
      bff_cpu_s_per_1000: cpu1.bff === null || cpu0.bff === null ? null : per1000(cpu1.bff - cpu0.bff),
      driver_cpu_s_per_1000: cpu1.driver === null || cpu0.driver === null ? null : per1000(cpu1.driver - cpu0.driver),
      postgres_cpu_s_per_1000: per1000(pg1 - pg0),
      peak_rss_mb: round(peak, 0),
      participants_cpu_s_per_1000: participantsPid === undefined ? null : per1000(part1 - part0),
      deadlocks: deadlocks1 - deadlocks0,
      outcomes_ok: false,
      history_sagas: 0,
      wal_kb_per_saga: round(walBytes / 1024 / s.n),
      ...published,
    },
  };
}

/** List queries on a BFF over the long history: a deep page, and searches by business data. */
async function timeListQueries(s: Settings, databaseUrl: string, say: (l: string) => void): Promise<void> {
  const port = await freePort();
  const bff = startProcess('src/bin/bff.ts', { DATABASE_URL: databaseUrl, BFF_PORT: String(port), LOG_LEVEL: s.logLevel, HOST: '127.0.0.1' }, s);
  try {
    await waitHealthy(`http://127.0.0.1:${port}/health`);
    const f = (x: number) => x.toFixed(1);
    for (const query of [
      'estado=COMPLETADA&pagina=500&limite=10',
      `id_afiliado=afiliado_${Math.floor(s.history / 3) % 10000}`,
      `referencia_pago=ref_${Math.floor(s.history / 2)}`,
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
 * Memory against history: N sagas (use --n 100000) at `concurrency`, engine
 * mode, with the orchestrator's resident memory and its live actors reported
 * at each tenth of the run.
 */
export async function memoryRun(s: Settings, databaseUrl: string, participants: Participants, concurrency: number, say: (l: string) => void): Promise<void> {
  const system = await startEngine(databaseUrl, participants.urls, s);
  try {
    await drive(system.driver, s.warmup, 50, 'memory-warmup');
    const step = Math.max(1, Math.floor(s.n / 10));
    const points: { done: number; rssMb: number; heapMb: number; actors: number }[] = [];
    // A full collection before each reading, so a reading is what is retained
    // rather than where V8 happened to be in its collection cycle.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await drive(system.driver, s.n, concurrency, `memory-${randomBytes(3).toString('hex')}`, (done) => {
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
