import { randomUUID } from 'node:crypto';
import test from 'ava';
import type pg from 'pg';
import { pino, type Logger } from 'pino';
import { OutboxRelay, PublishError, type OutboxRow } from '../src/events/outbox-relay.js';
import { createPulsarProducer, loadPulsarClient, RELAY_PRODUCER_NAME } from '../src/events/pulsar.js';
import { migratedDatabase, type MigratedDatabase } from './helpers/database.js';
import { FakeBroker, fakePulsarModule, fakeProducer } from './fakes/pulsar.js';

// One database for this file; the tests that use it run serially and start from empty tables.
let database: MigratedDatabase | undefined;
let pool: pg.Pool | undefined;

function db(): pg.Pool {
  if (!pool) throw new Error('the database was not set up');
  return pool;
}

test.before(async () => {
  database = await migratedDatabase('relay', 10);
  pool = database.pool;
});

test.after.always(async () => {
  await database?.close();
});

test.beforeEach(async () => {
  if (pool) await pool.query('truncate saga_events, saga_pasos, saga_compensaciones restart identity; delete from saga_log');
});

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function captureLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines };
}

/** Inserts `perSaga` events for each of `sagas` new sagas, interleaved; returns the saga ids. */
async function insertEvents(sagas: number, perSaga: number, firstSecuencia = 1, sagaIds?: string[]): Promise<string[]> {
  const ids = sagaIds ?? Array.from({ length: sagas }, () => randomUUID());
  if (!sagaIds) {
    await db().query(
      `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, fecha_inicio, fecha_actualizacion)
       select unnest($1::uuid[]), 'T', 'INICIADA', '{}', '{}', 1, 30, now(), now(), now()`,
      [ids],
    );
  }
  for (let s = firstSecuencia; s < firstSecuencia + perSaga; s++) {
    for (const sagaId of ids) {
      await db().query(
        `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha)
         values ($1, $2, $3, $4, $5, now())`,
        [sagaId, s, `PASO_${s}`, 'EN_PROGRESO', JSON.stringify({ paso: s, saga: sagaId })],
      );
    }
  }
  return ids;
}

async function pendingIds(): Promise<string[]> {
  const { rows } = await db().query<{ id: string }>('select id from saga_events where publicado_en is null order by id');
  return rows.map((r) => r.id);
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function countById(broker: FakeBroker): Map<number, number> {
  const counts = new Map<number, number>();
  for (const m of broker.messages) {
    const id = m.message.sequenceId ?? -1;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

test.serial('publishes pending rows in id order with partitionKey and sequenceId, and marks them published', async (t) => {
  const sagas = await insertEvents(2, 3);
  // A row published earlier must not be sent again.
  await db().query('update saga_events set publicado_en = now() where id = 1');
  const broker = new FakeBroker();
  const relay = new OutboxRelay({ pool: db(), producer: fakeProducer(broker), log: captureLogger().log, batchSize: 4 });

  t.is(await relay.publishBatch(), 4);
  t.is(await relay.publishBatch(), 1);
  t.is(await relay.publishBatch(), 0);

  t.deepEqual(await pendingIds(), []);
  const { rows } = await db().query<OutboxRow>('select id, saga_id, secuencia, tipo, estado, payload, fecha from saga_events where id > 1 order by id');
  t.deepEqual(
    broker.messages.map((m) => m.message.sequenceId),
    rows.map((r) => Number(r.id)),
  );
  t.deepEqual(broker.messages.map((m) => m.message.sequenceId), [2, 3, 4, 5, 6]);
  for (const [i, row] of rows.entries()) {
    const sent = broker.messages[i]!.message;
    t.is(sent.partitionKey, row.saga_id);
    t.true(sagas.includes(row.saga_id));
    t.deepEqual(sent.properties, { tipo: row.tipo, saga_id: row.saga_id, secuencia: String(row.secuencia) });
    t.is(sent.eventTimestamp, row.fecha.getTime());
    t.deepEqual(JSON.parse(sent.data.toString('utf8')), {
      id: Number(row.id),
      saga_id: row.saga_id,
      secuencia: row.secuencia,
      tipo: row.tipo,
      estado: row.estado,
      payload: row.payload,
      fecha: row.fecha.toISOString(),
    });
  }
});

test.serial('a broker outage leaves rows unpublished and they drain when it returns', async (t) => {
  await insertEvents(3, 4);
  const before = await pendingIds();
  t.is(before.length, 12);
  const broker = new FakeBroker();
  broker.down = true;
  const { log, lines } = captureLogger();
  const relay = new OutboxRelay({ pool: db(), producer: fakeProducer(broker), log, batchSize: 5, pollMs: 5, maxBackoffMs: 40 });

  await t.throwsAsync(relay.publishBatch(), { instanceOf: PublishError, message: /5 of 5 sends to Pulsar failed/ });
  t.deepEqual(await pendingIds(), before);

  relay.start();
  try {
    await waitFor('repeated failed attempts', () => broker.attempts >= 20);
    t.deepEqual(await pendingIds(), before, 'nothing is marked while the broker is down');
    t.is(broker.messages.length, 0);
    t.true(lines.some((l) => l.level === 40 && /stay pending/.test(l.msg)), 'the failure is logged as a warning');

    // Rows written during the outage drain too.
    await insertEvents(1, 2);
    broker.down = false;
    await waitFor('the outbox to drain', async () => (await pendingIds()).length === 0);
  } finally {
    await relay.stop();
  }
  const ids = broker.messages.map((m) => m.message.sequenceId);
  t.deepEqual(ids, Array.from({ length: 14 }, (_, i) => i + 1), 'each row once, in id order');
  t.true(lines.some((l) => l.level === 30 && /publishing again/.test(l.msg)));
});

test.serial('a batch with one failed send is rolled back whole and republished (at least once)', async (t) => {
  await insertEvents(1, 4);
  const broker = new FakeBroker();
  const relay = new OutboxRelay({ pool: db(), producer: fakeProducer(broker), log: captureLogger().log, batchSize: 10 });
  broker.failNext(1);
  await t.throwsAsync(relay.publishBatch(), { instanceOf: PublishError, message: /1 of 4 sends/ });
  t.is((await pendingIds()).length, 4, 'the sends that did succeed are not marked');
  t.is(await relay.publishBatch(), 4);
  t.deepEqual(await pendingIds(), []);
  // The three accepted in the failed pass are sent again: a deduplicating broker drops them.
  t.deepEqual(
    broker.messages.map((m) => m.message.sequenceId),
    [2, 3, 4, 1, 2, 3, 4],
  );
});

test.serial('two relays running concurrently never publish the same row twice', async (t) => {
  const sagas = await insertEvents(10, 20);
  const broker = new FakeBroker();
  broker.latencyMs = 1;
  const producerA = fakeProducer(broker, 'relay-a');
  const producerB = fakeProducer(broker, 'relay-b');
  const relays = [producerA, producerB].map(
    (producer) => new OutboxRelay({ pool: db(), producer, log: captureLogger().log, batchSize: 15, pollMs: 1 }),
  );
  for (const relay of relays) relay.start();
  try {
    // Sagas keep writing while the relays run.
    await insertEvents(0, 10, 21, sagas);
    await waitFor('the outbox to drain', async () => (await pendingIds()).length === 0);
  } finally {
    await Promise.all(relays.map((r) => r.stop()));
  }

  t.log(
    'messages per relay:',
    Object.fromEntries(['relay-a', 'relay-b'].map((n) => [n, broker.messages.filter((m) => m.producerName === n).length])),
  );
  const total = 10 * 30;
  const counts = countById(broker);
  t.is(counts.size, total);
  t.deepEqual(
    [...counts.entries()].filter(([, n]) => n !== 1),
    [],
    'no row is sent twice across both relays',
  );
  // One relay is active at a time, so the broker receives ids in order, and so each saga's events in order.
  const ids = broker.messages.map((m) => m.message.sequenceId ?? -1);
  t.deepEqual(ids, [...ids].sort((a, b) => a - b));
  for (const sagaId of sagas) {
    const secuencias = broker.payloads()
      .filter((p) => p.saga_id === sagaId)
      .map((p) => p.secuencia);
    t.deepEqual(secuencias, Array.from({ length: 30 }, (_, i) => i + 1));
  }
});

test.serial('stop waits for the batch in flight, which commits', async (t) => {
  await insertEvents(1, 3);
  const broker = new FakeBroker();
  broker.latencyMs = 300;
  const relay = new OutboxRelay({ pool: db(), producer: fakeProducer(broker), log: captureLogger().log, pollMs: 5 });
  relay.start();
  await waitFor('the first sends', () => broker.attempts > 0);
  await relay.stop();
  t.deepEqual(await pendingIds(), []);
  const attempts = broker.attempts;
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(broker.attempts, attempts, 'no pass after stop');
});

test('loadPulsarClient rejects with a clear message when pulsar-client is missing', async (t) => {
  const expected = {
    message: /PULSAR_URL is set but the optional dependency pulsar-client is not installed.*libpulsar.*README.*npm install pulsar-client.*unset PULSAR_URL/s,
  };
  await t.throwsAsync(loadPulsarClient(), expected);
  await t.throwsAsync(createPulsarProducer('pulsar://127.0.0.1:6650', 'saga-events'), expected);
});

test('createPulsarProducer opens a named producer on the topic and close releases producer and client', async (t) => {
  const broker = new FakeBroker();
  const module = fakePulsarModule(broker);
  const handle = await createPulsarProducer('pulsar://broker:6650', 'saga-events', RELAY_PRODUCER_NAME, {
    loadModule: () => Promise.resolve(module),
  });
  const client = module.clients[0]!;
  t.is(client.config.serviceUrl, 'pulsar://broker:6650');
  const producer = client.producers[0]!;
  t.true(handle.producer === producer);
  t.is(producer.config.topic, 'saga-events');
  t.is(producer.config.producerName, 'saga-orchestrator-relay');
  await handle.close();
  await handle.close();
  t.true(producer.closed);
  t.true(client.closed);

  broker.down = true;
  const failing = fakePulsarModule(broker);
  await t.throwsAsync(
    createPulsarProducer('pulsar://broker:6650', 'saga-events', 'x', { loadModule: () => Promise.resolve(failing) }),
    { message: /ConnectError/ },
  );
  t.true(failing.clients[0]!.closed, 'the client is closed when no producer could be created');
});
