// `npx tsx scripts/pulsar/load.ts [--clients 100] [--duration 60] [--warmup 300]
//                                 [--publish-wait 60] [--first without|with] [--json FILE]
//                                 [--profile-dir DIR]`
//
// Issue 20's target for the relay under load: `npm start` under 100 concurrent clients
// (each POSTs a saga, then waits on its status) runs at ≥ 0.85× the sagas/s it runs
// without Pulsar, saga_outbox_lag_seconds never passes 2 s, and every event is published
// once. It runs the system as `npm start` does (src/bin/all.ts: participants,
// orchestrator and BFF in one process, on an embedded PostgreSQL with a fresh data
// directory) twice, on free ports, with LOG_LEVEL=warn: once without PULSAR_URL and once with
// it. The broker is PULSAR_URL's (and PULSAR_WEB_URL's) when set, else Pulsar standalone
// started here once (scripts/pulsar/broker.ts); each run with it publishes to a topic of
// its own.
//
// Each run: a warm-up of --warmup sagas at the same concurrency, then --clients clients
// in a closed loop for --duration seconds (the bench's HTTP client, scripts/bench/drivers.ts:
// POST /saga/crear-campana-completa, then GET /saga/{id}/status?esperar_ms=30000; one in
// ten asks for a report that is refused, so the saga compensates). sagas/s counts the
// sagas finished within the duration. With Pulsar, GET /metrics of the orchestrator is
// read every 250 ms from the start of the measured run until every event is published
// (at most --publish-wait seconds), and the highest saga_outbox_lag_seconds is reported.
// Then Apache's Python client (scripts/pulsar/read_binary.py, in the venv of
// `npm run test:pulsar`) reads the topic over pulsar:// and compares it with the saga log:
// every saga's events, each once, in order.
//
// It prints both runs' sagas/s, the ratio, the highest lag, the events and copies, and the
// CPU each process used per 1,000 sagas (the system's process, PostgreSQL, the broker, this
// client), with the load average. Exit status 1 when the topic is wrong or events were
// left unpublished; the performance targets are reported, not enforced. With --profile-dir
// the system's process writes a V8 CPU profile of each run there (node --cpu-prof; read it
// with scripts/bench/profile-summary.ts).
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../../src/http/server.js';
import { embeddedUrl } from '../../src/persistence/embedded-postgres.js';
import { drive, fullDriver, request, type SagaRun } from '../bench/drivers.js';
import { cpuSeconds, percentile, postgresCpuSeconds } from '../bench/measure.js';
import { databaseNow, publishFigures, waitPublished, type PublishFigures } from '../bench/published.js';
import { spawnNode, stopChild } from '../lib/processes.js';
import { waitHealthy } from '../lib/services.js';
import { ensureBinaryReader, readOverBinaryProtocol, type BinaryReadReport } from './binary-reader.js';
import { measuredBroker, type MeasuredBroker } from './broker.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    duration: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '300' },
    'publish-wait': { type: 'string', default: '60' },
    first: { type: 'string', default: 'without' },
    json: { type: 'string' },
    'profile-dir': { type: 'string' },
  },
});
const clients = Number(values.clients);
const durationS = Number(values.duration);
const warmup = Number(values.warmup);
const publishWaitMs = Number(values['publish-wait']) * 1000;
if (!Number.isInteger(clients) || clients < 1) throw new Error('--clients takes a positive integer');
if (!(durationS > 0)) throw new Error('--duration takes a positive number of seconds');
if (!Number.isInteger(warmup) || warmup < 0) throw new Error('--warmup takes a number of sagas');
if (values.first !== 'without' && values.first !== 'with') throw new Error('--first is without or with');

const print = (line: string) => process.stdout.write(`[load] ${line}\n`);
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

interface RunResult {
  pulsar: boolean;
  sagas: number;
  sagasPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds per 1,000 sagas, over the measured run and its tail (warm-up not counted); the broker's in both runs. */
  cpuPer1000: { system: number; postgres: number; broker: number | null; client: number };
  loadBefore: string;
  loadAfter: string;
  /** With Pulsar only. */
  lag?: { samples: number; failedSamples: number; maxS: number; over2s: number };
  published?: PublishFigures & { unpublishedLeft: number };
  topic?: BinaryReadReport & { exitCode: number; topic: string };
}

let broker: MeasuredBroker | undefined;
let code = 1;
try {
  const python = ensureBinaryReader(print);
  broker = await measuredBroker(print);
  print(`broker: ${broker.description}`);
  print(`machine: ${cpus().length} CPUs, load average ${load()}; ${clients} clients for ${durationS} s after ${warmup} warm-up sagas`);
  const order = values.first === 'with' ? [true, false] : [false, true];
  const results: RunResult[] = [];
  for (const pulsar of order) results.push(await runOnce(pulsar, broker, python));
  const without = results.find((r) => !r.pulsar)!;
  const withPulsar = results.find((r) => r.pulsar)!;
  code = report(without, withPulsar);
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ clients, durationS, warmup, without, with: withPulsar }, null, 2)}\n`);
} catch (err) {
  print(`failed: ${(err as Error).stack ?? String(err)}`);
  code = 1;
} finally {
  await broker?.stop().catch(() => undefined);
}
process.exit(code);

/** One run of the whole system as `npm start` runs it, with or without Pulsar. */
async function runOnce(pulsar: boolean, broker: MeasuredBroker, python: string): Promise<RunResult> {
  const name = pulsar ? 'with Pulsar' : 'without Pulsar';
  const dataDir = path.join(tmpdir(), `saga-load-pg-${process.pid}-${randomBytes(4).toString('hex')}`);
  const ports = { PORT: await freePort(), BFF_PORT: await freePort(), CAMPAIGNS_PORT: await freePort(), APP_PORT: await freePort(), EMBEDDED_PG_PORT: await freePort() };
  const topic = `persistent://public/default/saga-events-load-${Date.now()}`;
  const profileDir = values['profile-dir'] === undefined ? undefined : path.resolve(values['profile-dir'], pulsar ? 'with-pulsar' : 'without-pulsar');
  const child = spawnNode('src/bin/all.ts', [], {
    ...(profileDir === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] }),
    env: {
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      EMBEDDED_PG_DIR: dataDir,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      NODE_ENV: undefined,
      DATABASE_URL: undefined,
      PULSAR_URL: undefined,
      PULSAR_WEB_URL: undefined,
      PULSAR_TOPIC: undefined,
      ...(pulsar ? broker.env(topic) : {}),
    },
    stdout: 'ignore',
    stderr: 'inherit',
  });
  const bff = `http://127.0.0.1:${ports.BFF_PORT}`;
  const orchestrator = `http://127.0.0.1:${ports.PORT}`;
  const pool = new pg.Pool({ connectionString: embeddedUrl(ports.EMBEDDED_PG_PORT), max: 2 });
  pool.on('error', () => undefined);
  try {
    const startedAt = Date.now();
    // At most three minutes each: the first start runs initdb.
    const exited = () => child.exitCode !== null;
    await waitHealthy(`${bff}/health`, exited, 180_000);
    await waitHealthy(`${orchestrator}/health`, exited, 180_000);
    print(`${name}: the system answered in ${((Date.now() - startedAt) / 1000).toFixed(1)} s${pulsar ? `; topic ${topic}` : ''}`);
    const driver = fullDriver([bff], undefined);
    const tag = randomBytes(3).toString('hex');
    if (warmup > 0) await drive(driver, warmup, clients, `load-warmup-${tag}`);

    const pid = child.pid!;
    const loadBefore = load();
    const cpu0 = { system: cpuSeconds(pid), postgres: await postgresCpuSeconds(pool), broker: broker.pid === undefined ? 0 : cpuSeconds(broker.pid), client: process.cpuUsage() };
    const lag = pulsar ? sampleLag(`${orchestrator}/metrics`) : undefined;
    const since = await databaseNow(pool);
    const runs: SagaRun[] = [];
    let inWindow = 0;
    const t0 = performance.now();
    const deadline = t0 + durationS * 1000;
    let next = 0;
    const client = async () => {
      while (performance.now() < deadline) {
        const i = next++;
        const { body, failing } = request(i, `load-${tag}`);
        const { sagaId, latencyMs } = await driver.runOne(body);
        if (performance.now() <= deadline) inWindow += 1;
        runs.push({ sagaId, failing, latencyMs });
      }
    };
    await Promise.all(Array.from({ length: clients }, client));
    const cpu1 = { system: cpuSeconds(pid), postgres: await postgresCpuSeconds(pool), broker: broker.pid === undefined ? 0 : cpuSeconds(broker.pid), client: process.cpuUsage(cpu0.client) };
    const loadAfter = load();
    const latencies = runs.map((r) => r.latencyMs).sort((a, b) => a - b);
    const per1000 = (s: number) => Math.round((s * 1000 * 1000) / runs.length) / 1000;
    const result: RunResult = {
      pulsar,
      sagas: inWindow,
      sagasPerSecond: Math.round((inWindow / durationS) * 10) / 10,
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
      cpuPer1000: {
        system: per1000(cpu1.system - cpu0.system),
        postgres: per1000(cpu1.postgres - cpu0.postgres),
        // Without Pulsar too: the idle broker shares the machine (its start's after-work shows here).
        broker: broker.pid === undefined ? null : per1000(cpu1.broker - cpu0.broker),
        client: per1000((cpu1.client.user + cpu1.client.system) / 1e6),
      },
      loadBefore,
      loadAfter,
    };
    print(
      `${name}: ${inWindow} sagas finished in ${durationS} s (${result.sagasPerSecond} sagas/s; ${runs.length} with the tail), ` +
        `latency p50 ${result.p50Ms} ms p99 ${result.p99Ms} ms; load average ${loadBefore} → ${loadAfter}`,
    );
    if (pulsar && lag !== undefined) {
      // Every saga of the log (warm-up too) is in the topic: wait for them all, sampling the lag on.
      const { rows } = await pool.query<{ id: string }>('select id from saga_log');
      const left = await waitPublished(pool, rows.map((r) => r.id), publishWaitMs);
      result.lag = await lag.stop();
      result.published = { ...(await publishFigures(pool, runs.map((r) => r.sagaId), since)), unpublishedLeft: left };
      const expected = await pool.query<{ saga_id: string; s: number[] }>(
        'select saga_id, array_agg(secuencia order by secuencia) as s from saga_events group by saga_id',
      );
      const read = await readOverBinaryProtocol(python, broker.serviceUrl, topic, new Map(expected.rows.map((r) => [r.saga_id, r.s])), { timeoutS: 180 });
      result.topic = { ...read, topic };
    }
    return result;
  } finally {
    await pool.end().catch(() => undefined);
    await stopChild(child, 'SIGTERM', 60_000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Reads saga_outbox_lag_seconds off GET /metrics every 250 ms (one request at a time) until stopped. */
function sampleLag(url: string): { stop(): Promise<NonNullable<RunResult['lag']>> } {
  let samples = 0;
  let failed = 0;
  let max = 0;
  let over = 0;
  let busy: Promise<void> | undefined;
  const once = async () => {
    try {
      const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
      const m = /^saga_outbox_lag_seconds (\S+)$/m.exec(text);
      if (m === null) throw new Error('no saga_outbox_lag_seconds');
      const v = Number(m[1]);
      samples += 1;
      max = Math.max(max, v);
      if (v > 2) over += 1;
    } catch {
      failed += 1;
    }
  };
  const timer = setInterval(() => {
    busy ??= once().finally(() => (busy = undefined));
  }, 250);
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      return { samples, failedSamples: failed, maxS: Math.round(max * 1000) / 1000, over2s: over };
    },
  };
}

function report(without: RunResult, withPulsar: RunResult): number {
  const ratio = withPulsar.sagasPerSecond / without.sagasPerSecond;
  const cpu = (r: RunResult) =>
    `system process ${r.cpuPer1000.system}, PostgreSQL ${r.cpuPer1000.postgres}` +
    `${r.cpuPer1000.broker === null ? '' : `, broker${r.pulsar ? '' : ' (idle)'} ${r.cpuPer1000.broker}`}, client ${r.cpuPer1000.client}`;
  const lag = withPulsar.lag!;
  const pub = withPulsar.published!;
  const topic = withPulsar.topic!;
  const lines = [
    '',
    `without Pulsar: ${without.sagasPerSecond} sagas/s (p50 ${without.p50Ms} ms, p99 ${without.p99Ms} ms); CPU s per 1,000 sagas: ${cpu(without)}; load ${without.loadBefore} → ${without.loadAfter}`,
    `with Pulsar:    ${withPulsar.sagasPerSecond} sagas/s (p50 ${withPulsar.p50Ms} ms, p99 ${withPulsar.p99Ms} ms); CPU s per 1,000 sagas: ${cpu(withPulsar)}; load ${withPulsar.loadBefore} → ${withPulsar.loadAfter}`,
    `ratio:          ${ratio.toFixed(3)} (target ≥ 0.85: ${ratio >= 0.85 ? 'met' : 'MISSED'})`,
    `outbox lag:     max ${lag.maxS} s over ${lag.samples} samples of saga_outbox_lag_seconds every 250 ms (${lag.over2s} above 2 s, ${lag.failedSamples} scrapes failed; target ≤ 2 s: ${lag.maxS <= 2 ? 'met' : 'MISSED'})`,
    `run's events:   ${pub.published} of ${pub.events} published (${pub.setAside} set aside, ${pub.unpublishedLeft} left after the wait), ` +
      `${pub.eventsPerSecond.toFixed(1)} events/s, publicado_en − fecha p99 ${pub.lagP99S.toFixed(3)} s, max ${pub.lagMaxS.toFixed(3)} s`,
    `topic (read over pulsar:// by Apache's Python client): ${topic.read} messages for ${topic.expected} events of the log (${topic.sagas} sagas), ` +
      `${topic.duplicates} copies, ${topic.wrong_sagas} sagas wrong, ${topic.out_of_order.length} out of order, ${topic.wrong_keys} wrong keys: ` +
      (topic.exitCode === 0 ? 'every event once' : 'WRONG'),
  ];
  for (const l of lines) print(l);
  return topic.exitCode === 0 && pub.unpublishedLeft === 0 ? 0 : 1;
}
