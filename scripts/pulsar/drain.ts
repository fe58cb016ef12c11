// `npx tsx scripts/pulsar/drain.ts [--events N] [--per-saga K] [--batch B] [--sagas-per-tx S] [--shards H]`:
// how fast the outbox relay drains a backlog into a real broker. Writes N events (K per
// saga; by default in K transactions, sagas interleaved, as sagas running side by side
// write them; with S, in transactions of S whole sagas) into a fresh saga log, its sagas
// spread over H shards (1 by default), then holds those shards' leases and starts the
// relay over them (one pass for all, each shard its own producer over the WebSocket API,
// as one process holding them does) and times them until nothing is pending. Uses PULSAR_WEB_URL's broker when set, else starts Pulsar
// standalone on free ports; PostgreSQL is DATABASE_URL's server or an embedded one.
// With the broker's pulsar:// URL (its own, or PULSAR_URL) it then reads the topic back
// with Apache's Python client (scripts/pulsar/read_binary.py) and checks every saga.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OutboxRelay } from '../../src/events/outbox-relay.js';
import { producerName } from '../../src/events/outbox-queries.js';
import { binaryTransport } from '../../src/events/binary-transport.js';
import { websocketTransport } from '../../src/events/websocket-transport.js';
import { freePort } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { migratedDatabase } from '../../test/helpers/database.js';
import { takeLease } from '../../test/helpers/leases.js';
import { ensureBinaryReader, readOverBinaryProtocol } from './binary-reader.js';
import { resolveClasspath, startStandalone, type RunningStandalone } from './standalone.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    'per-saga': { type: 'string', default: '8' },
    batch: { type: 'string', default: '5000' },
    // 0: one transaction per step across all sagas (each saga's events in 8 transactions).
    // N: transactions of N whole sagas each (all of a saga's events at once, as sagas that
    // ran to the end while the relay was away leave them).
    'sagas-per-tx': { type: 'string', default: '0' },
    shards: { type: 'string', default: '1' },
    // websocket (the WebSocket API on the broker's web service) or binary (pulsar://, src/events/binary-transport.ts).
    transport: { type: 'string', default: 'websocket' },
  },
});
const perSaga = Number(values['per-saga']);
const shardCount = Number(values.shards);
const sagas = Math.ceil(Number(values.events) / perSaga);
const total = sagas * perSaga;
const print = (line: string) => process.stdout.write(`[drain] ${line}\n`);

let broker: RunningStandalone | undefined;
let dataDir: string | undefined;
let webUrl = process.env.PULSAR_WEB_URL;
let serviceUrl = process.env.PULSAR_URL;
if (webUrl === undefined) {
  dataDir = mkdtempSync(path.join(tmpdir(), 'saga-pulsar-drain-'));
  broker = await startStandalone(
    { dataDir, brokerPort: await freePort(), webPort: await freePort(), bookiePort: await freePort() },
    resolveClasspath(print),
  );
  webUrl = broker.webUrl;
  serviceUrl = broker.serviceUrl;
  print(`Pulsar standalone started in ${(broker.startMs / 1000).toFixed(1)} s on ${broker.serviceUrl} and ${webUrl}`);
}
const db = await migratedDatabase('drain', 4);
let code = 1;
/** The broker JVM's CPU seconds so far (PULSAR_PID names it when PULSAR_WEB_URL is given); 0 when unknown. */
function brokerCpuSeconds(): number {
  const pid = broker?.pid ?? Number(process.env.PULSAR_PID ?? 0);
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
try {
  const ids = (
    await db.pool.query<{ id: string }>(
      `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, fecha_inicio, fecha_actualizacion, shard)
       select gen_random_uuid(), 'T', 'INICIADA', '{}', '{}', 1, 30, now(), now(), now(), i % $2 from generate_series(1, $1) as i returning id`,
      [sagas, shardCount],
    )
  ).rows.map((r) => r.id);
  const insert = (sagaIds: string[], from: number, to: number) =>
    db.pool.query(
      `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, epoch, shard)
       select s.id, n, 'SagaPasoEjecutado', 'EN_PROGRESO',
              jsonb_build_object('paso', n, 'resultado', jsonb_build_object('id', s.id, 'estado', 'OK')), now(), 1, l.shard
         from unnest($1::uuid[]) as s(id) join saga_log l on l.id = s.id, generate_series($2::int, $3::int) as n order by s.id, n`,
      [sagaIds, from, to],
    );
  const perTx = Number(values['sagas-per-tx']);
  if (perTx > 0) for (let i = 0; i < ids.length; i += perTx) await insert(ids.slice(i, i + perTx), 1, perSaga);
  else for (let n = 1; n <= perSaga; n++) await insert(ids, n, n);
  const topic = `persistent://public/default/saga-events-drain-${Date.now()}`;
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const relay = new OutboxRelay({
    db: db.pool,
    log,
    producerPrefix: await producerName(db.pool),
    transport: (name) =>
      values.transport === 'binary'
        ? binaryTransport({ serviceUrl: serviceUrl ?? 'pulsar://127.0.0.1:6650', topic, producerName: name, log })
        : websocketTransport({ webUrl, topic, producerName: name, log }),
    batchSize: Number(values.batch),
    pollMs: 10,
  });
  const leases = [];
  for (let shard = 0; shard < shardCount; shard++) leases.push(await takeLease(db.pool, shard, 'drain'));
  const layout = perTx > 0 ? `transactions of ${perTx} whole sagas` : 'one transaction per step of all sagas';
  print(`${total} events of ${sagas} sagas (${perSaga} each, ${layout}) in ${shardCount} shards pending; relay batch ${values.batch}; topic ${topic}`);
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const broker0 = brokerCpuSeconds();
  for (const lease of leases) relay.acquired(lease);
  relay.start();
  for (;;) {
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from saga_events where publicado_en is null');
    if (rows[0]!.n === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (Date.now() - started) / 1000;
  await relay.stop();
  const cpu = process.cpuUsage(cpu0);
  const brokerCpu = brokerCpuSeconds() - broker0;
  print(`drained ${total} events in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} events/s`);
  if (serviceUrl !== undefined) {
    // Read back over pulsar:// by Apache's Python client: every saga's events, once, in order.
    const { rows } = await db.pool.query<{ saga_id: string; s: number[] }>(
      'select saga_id, array_agg(secuencia order by secuencia) as s from saga_events group by saga_id',
    );
    const report = await readOverBinaryProtocol(ensureBinaryReader(print), serviceUrl, topic, new Map(rows.map((r) => [r.saga_id, r.s])), {
      timeoutS: 300,
    });
    print(
      `read back over ${serviceUrl} by Apache's Python client: ${report.read} events of ${report.sagas} sagas; ` +
        `${report.wrong_sagas} sagas wrong, ${report.out_of_order.length} out of order, ${report.duplicates} copies`,
    );
    if (report.exitCode !== 0) throw new Error(`the topic does not hold every saga's events once, in order: ${JSON.stringify(report)}`);
  }
  print(
    `CPU per 1,000 events: relay (this process) ${(((cpu.user + cpu.system) / 1e6 / total) * 1000).toFixed(3)} s` +
      (brokerCpu > 0 ? `, broker ${((brokerCpu / total) * 1000).toFixed(3)} s` : '') +
      `; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs`,
  );
  code = 0;
} finally {
  await db.close();
  await broker?.stop();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
}
process.exit(code);
