// The outbox relay against a real Apache Pulsar broker (started by `npm run test:pulsar`),
// through each transport this machine has (pulsar-client cannot be built here): the
// binary protocol spoken by src/events/binary-transport.ts, and the WebSocket API;
// `npm run test:pulsar` runs this file once for each (PULSAR_TEST_TRANSPORT). Real
// consumers read the topic back and check every saga's stream.
import test from 'ava';
import pg from 'pg';
import { useTestEnv, type TestEnv } from '../helpers/system.js';
import { brokerUnderTest, TopicRecorder, uniqueTopic, waitUntil } from '../helpers/pulsar-broker.js';
import { seedDatos } from '../fixtures/requests.js';
import { rejected } from '../fakes/participants.js';
import { OutboxRelay } from '../../src/events/outbox-relay.js';
import { producerName } from '../../src/events/outbox-queries.js';
import { takeLease } from '../helpers/leases.js';
import type { Queryable } from '../../src/persistence/sql.js';
import { TERMINAL_STATES } from '../../src/saga/states.js';
import { readOverBinaryProtocol } from '../../scripts/pulsar/binary-reader.js';
import type { Orchestrator } from '../../src/orchestrator.js';
import type { ParticipantGateway } from '../../src/gateway/participant-gateway.js';
import type { CallOutcome, ParticipantCommand } from '../../src/saga/definition.js';

const env = useTestEnv(test);
const broker = brokerUnderTest();

/** Participants that accept everything but a report type nobody offers: those sagas compensate. */
const gateway: ParticipantGateway = {
  call(command: ParticipantCommand): Promise<CallOutcome> {
    const body = command.body as Record<string, unknown> | undefined;
    if (command.method === 'POST' && command.path === '/reporting' && body?.tipo_reporte === 'no_ofrecido') {
      return Promise.resolve(rejected(422, 'tipo_reporte no ofrecido'));
    }
    const id = typeof body?.id === 'string' ? body.id : (command.path.split('/').find((p) => /^[0-9a-f]{8}-/.test(p)) ?? null);
    return Promise.resolve({ kind: 'ok', status: 200, resultado: { id, estado: 'OK' } });
  },
};

function relayConfig(topic: string): Record<string, string> {
  return { PULSAR_URL: broker.serviceUrl, PULSAR_WEB_URL: broker.webUrl, PULSAR_TOPIC: topic, PULSAR_TRANSPORT: broker.transport };
}

/** Starts n sagas, every tenth one bound to compensate, `concurrency` at a time; returns their ids. */
async function startSagas(orchestrator: Orchestrator, n: number, concurrency = 50): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const datos = seedDatos();
      if (i % 10 === 9) datos.reporte.tipo_reporte = 'no_ofrecido';
      const started = await orchestrator.startSaga('CREAR_CAMPANA_COMPLETA', datos, { timeoutMinutos: 30 });
      if (started.kind === 'keyReused') throw new Error('unexpected keyReused');
      ids.push(started.sagaId);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

async function terminal(env: TestEnv, ids: string[]): Promise<Map<string, string>> {
  const rows = await env.query<{ id: string; estado: string }>(
    'select id, estado from saga_log where id = any($1::uuid[]) and estado = any($2::text[])',
    [ids, TERMINAL_STATES],
  );
  return new Map(rows.map((r) => [r.id, r.estado]));
}

/** Each saga's secuencias as the saga log has them. */
async function logStreams(env: TestEnv, ids: string[]): Promise<Map<string, number[]>> {
  const rows = await env.query<{ saga_id: string; secuencias: number[] }>(
    `select saga_id, array_agg(secuencia order by secuencia) as secuencias
       from saga_events where saga_id = any($1::uuid[]) group by saga_id`,
    [ids],
  );
  return new Map(rows.map((r) => [r.saga_id, r.secuencias]));
}

/** `stop` at most once, whether the test or its teardown calls it first. */
function once(stop: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= stop());
}

const eventCount = (streams: Map<string, number[]>) => [...streams.values()].reduce((n, s) => n + s.length, 0);

async function pendingEvents(env: TestEnv): Promise<number> {
  const [row] = await env.query<{ n: number }>('select count(*)::int as n from saga_events where publicado_en is null');
  return row?.n ?? -1;
}

async function lagSeconds(orchestratorUrl: string): Promise<number> {
  const text = await (await fetch(`${orchestratorUrl}/metrics`)).text();
  const m = /^saga_outbox_lag_seconds (\S+)$/m.exec(text);
  if (!m) throw new Error('no saga_outbox_lag_seconds in /metrics');
  return Number(m[1]);
}

/** Every saga's events reached the topic once each, in secuencia order, under the saga id as key. */
async function assertStreams(t: import('ava').ExecutionContext, recorder: TopicRecorder, ids: string[]): Promise<void> {
  const expected = await logStreams(env, ids);
  const received = recorder.streams();
  const wrong = ids.filter((id) => JSON.stringify(received.get(id)) !== JSON.stringify(expected.get(id)));
  t.deepEqual(wrong, [], 'every saga: all its events, none twice, in secuencia order');
  for (const id of ids) {
    const n = expected.get(id)?.length ?? 0;
    if (JSON.stringify(expected.get(id)) !== JSON.stringify(Array.from({ length: n }, (_, i) => i + 1))) {
      t.fail(`saga ${id} has a gap in the log itself`);
    }
  }
  t.is(recorder.wrongKeys(), 0, 'the message key is the saga id');
}

/**
 * The same check by another client: Apache's Python client reads the topic over the
 * binary protocol (pulsar://) and compares each saga's events with the saga log's: all,
 * once each (no copies at all; with consumersRule, copies counted and ignored), in
 * secuencia order, keyed by the saga id.
 */
async function assertBinaryStreams(
  t: import('ava').ExecutionContext,
  topic: string,
  ids: string[],
  opts: { consumersRule?: boolean } = {},
): Promise<void> {
  const report = await readOverBinaryProtocol(broker.python, broker.serviceUrl, topic, await logStreams(env, ids), opts);
  t.log(`read over pulsar:// by Apache's Python client: ${report.read} events of ${report.sagas} sagas, ${report.duplicates} copies`);
  if (opts.consumersRule !== true) t.is(report.read, report.expected, 'as many messages as the saga log has events');
  t.is(report.wrong_sagas, 0, `each saga's events as the log has them: ${JSON.stringify(report.wrong_examples)}`);
  t.deepEqual(report.out_of_order, [], 'no saga out of order');
  if (opts.consumersRule !== true) t.is(report.duplicates, 0, 'no copies');
  t.is(report.wrong_keys, 0, 'the key is the saga id');
  t.is(report.exitCode, 0);
}

test.serial('1,000 sagas, 10% compensating: a real consumer gets every saga\'s events once, in order', async (t) => {
  const topic = uniqueTopic('saga-events');
  const recorder = new TopicRecorder(broker.webUrl, topic);
  await recorder.open();
  const role = await env.orchestrator({ gateway, config: relayConfig(topic) });
  t.teardown(once(() => role.stop()));
  const started = Date.now();
  const ids = await startSagas(role.orchestrator, 1000);
  await waitUntil('every saga to end', async () => (await terminal(env, ids)).size === ids.length);
  await waitUntil('the outbox to drain', async () => (await pendingEvents(env)) === 0);
  const total = eventCount(await logStreams(env, ids));
  await waitUntil('the consumer to receive every event', () => recorder.streams().size === ids.length && recorder.events.length >= total);
  const seconds = (Date.now() - started) / 1000;
  t.log(`${ids.length} sagas, ${total} events through the relay and the broker in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} events/s end to end)`);
  await recorder.close();

  const estados = [...(await terminal(env, ids)).values()];
  t.is(estados.filter((e) => e === 'COMPENSADA').length, 100);
  t.is(estados.filter((e) => e === 'COMPLETADA').length, 900);
  await assertStreams(t, recorder, ids);
  t.is(recorder.rawDuplicates(), 0, 'no copies even before the consumers\' rule');
  t.is(await lagSeconds(role.urls.orchestrator!), 0);
  await assertBinaryStreams(t, topic, ids);
});

test.serial('the broker stopped mid-run: sagas go on, the lag grows, and afterwards nothing is missing or out of order', async (t) => {
  const topic = uniqueTopic('saga-events');
  const role = await env.orchestrator({ gateway, config: relayConfig(topic) });
  t.teardown(once(() => role.stop()));
  const url = role.urls.orchestrator!;
  const before = await startSagas(role.orchestrator, 150, 25);
  await waitUntil('the first sagas to be published', async () => (await pendingEvents(env)) === 0);

  await broker.stop();
  const outageStart = Date.now();
  // Sagas started while the broker is down end without waiting for it.
  const during = await startSagas(role.orchestrator, 150, 25);
  await waitUntil('the outage sagas to end', async () => (await terminal(env, during)).size === during.length, 60_000);
  const sagasEndedAfter = (Date.now() - outageStart) / 1000;
  const lags: number[] = [];
  for (let i = 0; i < 5; i++) {
    lags.push(await lagSeconds(url));
    await new Promise((r) => setTimeout(r, 400));
  }
  t.log(`broker down: ${during.length} sagas ended within ${sagasEndedAfter.toFixed(1)} s; lag read ${lags.map((l) => l.toFixed(1)).join(', ')} s`);
  t.true(lags[0]! > 0, 'events wait while the broker is down');
  t.true(lags.every((l, i) => i === 0 || l > lags[i - 1]!), 'the lag grows during the outage');
  t.true((await pendingEvents(env)) > 0);

  await broker.start();
  const back = Date.now();
  const lagWhenBack = await lagSeconds(url);
  t.true(lagWhenBack > lags.at(-1)!, 'still growing until the broker is back');
  await waitUntil('the outbox to drain after the outage', async () => (await lagSeconds(url)) === 0, 180_000);
  const backlog = during.length;
  t.log(`broker back: outbox drained ${((Date.now() - back) / 1000).toFixed(1)} s after the broker answered again (${backlog} sagas' events), lag ${lagWhenBack.toFixed(1)} s when it came back`);
  const after = await startSagas(role.orchestrator, 50, 25);
  const ids = [...before, ...during, ...after];
  await waitUntil('every saga to end', async () => (await terminal(env, ids)).size === ids.length);
  await waitUntil('the outbox to drain', async () => (await pendingEvents(env)) === 0);

  const recorder = new TopicRecorder(broker.webUrl, topic);
  await recorder.open();
  const total = eventCount(await logStreams(env, ids));
  try {
    await waitUntil(`the consumer to read the topic (${total} events)`, () => recorder.events.length >= total, 60_000, () => `${recorder.events.length} read`);
  } catch (err) {
    const got = recorder.streams();
    const missing = (ids: string[]) => ids.filter((i) => !got.has(i)).length;
    t.log(`sagas missing from the topic: ${missing(before)} started before, ${missing(during)} during, ${missing(after)} after the outage`);
    t.log('topic:', await (await fetch(`${broker.webUrl}/admin/v2/${topic.replace('://', '/')}/internalStats`)).text());
    throw err;
  }
  await recorder.close();
  await assertStreams(t, recorder, ids);
  t.log(`copies before the consumers' rule: ${recorder.rawDuplicates()}`);
  t.is(await lagSeconds(url), 0, 'the lag is back to zero');
  // An outage may leave a copy (a message whose acknowledgement was lost): the consumers' rule.
  await assertBinaryStreams(t, topic, ids, { consumersRule: true });
});

test.serial('two orchestrators each publish the shards they hold; one leaves, the other takes its shards: one ordered stream per saga', async (t) => {
  const topic = uniqueTopic('saga-events');
  const first = await env.orchestrator({ gateway, config: relayConfig(topic) });
  const second = await env.orchestrator({ gateway, config: relayConfig(topic) });
  const stopFirst = once(() => first.stop());
  const stopSecond = once(() => second.stop());
  t.teardown(stopFirst);
  t.teardown(stopSecond);
  const active = async (url: string) => /^saga_outbox_relay_active 1$/m.test(await (await fetch(`${url}/metrics`)).text());
  await waitUntil(
    'each to hold half of the shards',
    () => first.orchestrator.heldShards().length === 16 && second.orchestrator.heldShards().length === 16,
    60_000,
  );
  t.true((await active(first.urls.orchestrator!)) && (await active(second.urls.orchestrator!)), 'both publish (their own shards)');
  const [leaving, staying] = [first, second];

  const firstHalf = startSagas(leaving.orchestrator, 150, 25);
  const secondHalf = startSagas(staying.orchestrator, 150, 25);
  const early = await firstHalf;
  // One process leaves while sagas still run: the other takes its shards and publishes them.
  await stopFirst();
  const ids = [...early, ...(await secondHalf), ...(await startSagas(staying.orchestrator, 100, 25))];
  await waitUntil('every saga to end', async () => (await terminal(env, ids)).size === ids.length);
  await waitUntil('the outbox to drain', async () => (await pendingEvents(env)) === 0);
  t.is(staying.orchestrator.heldShards().length, 32, 'the remaining process holds, and so publishes, every shard');

  const recorder = new TopicRecorder(broker.webUrl, topic);
  await recorder.open();
  const total = eventCount(await logStreams(env, ids));
  await waitUntil(`the consumer to read the topic (${total} events)`, () => recorder.events.length >= total, 120_000, () => `${recorder.events.length} read`);
  await recorder.close();
  await assertStreams(t, recorder, ids);
  t.is(recorder.rawDuplicates(), 0);
  await assertBinaryStreams(t, topic, ids);
});

let directPool: pg.Pool | undefined;
test.after.always(async () => {
  await directPool?.end();
});

/** A relay of its own for shard 0 on the test database (the lease taken by hand), over this run's transport. */
async function directRelay(topic: string, db?: (pool: pg.Pool) => Queryable): Promise<OutboxRelay> {
  directPool ??= new pg.Pool({ connectionString: env.databaseUrl, max: 2 });
  const lease = await takeLease(directPool, 0, 'direct-relay');
  const relay = new OutboxRelay({
    db: db?.(directPool) ?? directPool,
    producerPrefix: await producerName(directPool),
    transport: (name) => broker.producer(topic, name, env.log),
    log: env.log,
    pollMs: 10,
  });
  relay.acquired(lease);
  return relay;
}

/** An event of a saga of shard 0 (newSaga's). */
async function insertEvent(q: Pick<pg.ClientBase, 'query'>, sagaId: string, secuencia: number): Promise<void> {
  await q.query(
    `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, shard) values ($1, $2, 'Prueba', 'X', '{}', now(), 0)`,
    [sagaId, secuencia],
  );
}

async function newSaga(): Promise<string> {
  const [row] = await env.query<{ id: string }>(
    `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, fecha_inicio, fecha_actualizacion)
     values (gen_random_uuid(), 'T', 'INICIADA', '{}', '{}', 1, 30, now(), now(), now()) returning id`,
  );
  return row!.id;
}

test.serial('events committed out of id order by two writers are not lost, with deduplication on', async (t) => {
  await env.ready();
  const topic = uniqueTopic('saga-events');
  const relay = await directRelay(topic);
  const [sagaA, sagaB] = [await newSaga(), await newSaga()];
  const writerA = new pg.Client({ connectionString: env.databaseUrl });
  const writerB = new pg.Client({ connectionString: env.databaseUrl });
  await writerA.connect();
  await writerB.connect();
  try {
    await writerA.query('begin');
    await insertEvent(writerA, sagaA, 1); // the lower id, committed last
    await insertEvent(writerB, sagaB, 1);
    t.is((await relay.publishBatch()).sent, 0, 'nothing is sent while an older writer may still commit');
    await writerA.query('commit');
    await waitUntil('both published', async () => {
      await relay.publishBatch();
      return (await env.query('select 1 from saga_events where saga_id = any($1::uuid[]) and publicado_en is null', [[sagaA, sagaB]])).length === 0;
    });
  } finally {
    await relay.stop();
    await writerA.end();
    await writerB.end();
  }
  const recorder = new TopicRecorder(broker.webUrl, topic);
  await recorder.open();
  await waitUntil('two events', () => recorder.events.length >= 2, 20_000);
  await new Promise((r) => setTimeout(r, 500));
  await recorder.close();
  t.deepEqual(recorder.events.map((e) => e.saga_id).sort(), [sagaA, sagaB].sort(), 'the broker kept both');
});

test.serial('a replay after a crash between the broker\'s acknowledgement and the mark is dropped by the broker', async (t) => {
  await env.ready();
  const topic = uniqueTopic('saga-events');
  const sagas = [await newSaga(), await newSaga(), await newSaga()];
  const writer = new pg.Client({ connectionString: env.databaseUrl });
  await writer.connect();
  for (const n of [1, 2]) for (const s of sagas) await insertEvent(writer, s, n);
  await writer.end();
  // A relay that dies after the broker stored its batch and before recording it: its record
  // never runs, so it leaves sequence ids given (its shard's in-flight lists) and nothing
  // marked. The shard's next relay (a process restarted, or another one) takes it over from there.
  const diesBeforeRecord = (pool: pg.Pool): Queryable => ({
    query: ((config: string | pg.QueryConfig, values?: unknown[]) =>
      /set publicado_en = now\(\)/.test(typeof config === 'string' ? config : config.text)
        ? Promise.reject(new Error('the process died before recording'))
        : pool.query(config as string, values)) as Queryable['query'],
  });
  const crashed = await directRelay(topic, diesBeforeRecord);
  try {
    await waitUntil('sent, then died before recording', () =>
      crashed.publishBatch().then(
        () => false,
        () => true,
      ),
    );
  } finally {
    await crashed.stop();
  }
  const marked = await env.query('select 1 from saga_events where saga_id = any($1::uuid[]) and publicado_en is not null', [sagas]);
  t.is(marked.length, 0, 'nothing was marked');
  const relay = await directRelay(topic);
  try {
    await waitUntil('published again', async () => {
      await relay.publishBatch();
      return (await env.query('select 1 from saga_events where saga_id = any($1::uuid[]) and publicado_en is null', [sagas])).length === 0;
    });
  } finally {
    await relay.stop();
  }
  const recorder = new TopicRecorder(broker.webUrl, topic);
  await recorder.open();
  await waitUntil('six events', () => recorder.events.length >= 6, 20_000);
  await new Promise((r) => setTimeout(r, 1000));
  await recorder.close();
  t.is(recorder.events.length, 6, 'each event stored once: the broker dropped the replayed copies');
  for (const s of sagas) t.deepEqual(recorder.streams().get(s), [1, 2]);
});

test.serial('a backlog of 5,000 events (1,000 sagas) drains through the relay; the rate is logged, not asserted', async (t) => {
  await env.ready();
  const topic = uniqueTopic('saga-events');
  const ids = (
    await env.query<{ id: string }>(
      `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, fecha_inicio, fecha_actualizacion)
       select gen_random_uuid(), 'T', 'INICIADA', '{}', '{}', 1, 30, now(), now(), now() from generate_series(1, 1000) returning id`,
    )
  ).map((r) => r.id);
  await env.query(
    `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, shard)
     select s.id, n, 'Prueba', 'X', '{"relleno": "una carga como la de un evento real de la saga"}', now(), 0
       from unnest($1::uuid[]) as s(id), generate_series(1, 5) as n order by n, s.id`,
    [ids],
  );
  const recorder = new TopicRecorder(broker.webUrl, topic);
  await recorder.open();
  const relay = await directRelay(topic);
  const started = Date.now();
  relay.start();
  try {
    await waitUntil('the backlog to drain', async () => (await pendingEvents(env)) === 0, 300_000);
  } finally {
    await relay.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  t.log(`5000 events through the relay (WebSocket transport) in ${seconds.toFixed(1)} s: ${Math.round(5000 / seconds)} events/s`);
  await waitUntil('the consumer to read them', () => recorder.events.length >= 5000, 60_000, () => `${recorder.events.length} read`);
  await recorder.close();
  await assertStreams(t, recorder, ids);
  await assertBinaryStreams(t, topic, ids);
});
