// `npm run bench [-- --n N] [--concurrency C] [--mode engine|full] [--json FILE]
//                  [--orchestrators N] [--bffs M] [--participants stub|reference]
//                  [--participants-url URL] [--history N] [--memory] [--profile-dir DIR]
//                  [--rate R [--duration S]] [--pulsar [--publish-wait S]]
//                  [--dbos [--dbos-first] [--dbos-pool-size N]]`
//
// Runs N three-step sagas (10% of them refused at the report, so they
// compensate two steps) at concurrency 1, 50 and 200 after a warm-up, in two
// modes: the engine alone (sagas started in this process through the
// Orchestrator library) and the full path (HTTP to the BFFs, which record the
// sagas that the orchestrator processes run, then a status request that waits
// for the end; `--poll-ms N` polls instead). Full mode runs `--orchestrators`
// orchestrator processes (default 1) and `--bffs` BFF processes (default 1).
// Prints one table; if any saga ended wrong it prints no figures and exits 1.
//
// `--rate R` runs an open loop instead of the concurrencies: R sagas are
// started per second whether or not the earlier ones have finished, each
// saga's latency counts from its intended start (a stall shows, rather than
// slowing the arrivals down), and `conc` is the most that were in flight at
// once. It runs --n sagas, or R × S with `--duration S` (seconds).
//
// `--pulsar` runs the full path's orchestrators with their outbox relay publishing to
// a real broker: PULSAR_URL's (and PULSAR_WEB_URL's) when set, else Pulsar standalone
// started here (scripts/pulsar/broker.ts), on a topic of its own unless PULSAR_TOPIC
// names one. Each run then waits (at most --publish-wait seconds, default 60) until its
// sagas' events are published and adds events/s and the outbox lag's p99 (read off
// saga_events, scripts/bench/published.ts). It implies --mode full (the engine mode runs no relay).
//
// `--dbos` runs, after each mode's rows, the same saga as a DBOS Transact workflow
// in this process (mode dbos, scripts/bench/dbos.ts; DBOS is installed on first use
// in scripts/bench/dbos/, outside the product's dependencies), with the same
// warm-up, loads and figures, and prints engine's sagas/s over DBOS's for each load.
// `--dbos-first` runs DBOS before the other modes; `--dbos-pool-size N` sets DBOS's
// system database pool (its default, 10, otherwise). docs/dbos-comparison.md.
//
// It is a benchmark, not a test: nothing in `npm test` depends on its timings.
// Scenario and measurements: scenario.ts; processes: processes.ts; table: report.ts.
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openMigratedDatabase } from '../../src/roles.js';
import { measuredBroker, measurementTopic, type MeasuredBroker } from '../pulsar/broker.js';
import { printRatios, printTable, writeJson, type Mode } from './report.js';
import { DBOS_VERSION, ensureDbosInstalled } from './dbos.js';
import { cleanUp, createDatabase, postgresServer, startParticipants } from './processes.js';
import { memoryRun, runAll, type Settings } from './scenario.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    concurrency: { type: 'string' },
    mode: { type: 'string' },
    json: { type: 'string' },
    orchestrators: { type: 'string', default: '1' },
    bffs: { type: 'string', default: '1' },
    participants: { type: 'string', default: 'stub' },
    'participants-url': { type: 'string' },
    warmup: { type: 'string', default: '300' },
    'poll-ms': { type: 'string' },
    'log-level': { type: 'string', default: 'error' },
    history: { type: 'string', default: '0' },
    memory: { type: 'boolean', default: false },
    'write-concurrency': { type: 'string' },
    /** Child processes (orchestrators, BFFs, participants) write V8 CPU profiles here. */
    'profile-dir': { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    pulsar: { type: 'boolean', default: false },
    'publish-wait': { type: 'string', default: '60' },
    dbos: { type: 'boolean', default: false },
    'dbos-first': { type: 'boolean', default: false },
    'dbos-pool-size': { type: 'string' },
  },
});
const positive = (name: string, v: number) => {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} takes a positive integer`);
  return v;
};
const rate = values.rate === undefined ? undefined : Number(values.rate);
if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) throw new Error('--rate takes a positive number of sagas per second');
if (values.duration !== undefined && rate === undefined) throw new Error('--duration goes with --rate');
if (values.rate !== undefined && values.concurrency !== undefined) throw new Error('--rate and --concurrency exclude each other');
if (values.pulsar && (values.mode === 'engine' || values.memory)) throw new Error('--pulsar measures the full path (the engine mode runs no relay)');
if ((values['dbos-first'] || values['dbos-pool-size'] !== undefined) && !values.dbos) throw new Error('--dbos-first and --dbos-pool-size go with --dbos');
if (values.dbos && (values.pulsar || values.memory || Number(values.history) > 0)) {
  throw new Error('--dbos compares closed or open loops on an empty log: not with --pulsar, --memory or --history');
}
const publishWaitS = Number(values['publish-wait']);
if (!(Number.isFinite(publishWaitS) && publishWaitS >= 0)) throw new Error('--publish-wait takes a number of seconds');
const settings: Settings = {
  n: values.duration === undefined ? positive('n', Number(values.n)) : positive('duration × rate', Math.round(Number(values.duration) * rate!)),
  ...(rate === undefined ? {} : { rate }),
  warmup: Number(values.warmup),
  modes: withDbos(values.pulsar ? ['full'] : values.mode === undefined ? ['engine', 'full'] : [values.mode as Mode]),
  concurrencies: values.concurrency === undefined ? [1, 50, 200] : [positive('concurrency', Number(values.concurrency))],
  orchestrators: positive('orchestrators', Number(values.orchestrators)),
  bffs: positive('bffs', Number(values.bffs)),
  history: Number(values.history),
  logLevel: values['log-level'],
  ...(values['poll-ms'] === undefined ? {} : { pollMs: Number(values['poll-ms']) }),
  ...(values['write-concurrency'] === undefined ? {} : { writeConcurrency: Number(values['write-concurrency']) }),
  ...(values['profile-dir'] === undefined ? {} : { profileDir: values['profile-dir'] }),
  publishWaitMs: publishWaitS * 1000,
  ...(values['dbos-pool-size'] === undefined ? {} : { dbosPoolSize: positive('dbos-pool-size', Number(values['dbos-pool-size'])) }),
};
if (values.mode !== undefined && values.mode !== 'engine' && values.mode !== 'full') throw new Error('--mode is engine or full');
const say = (line: string) => process.stdout.write(`${line}\n`);

/** The modes asked for, and DBOS after them (or before, --dbos-first) with --dbos. */
function withDbos(modes: Mode[]): Mode[] {
  if (!values.dbos) return modes;
  return values['dbos-first'] ? ['dbos', ...modes] : [...modes, 'dbos'];
}

let code = 1;
let broker: MeasuredBroker | undefined;
try {
  code = await main();
} catch (err) {
  say(`bench failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanUp();
  await broker?.stop().catch(() => undefined);
}
// The embedded server's exit hook calls process.exit(0): the code must be given here.
process.exit(code);

async function main(): Promise<number> {
  const server = await postgresServer();
  const databaseUrl = await createDatabase(server.serverUrl, 'saga_bench');
  if (values.dbos) {
    ensureDbosInstalled(say);
    // DBOS's system database: a database of its own on the same server.
    settings.dbosDatabaseUrl = await createDatabase(server.serverUrl, 'dbos_bench');
  }
  await (await openMigratedDatabase(databaseUrl)).close();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  pool.on('error', () => undefined);
  try {
    const { rows: version } = await pool.query<{ v: string }>("select current_setting('server_version') as v");
    const participants = await startParticipants(
      server.serverUrl,
      { participants: values.participants, ...(values['participants-url'] === undefined ? {} : { url: values['participants-url'] }) },
      settings,
    );
    say(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}, PostgreSQL ${version[0]?.v ?? '?'}${server.embedded ? ' (embedded)' : ''}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    say(`participants: ${participants.description}; ${settings.n} sagas per configuration, 10% refused at the report; warm-up ${settings.warmup}`);
    if (values.dbos) {
      say(`dbos: DBOS Transact ${DBOS_VERSION} in this process, its system database a database of its own on the same server, ${settings.dbosPoolSize === undefined ? 'its defaults (pool of 10 connections)' : `its defaults but a pool of ${settings.dbosPoolSize} connections (--dbos-pool-size)`}; log level ${settings.logLevel} as the engine's`);
    }
    if (values.pulsar) {
      broker = await measuredBroker(say);
      const topic = measurementTopic('bench');
      settings.pulsarEnv = broker.env(topic);
      say(`pulsar: ${broker.description}; topic ${topic}; after each run, at most ${publishWaitS} s for its events to be published`);
    }

    if (values.memory) {
      await memoryRun(settings, databaseUrl, participants, values.concurrency === undefined ? 200 : settings.concurrencies[0]!, say);
      return 0;
    }
    const { figures, problems } = await runAll(settings, databaseUrl, pool, participants, say);
    if (problems.length > 0) {
      say('\nWRONG OUTCOMES: no figures are printed for this run.');
      for (const p of problems.slice(0, 20)) say(`  ${p}`);
      return 1;
    }
    printTable(figures, say);
    printRatios(figures, say);
    if (values.json !== undefined) {
      await writeJson(values.json, figures);
      say(`figures written to ${values.json}`);
    }
    return 0;
  } finally {
    await pool.end();
  }
}
