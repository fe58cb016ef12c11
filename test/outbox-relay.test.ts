// The outbox relay against a real saga log and a fake broker with pulsar-client's API
// (and Pulsar's deduplication): what it publishes, in which order, and what it does
// when the broker is down, loses acknowledgements or refuses a message; and, with one
// relay per process over the shards whose leases it holds (one pass for all of them,
// each shard fenced by its own lease), what it may do with a shard it lost.
import { randomUUID } from 'node:crypto';
import test from 'ava';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { ShardLease } from '../src/cluster/shards.js';
import type { Queryable } from '../src/persistence/sql.js';
import { OutboxRelay, type OutboxRelayOptions } from '../src/events/outbox-relay.js';
import { shardProducerName } from '../src/events/outbox-queries.js';
import { pulsarClientTransport } from '../src/events/pulsar-client-transport.js';
import { createPulsarProducer, loadPulsarClient, RELAY_PRODUCER_NAME } from '../src/events/pulsar.js';
import { relayMetrics } from '../src/events/relay-metrics.js';
import { migratedDatabase, type MigratedDatabase } from './helpers/database.js';
import { FakeBroker, fakePulsarModule } from './fakes/pulsar.js';
import { waitUntil } from './helpers/wait.js';
import { releaseAllLeases, takeLease } from './helpers/leases.js';

// One database for this file; the tests that use it run serially and start from empty tables.
let database: MigratedDatabase | undefined;
/** Shard 0's lease, taken afresh before each test by this file's "process". */
let lease0: ShardLease;
const HERE = 'node-a';

function db(): pg.Pool {
  if (!database) throw new Error('the database was not set up');
  return database.pool;
}

test.before(async () => {
  database = await migratedDatabase('relay', 10);
});

test.after.always(async () => {
  await database?.close();
});

test.beforeEach(async () => {
  if (!database) return;
  await db().query(
    'truncate saga_events_descartados, saga_events, saga_pasos, saga_compensaciones restart identity; delete from saga_log',
  );
  await db().query("update saga_relay_shards set ultima_secuencia_envio = 0, en_vuelo = '{}', en_vuelo_secuencias = '{}'");
  await releaseAllLeases(db());
  lease0 = await takeLease(db(), 0, HERE);
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

/** A pulsar-client transport (the fake module) to `broker`. */
function transportTo(broker: FakeBroker, producerName: string, log: Logger) {
  const module = fakePulsarModule(broker);
  return pulsarClientTransport({ serviceUrl: 'pulsar://fake:6650', topic: 'saga-events', producerName, log, loadModule: () => Promise.resolve(module) });
}

/**
 * A relay holding `leases` (shard 0's by default), publishing to `broker` through the
 * pulsar-client transport, each shard under `saga-outbox-test-<shard>`.
 */
function relayTo(broker: FakeBroker, opts: Partial<OutboxRelayOptions> & { leases?: ShardLease[] } = {}): OutboxRelay {
  const { leases = [lease0], ...rest } = opts;
  const log = rest.log ?? captureLogger().log;
  const relay = new OutboxRelay({
    db: db(),
    producerPrefix: 'saga-outbox-test',
    transport: (name) => transportTo(broker, name, log),
    log,
    pollMs: 5,
    minBackoffMs: 10,
    maxBackoffMs: 40,
    ...rest,
  });
  for (const lease of leases) relay.acquired(lease);
  return relay;
}

/** `n` sagas of shard `shard`. */
async function newSagas(n: number, shard = 0): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  await db().query(
    `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, fecha_inicio, fecha_actualizacion, shard)
     select unnest($1::uuid[]), 'T', 'INICIADA', '{}', '{}', 1, 30, now(), now(), now(), $2`,
    [ids, shard],
  );
  return ids;
}

/** Inserts events secuencia from..to of each saga, one transaction per event, sagas interleaved. */
async function insertEvents(sagaIds: string[], from: number, to: number, q: Pick<pg.ClientBase, 'query'> = db()): Promise<void> {
  for (let s = from; s <= to; s++) {
    for (const sagaId of sagaIds) {
      await q.query(
        `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, epoch, shard)
         values ($1, $2, $3, 'EN_PROGRESO', $4, now(), 7, (select shard from saga_log where id = $1))`,
        [sagaId, s, `PASO_${s}`, JSON.stringify({ paso: s })],
      );
    }
  }
}

async function pending(): Promise<number> {
  const { rows } = await db().query<{ n: number }>(
    'select count(*)::int as n from saga_events where publicado_en is null and descartado_en is null',
  );
  return rows[0]!.n;
}

/** Sequence ids given so far, in every shard (a claim gives one to each row it takes), whether published since or not. */
async function numbered(): Promise<number> {
  const { rows } = await db().query<{ n: number }>('select sum(ultima_secuencia_envio)::int as n from saga_relay_shards');
  return rows[0]!.n;
}

/** The ids of the events the shards' rows list as in flight (taken, not yet recorded), as column `id`. */
const IN_FLIGHT_IDS = 'select unnest(en_vuelo) as id from saga_relay_shards';

/** Those events, as saga_events `e`. */
const IN_FLIGHT = `saga_events e join (${IN_FLIGHT_IDS}) f on f.id = e.id`;

/** Waits for `what`, polled every 10 ms for at most 20 s. */
const waitFor = (what: string, cond: () => boolean | Promise<boolean>) => waitUntil(cond, { what, timeoutMs: 20_000, everyMs: 10 });

/**
 * Waits until every pending event is below the xmin horizon, so that a single
 * pass can take it. The horizon is the server's, not this database's: a write
 * of another test file on the same server, in flight when these events were
 * inserted, holds them back until it ends.
 */
const claimable = () =>
  waitFor('the events to pass the xmin horizon', async () => {
    const { rows } = await db().query<{ n: number }>(
      `select count(*)::int as n from saga_events
        where publicado_en is null and transaccion >= pg_snapshot_xmin(pg_current_snapshot())`,
    );
    return rows[0]!.n === 0;
  });

/** Runs the relay's passes until nothing is left to publish (or fails after a bound). */
async function drain(relay: OutboxRelay): Promise<void> {
  for (let i = 0; i < 1000 && (await pending()) > 0; i++) await relay.publishBatch();
  if ((await pending()) > 0) throw new Error('the outbox did not drain');
}

/** Each saga's secuencias in the order the broker stored them. */
function streams(broker: FakeBroker): Map<string, number[]> {
  const bySaga = new Map<string, number[]>();
  for (const p of broker.payloads()) {
    const list = bySaga.get(p.saga_id as string) ?? [];
    list.push(p.secuencia as number);
    bySaga.set(p.saga_id as string, list);
  }
  return bySaga;
}

const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test.serial('publishes each event once with the saga id as key, growing sequence ids, and marks it published', async (t) => {
  const sagas = await newSagas(2);
  await insertEvents(sagas, 1, 3);
  const broker = new FakeBroker();
  broker.deduplication = true;
  const relay = relayTo(broker);
  try {
    await drain(relay);
  } finally {
    await relay.stop();
  }

  t.is(broker.messages.length, 6);
  t.deepEqual(broker.messages.map((m) => m.message.sequenceId), oneToN(6), 'sequence ids 1..n in publish order');
  const { rows } = await db().query<{ id: string; saga_id: string; secuencia: number; tipo: string; fecha: Date }>(
    'select id, saga_id, secuencia, tipo, fecha from saga_events order by saga_id, secuencia',
  );
  t.is(rows.length, 6);
  for (const row of rows) {
    const sent = broker.messages.find((m) => (JSON.parse(m.message.data.toString('utf8')) as { id: number }).id === Number(row.id))!.message;
    t.is(sent.partitionKey, row.saga_id);
    t.deepEqual(sent.properties, { tipo: row.tipo, saga_id: row.saga_id, secuencia: String(row.secuencia) });
    t.is(sent.eventTimestamp, row.fecha.getTime());
    t.deepEqual(JSON.parse(sent.data.toString('utf8')), {
      id: Number(row.id),
      saga_id: row.saga_id,
      secuencia: row.secuencia,
      tipo: row.tipo,
      estado: 'EN_PROGRESO',
      epoch: 7,
      payload: { paso: row.secuencia },
      fecha: row.fecha.toISOString(),
    });
  }
  for (const saga of sagas) t.deepEqual(streams(broker).get(saga), [1, 2, 3]);
  t.is(await pending(), 0);
});

test.serial("taking a batch rewrites its shard's row, not the rows of the events it takes", async (t) => {
  const sagas = await newSagas(2);
  await insertEvents(sagas, 1, 3);
  // xmin changes with each new version of a row: an update of an event would show.
  const versions = async () => (await db().query<{ id: string; v: string }>('select id, xmin::text as v from saga_events order by id')).rows;
  const before = await versions();
  const broker = new FakeBroker();
  broker.down = true; // taken and sent, never stored: nothing to record
  const relay = relayTo(broker);
  await claimable();
  try {
    t.is((await relay.publishBatch()).sent, 6);
  } finally {
    await relay.stop();
  }
  t.is(await numbered(), 6, 'the six events were taken');
  t.deepEqual(await versions(), before, 'and their rows are the versions written by the saga');
});

test.serial('an event committed after a higher id is not lost with deduplication on', async (t) => {
  // Two writers: A takes the lower id but commits last, B commits a higher id first.
  const [sagaA, sagaB] = (await newSagas(2)) as [string, string];
  const writerA = new pg.Client({ connectionString: database!.url });
  await writerA.connect();
  const broker = new FakeBroker();
  broker.deduplication = true;
  const relay = relayTo(broker);
  try {
    await writerA.query('begin');
    await insertEvents([sagaA], 1, 1, writerA);
    await insertEvents([sagaB], 1, 1);
    await relay.publishBatch();
    await writerA.query('commit');
    await drain(relay);
  } finally {
    await relay.stop();
    await writerA.end();
  }

  const stored = broker.payloads().map((p) => p.saga_id);
  t.deepEqual(stored.sort(), [sagaA, sagaB].sort(), 'the broker stored both events');
  t.deepEqual(broker.duplicates, [], 'nothing was dropped as a duplicate');
});

test.serial('an event is published only once every older transaction has ended, in transaction order', async (t) => {
  const [sagaA, sagaB] = (await newSagas(2)) as [string, string];
  const writerA = new pg.Client({ connectionString: database!.url });
  await writerA.connect();
  const broker = new FakeBroker();
  const relay = relayTo(broker);
  try {
    await writerA.query('begin');
    await insertEvents([sagaA], 1, 1, writerA);
    await insertEvents([sagaB], 1, 1);
    const whileOpen = await relay.publishBatch();
    t.is(whileOpen.sent, 0, "B's committed event waits: A's transaction, older, may still commit before it");
    await writerA.query('commit');
    await drain(relay);
  } finally {
    await relay.stop();
    await writerA.end();
  }
  t.deepEqual(
    broker.payloads().map((p) => p.saga_id),
    [sagaA, sagaB],
    'published in the order the transactions began, not the order they committed',
  );
});

test.serial('a write left open in another database of the same server holds events back until it ends', async (t) => {
  const sagas = await newSagas(2);
  const other = new URL(database!.url);
  other.pathname = '/postgres';
  const elsewhere = new pg.Client({ connectionString: other.toString() });
  await elsewhere.connect();
  const broker = new FakeBroker();
  const relay = relayTo(broker);
  try {
    await elsewhere.query('begin');
    await elsewhere.query('select pg_current_xact_id()'); // a transaction id, as any write takes
    await insertEvents(sagas, 1, 1);
    t.is((await relay.publishBatch()).sent, 0, 'the horizon is the server\'s: the open transaction may be older');
    await elsewhere.query('commit');
    await claimable();
    t.is((await relay.publishBatch()).sent, 2);
  } finally {
    await relay.stop();
    await elsewhere.end();
  }
});

test.serial('no transaction stays open while the relay waits for the broker', async (t) => {
  const sagas = await newSagas(3);
  await insertEvents(sagas, 1, 2);
  const broker = new FakeBroker();
  broker.latencyMs = 400;
  const relayPool = new pg.Pool({ connectionString: database!.url, application_name: 'relay-under-test', max: 2 });
  const relay = relayTo(broker, { db: relayPool });
  await claimable();
  try {
    const pass = relay.publishBatch();
    await waitFor('sends in flight', () => broker.attempts > 0);
    const { rows } = await db().query<{ state: string; xmin: string | null }>(
      `select a.state, a.backend_xmin::text as xmin
         from pg_stat_activity a
        where a.datname = current_database() and a.application_name = 'relay-under-test'`,
    );
    t.true(rows.length > 0, "the relay's connection is there");
    t.deepEqual(rows.filter((r) => r.state !== 'idle'), [], 'it is idle, not idle in transaction');
    t.deepEqual(rows.filter((r) => r.xmin !== null), [], 'it pins no snapshot');
    await pass;
  } finally {
    await relay.stop();
    await relayPool.end();
  }
});

test.serial('a broker outage leaves events pending; they drain in order when it returns', async (t) => {
  const sagas = await newSagas(3);
  await insertEvents(sagas, 1, 2);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.down = true;
  const { log, lines } = captureLogger();
  const relay = relayTo(broker, { log });
  relay.start();
  try {
    const retries = () => lines.filter((l) => l.level === 40 && /stay pending/.test(l.msg));
    await waitFor('repeated failed attempts', () => retries().length >= 5);
    t.is(await pending(), 6, 'nothing is marked while the broker is down');
    const delays = retries().map((l) => l.retryInMs as number);
    t.deepEqual(delays.slice(0, 4), [10, 20, 40, 40], 'the relay retries with a capped backoff');
    // Events written during the outage drain too.
    await insertEvents(sagas, 3, 4);
    broker.down = false;
    await waitFor('the outbox to drain', async () => (await pending()) === 0);
  } finally {
    await relay.stop();
  }
  for (const saga of sagas) t.deepEqual(streams(broker).get(saga), [1, 2, 3, 4], 'each event once, in order');
  t.true(lines.some((l) => l.level === 30 && /publishing again/.test(l.msg)));
});

test.serial('a replay after a lost acknowledgement reuses the sequence id, and the broker drops the copy', async (t) => {
  const sagas = await newSagas(4);
  await insertEvents(sagas, 1, 1);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.loseAcks(4);
  const relay = relayTo(broker);
  await claimable();
  try {
    const first = await relay.publishBatch();
    t.is(first.published, 0, 'no acknowledgement, nothing marked');
    t.truthy(first.unavailable);
    t.is(broker.messages.length, 4, 'yet the broker stored them');
    await drain(relay);
  } finally {
    await relay.stop();
  }
  t.deepEqual(broker.duplicates.map((m) => m.message.sequenceId), [1, 2, 3, 4], 'sent again under the same ids');
  t.is(broker.messages.length, 4, 'stored once each');
});

test.serial('a relay that stops after taking a batch leaves it to the next one, under the same sequence ids', async (t) => {
  const sagas = await newSagas(3);
  await insertEvents(sagas, 1, 1);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.down = true;
  const first = relayTo(broker);
  await claimable();
  t.is((await first.publishBatch()).sent, 3);
  await first.stop();
  broker.down = false;
  const second = relayTo(broker);
  try {
    await drain(second);
  } finally {
    await second.stop();
  }
  t.deepEqual(broker.messages.map((m) => m.message.sequenceId), [1, 2, 3]);
});

test.serial('a message the broker keeps refusing goes to the dead-letter table and the rest flow on', async (t) => {
  const [bad, good] = (await newSagas(2)) as [string, string];
  // The refused event is the last of its saga for now: it is retried, alone, until set aside.
  await insertEvents([bad, good], 1, 2);
  await insertEvents([good], 3, 3);
  const broker = new FakeBroker();
  broker.deduplication = true;
  const refused = (m: { data: Buffer }) => {
    const p = JSON.parse(m.data.toString()) as { saga_id: string; secuencia: number };
    return p.saga_id === bad && p.secuencia === 2;
  };
  broker.refuse(refused);
  const registry = new Registry();
  const { log, lines } = captureLogger();
  const relay = relayTo(broker, { log, maxAttempts: 3, metrics: relayMetrics(registry, db()) });
  try {
    await drain(relay);
    await insertEvents([bad], 3, 3);
    await drain(relay);
  } finally {
    await relay.stop();
  }
  t.deepEqual(streams(broker).get(good), [1, 2, 3], 'the other saga is not held up');
  t.deepEqual(streams(broker).get(bad), [1, 3], 'the refused event is set aside, the saga goes on after it');
  const dead = await db().query<{ secuencia: number; intentos: number; error: string }>(
    'select secuencia, intentos, error from saga_events_descartados',
  );
  t.deepEqual(dead.rows.map((r) => [r.secuencia, r.intentos]), [[2, 3]]);
  t.regex(dead.rows[0]!.error, /MessageTooBig/);
  t.deepEqual(broker.duplicates, [], 'each retry went under a new sequence id, none dropped as a duplicate');
  const ids = broker.messages.map((m) => m.message.sequenceId ?? -1);
  t.deepEqual(ids, [...ids].sort((a, b) => a - b), 'sequence ids grow in publish order');
  t.regex(await registry.metrics(), /saga_outbox_dead_letters 1\b/);
  t.true(lines.some((l) => l.level === 50 && /saga_events_descartados/.test(l.msg)), 'the dead letter is logged as an error');
});

test.serial("a message refused once goes again under a new sequence id, alone: its saga's later events wait for it", async (t) => {
  const [flaky, other] = (await newSagas(2)) as [string, string];
  await insertEvents([flaky, other], 1, 1);
  await insertEvents([other], 2, 3);
  const broker = new FakeBroker();
  broker.deduplication = true;
  let refusals = 0;
  broker.refuse((m) => {
    const p = JSON.parse(m.data.toString()) as { saga_id: string; secuencia: number };
    return p.saga_id === flaky && p.secuencia === 1 && refusals++ < 2;
  });
  const relay = relayTo(broker);
  await claimable();
  try {
    t.is((await relay.publishBatch()).refused, 1);
    // Written after the refusal: taken with the retry, they would overtake it.
    await insertEvents([flaky], 2, 3);
    await drain(relay);
  } finally {
    await relay.stop();
  }
  t.is(refusals, 3, 'refused twice, then accepted');
  t.deepEqual(streams(broker).get(flaky), [1, 2, 3], 'the saga keeps its order');
  t.deepEqual(streams(broker).get(other), [1, 2, 3]);
  t.deepEqual(broker.duplicates, []);
  t.is((await db().query('select 1 from saga_events_descartados')).rowCount, 0);
});

test.serial("one pass takes all of a saga's pending events, in order, and sends them without waiting for each acknowledgement", async (t) => {
  const sagas = await newSagas(3);
  await insertEvents(sagas, 1, 4);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.latencyMs = 50;
  const relay = relayTo(broker);
  await claimable();
  try {
    const pass = await relay.publishBatch();
    t.is(pass.sent, 12, 'every pending event of every saga in one pass');
    t.is(pass.published, 12);
    t.is(broker.maxInFlight, 12, 'all twelve were in flight at once');
  } finally {
    await relay.stop();
  }
  for (const saga of sagas) t.deepEqual(streams(broker).get(saga), [1, 2, 3, 4], 'each saga in order');
  const ids = broker.messages.map((m) => m.message.sequenceId ?? -1);
  t.deepEqual(ids, oneToN(12), 'sequence ids 1..n in publish order');
  t.is(await pending(), 0);
});

test.serial('pipelined passes: the next batch is taken while one is sent, and a failed batch goes again before it', async (t) => {
  const sagas = await newSagas(6);
  await insertEvents(sagas, 1, 1);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.latencyMs = 30;
  broker.failNext(3);
  const relay = relayTo(broker, { batchSize: 3 });
  await claimable();
  try {
    const first = await relay.publishBatch({ pipelined: true });
    t.is(first.sent, 3);
    t.truthy(first.unavailable, 'the first batch failed');
    t.is(await numbered(), 6, 'the next batch was taken (numbered) while the first was being sent');
    // The relay's own loop goes on (pipelined passes wait out the shard's backoff).
    relay.start();
    await waitFor('the outbox to drain', async () => (await pending()) === 0);
  } finally {
    await relay.stop();
  }
  t.is(await pending(), 0);
  t.deepEqual(broker.duplicates, [], 'the batch taken later was not sent before the failed one went again');
  t.deepEqual(broker.messages.map((m) => m.message.sequenceId), oneToN(6), 'stored in sequence-id order, each once');
  for (const saga of sagas) t.deepEqual(streams(broker).get(saga), [1]);
});

test.serial("a saga's events are numbered in their order even when the transactions that wrote them were not", async (t) => {
  const [saga] = (await newSagas(1)) as [string];
  // Event 2 is written by a transaction that began before the one writing event 1.
  const early = new pg.Client({ connectionString: database!.url });
  await early.connect();
  const broker = new FakeBroker();
  broker.deduplication = true;
  const relay = relayTo(broker);
  try {
    await early.query('begin');
    await early.query('select pg_current_xact_id()');
    await insertEvents([saga], 1, 1);
    await insertEvents([saga], 2, 2, early);
    await early.query('commit');
    await claimable();
    t.is((await relay.publishBatch()).sent, 2);
  } finally {
    await relay.stop();
    await early.end();
  }
  t.deepEqual(streams(broker).get(saga), [1, 2]);
  t.deepEqual(broker.messages.map((m) => m.message.sequenceId), [1, 2]);
});

test.serial("a refused message whose saga's later event was stored is set aside at once, never sent after it", async (t) => {
  const [saga] = (await newSagas(1)) as [string];
  await insertEvents([saga], 1, 3);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.refuse((m) => (JSON.parse(m.data.toString()) as { secuencia: number }).secuencia === 2);
  const relay = relayTo(broker, { maxAttempts: 5 });
  await claimable();
  try {
    await drain(relay);
  } finally {
    await relay.stop();
  }
  t.deepEqual(streams(broker).get(saga), [1, 3]);
  const dead = await db().query<{ secuencia: number; intentos: number; error: string }>(
    'select secuencia, intentos, error from saga_events_descartados',
  );
  t.deepEqual(dead.rows.map((r) => [r.secuencia, r.intentos]), [[2, 1]], 'one attempt, not five');
  t.regex(dead.rows[0]!.error, /a later event of its saga was stored/);
});

test.serial("a relay takes only its own shard's events", async (t) => {
  const mine = await newSagas(2, 0);
  const others = await newSagas(2, 1);
  await insertEvents([...mine, ...others], 1, 2);
  const broker = new FakeBroker();
  const relay = relayTo(broker);
  await claimable();
  try {
    t.is((await relay.publishBatch()).sent, 4);
    t.is((await relay.publishBatch()).sent, 0, 'nothing more to take in shard 0');
  } finally {
    await relay.stop();
  }
  t.deepEqual(new Set(broker.payloads().map((p) => p.saga_id)), new Set(mine), "only shard 0's sagas were published");
  const { rows } = await db().query<{ n: number }>(
    `select count(*)::int as n from saga_events
      where saga_id = any($1::uuid[]) and publicado_en is null and id not in (${IN_FLIGHT_IDS})`,
    [others],
  );
  t.is(rows[0]!.n, 4, "shard 1's events are untouched, left to its holder");
});

test.serial('a relay whose shard was taken over publishes nothing of it, numbers nothing, and drops it', async (t) => {
  const sagas = await newSagas(3);
  await insertEvents(sagas, 1, 2);
  const broker = new FakeBroker();
  const fenced: ShardLease[] = [];
  const relay = relayTo(broker, { onFenced: (lease) => fenced.push(lease) });
  await claimable();
  // Another process takes shard 0 (with a higher epoch) before this relay's first pass.
  await takeLease(db(), 0, 'node-b');
  try {
    const pass = await relay.publishBatch();
    t.deepEqual(pass.fenced, [0], 'the pass says the lease is not held');
    t.is(pass.sent, 0);
    t.deepEqual(relay.shards(), [], 'the shard is dropped');
    relay.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    await relay.stop();
  }
  t.is(broker.attempts, 0, 'nothing was sent');
  t.is(await numbered(), 0, 'nothing was numbered');
  t.is(await pending(), 6);
  t.deepEqual(fenced, [lease0], 'the owner is told once that the lease is gone');
});

test.serial("after a hand-over the old holder's record is refused and the new holder publishes the rest, in order, once", async (t) => {
  const sagas = await newSagas(3);
  await insertEvents(sagas, 1, 3);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.latencyMs = 200;
  const old = relayTo(broker);
  await claimable();
  let leaseB: ShardLease;
  try {
    const pass = old.publishBatch();
    await waitFor('the batch in flight', () => broker.attempts === 9);
    // The lease is taken over while the old holder's batch is in flight.
    leaseB = await takeLease(db(), 0, 'node-b');
    const result = await pass;
    t.deepEqual(result.fenced, [0], "the old holder's record is refused by the fence");
    t.is(result.sent, 9);
    t.is(broker.messages.length, 9, 'the broker stored the batch');
  } finally {
    await old.stop();
  }
  const { rows } = await db().query<{ n: number }>(
    `select count(*)::int as n from ${IN_FLIGHT} where e.publicado_en is null`,
  );
  t.is(rows[0]!.n, 9, 'the old holder marked nothing: its batch is still in flight, under its sequence ids');
  await insertEvents(sagas, 4, 5);
  broker.latencyMs = 0;
  const next = relayTo(broker, { leases: [leaseB] });
  try {
    await drain(next);
  } finally {
    await next.stop();
  }
  for (const saga of sagas) t.deepEqual(streams(broker).get(saga), oneToN(5), 'each event stored once, in order');
  t.deepEqual(broker.duplicates.map((m) => m.message.sequenceId), oneToN(9), 'the replayed batch, dropped by the broker as copies');
  t.deepEqual(new Set(broker.messages.map((m) => m.producerName)), new Set(['saga-outbox-test-0']), "one producer name: the shard's");
});

test.serial("each shard's sequence ids grow under its own producer name, across a hand-over", async (t) => {
  const shard0 = await newSagas(2, 0);
  const shard1 = await newSagas(2, 1);
  await insertEvents([...shard0, ...shard1], 1, 2);
  const broker = new FakeBroker();
  broker.deduplication = true;
  const lease1 = await takeLease(db(), 1, HERE);
  const a0 = relayTo(broker);
  const a1 = relayTo(broker, { leases: [lease1] });
  await claimable();
  try {
    await a0.publishBatch();
    await a1.publishBatch();
  } finally {
    await Promise.all([a0.stop(), a1.stop()]);
  }
  // Shard 0 changes hands; its new holder numbers what comes next.
  const leaseB = await takeLease(db(), 0, 'node-b');
  await insertEvents(shard0, 3, 4);
  const b0 = relayTo(broker, { leases: [leaseB] });
  await claimable();
  try {
    await drain(b0);
  } finally {
    await b0.stop();
  }
  const idsOf = (name: string) => broker.messages.filter((m) => m.producerName === name).map((m) => m.message.sequenceId);
  t.deepEqual(idsOf('saga-outbox-test-0'), oneToN(8), "shard 0: 1..8, the new holder's going on from the old holder's");
  t.deepEqual(idsOf('saga-outbox-test-1'), oneToN(4), 'shard 1: a sequence of its own');
  t.deepEqual(broker.duplicates, [], 'nothing dropped as a duplicate');
  for (const saga of shard0) t.deepEqual(streams(broker).get(saga), oneToN(4));
});

/** `db()` with every statement's text kept, to see what one pass costs. */
function countingDb(): { db: Queryable; statements: string[] } {
  const statements: string[] = [];
  const query = (text: string, values?: unknown[]) => {
    statements.push(text);
    return db().query(text, values);
  };
  return { db: { query } as unknown as Queryable, statements };
}

/** What a relay statement is, from its text. */
function statementKind(sql: string): string {
  if (/set publicado_en = now\(\)/.test(sql)) return 'record';
  if (/update saga_relay_shards/.test(sql)) return 'claim';
  if (/order by r.shard, f.secuencia_envio/.test(sql)) return 'in flight';
  return 'other';
}

/** The sequence ids the broker stored under shard `shard`'s producer name, in order. */
const idsOfShard = (broker: FakeBroker, shard: number) =>
  broker.messages.filter((m) => m.producerName === shardProducerName('saga-outbox-test', shard)).map((m) => m.message.sequenceId);

test.serial('one pass takes the events of every held shard in one claim and records them in one statement', async (t) => {
  const leases = [lease0, await takeLease(db(), 1, HERE), await takeLease(db(), 2, HERE)];
  const sagas = [...(await newSagas(2, 0)), ...(await newSagas(2, 1)), ...(await newSagas(2, 2))];
  await insertEvents(sagas, 1, 2);
  const broker = new FakeBroker();
  broker.deduplication = true;
  const counting = countingDb();
  const relay = relayTo(broker, { leases, db: counting.db });
  await claimable();
  try {
    t.is((await relay.publishBatch()).sent, 12, "every shard's events in one pass");
    t.deepEqual(counting.statements.map(statementKind), ['in flight', 'claim', 'record'], 'shards just taken first read what is in flight, all in one statement');
    counting.statements.length = 0;
    await insertEvents(sagas, 3, 3);
    await claimable();
    t.is((await relay.publishBatch()).sent, 6);
    t.deepEqual(counting.statements.map(statementKind), ['claim', 'record'], 'three shards, one claim and one record');
  } finally {
    await relay.stop();
  }
  for (const shard of [0, 1, 2]) t.deepEqual(idsOfShard(broker, shard), oneToN(6), `shard ${shard}: its own producer and sequence`);
  for (const saga of sagas) t.deepEqual(streams(broker).get(saga), [1, 2, 3]);
  t.deepEqual(broker.duplicates, []);
  t.is(await pending(), 0);
});

test.serial("a shard lost between claim and record gets nothing marked, while the other shards' events are", async (t) => {
  const lease1 = await takeLease(db(), 1, HERE);
  const shard0 = await newSagas(2, 0);
  const shard1 = await newSagas(2, 1);
  await insertEvents([...shard0, ...shard1], 1, 2);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.latencyMs = 200;
  const fenced: ShardLease[] = [];
  const relay = relayTo(broker, { leases: [lease0, lease1], onFenced: (lease) => fenced.push(lease) });
  await claimable();
  try {
    const pass = relay.publishBatch();
    await waitFor('the batch in flight', () => broker.attempts === 8);
    await takeLease(db(), 1, 'node-b');
    const result = await pass;
    t.is(result.published, 8, 'the broker stored all of them');
    t.deepEqual(result.fenced, [1], "shard 1's record is refused by its fence");
    t.deepEqual(relay.shards(), [0], 'shard 1 is dropped, shard 0 kept');
  } finally {
    await relay.stop();
  }
  const { rows } = await db().query<{ shard: number; published: number; in_flight: number }>(
    `select e.shard, count(e.publicado_en)::int as published,
            count(*) filter (where e.publicado_en is null and f.id is not null)::int as in_flight
       from saga_events e left join (${IN_FLIGHT_IDS}) f on f.id = e.id
      group by e.shard order by e.shard`,
  );
  t.deepEqual(rows, [
    { shard: 0, published: 4, in_flight: 0 },
    { shard: 1, published: 0, in_flight: 4 },
  ], "shard 0's events are marked; shard 1's stay in flight under their sequence ids, for its new holder");
  t.deepEqual(fenced, [lease1], 'the owner is told that the lease of shard 1 is gone');
});

test.serial("rows taken for a shard while its batch failed wait for that batch to go again, while the other shards' go out", async (t) => {
  const lease1 = await takeLease(db(), 1, HERE);
  const shard0 = await newSagas(4, 0);
  const shard1 = await newSagas(4, 1);
  // Interleaved, so that each batch of 4 holds two events of each shard.
  await insertEvents(shard0.flatMap((saga, i) => [saga, shard1[i]!]), 1, 1);
  const broker = new FakeBroker();
  broker.deduplication = true;
  broker.latencyMs = 30;
  broker.failNext(2, shardProducerName('saga-outbox-test', 1));
  const relay = relayTo(broker, { leases: [lease0, lease1], batchSize: 4 });
  await claimable();
  try {
    const first = await relay.publishBatch({ pipelined: true });
    t.is(first.sent, 4);
    t.truthy(first.unavailable, "shard 1's part failed");
    t.is(await numbered(), 8, 'the next batch (both shards) was taken while this one was sent');
    relay.start();
    await waitFor('the outbox to drain', async () => (await pending()) === 0);
  } finally {
    await relay.stop();
  }
  t.deepEqual(broker.duplicates, [], "nothing taken later for shard 1 went before its failed batch went again");
  t.deepEqual(idsOfShard(broker, 0), oneToN(4));
  t.deepEqual(idsOfShard(broker, 1), oneToN(4), 'shard 1: stored in sequence-id order, each once');
  for (const saga of [...shard0, ...shard1]) t.deepEqual(streams(broker).get(saga), [1]);
});

test.serial('a shard taken by a running relay first sends what its previous holder left in flight, under the same sequence ids', async (t) => {
  const theirs = await newSagas(2, 1);
  await insertEvents(theirs, 1, 1);
  const broker = new FakeBroker();
  broker.deduplication = true;
  // Shard 1's previous holder took a batch and stopped before the broker had it.
  broker.down = true;
  const previous = relayTo(broker, { leases: [await takeLease(db(), 1, 'node-b')] });
  await claimable();
  t.is((await previous.publishBatch()).sent, 2);
  await previous.stop();
  broker.down = false;
  const later = await newSagas(1, 1);
  await insertEvents(later, 1, 1);
  const relay = relayTo(broker);
  relay.start();
  try {
    relay.acquired(await takeLease(db(), 1, HERE));
    await waitFor('the outbox to drain', async () => (await pending()) === 0);
  } finally {
    await relay.stop();
  }
  t.deepEqual(idsOfShard(broker, 1), [1, 2, 3], 'the batch left in flight under ids 1 and 2, then the new event');
  t.deepEqual(
    broker.messages.slice(0, 2).map((m) => m.message.partitionKey).sort(),
    [...theirs].sort(),
    "the first two are the previous holder's batch",
  );
  t.deepEqual(broker.duplicates, []);
});

test.serial('a replay larger than one batch goes out whole, in sequence-id order, before anything new of its shard', async (t) => {
  const sagas = await newSagas(6, 0);
  await insertEvents(sagas, 1, 1);
  const broker = new FakeBroker();
  broker.deduplication = true;
  // Shard 0's previous holder took a full batch and the next one while the broker was down.
  broker.down = true;
  const previous = relayTo(broker, { leases: [await takeLease(db(), 0, 'node-b')], batchSize: 2 });
  await claimable();
  t.is((await previous.publishBatch({ pipelined: true })).sent, 2);
  await previous.stop();
  t.is(await numbered(), 4, 'four rows in flight, two batches of the new holder');
  broker.down = false;
  await insertEvents(await newSagas(2, 0), 1, 1);
  const relay = relayTo(broker, { leases: [await takeLease(db(), 0, HERE)], batchSize: 2 });
  await claimable();
  relay.start();
  try {
    await waitFor('the outbox to drain', async () => (await pending()) === 0);
  } finally {
    await relay.stop();
  }
  t.deepEqual(idsOfShard(broker, 0), oneToN(8), 'the four left in flight first, then the rest, each once');
  t.deepEqual(broker.duplicates, []);
});

test.serial('a shard taken is published under its own producer name; a shard lost is left out and its producer closed', async (t) => {
  const sagas = await newSagas(2, 0);
  await insertEvents(sagas, 1, 1);
  const broker = new FakeBroker();
  const relay = relayTo(broker, { leases: [] });
  relay.start();
  try {
    relay.acquired(lease0);
    t.deepEqual(relay.shards(), [0]);
    await waitFor('the outbox to drain', async () => (await pending()) === 0);
    t.deepEqual([...broker.connected], ['saga-outbox-test-0']);
    relay.lost(0);
    t.deepEqual(relay.shards(), []);
    await waitFor('the producer to close', () => broker.connected.size === 0);
    await insertEvents(sagas, 2, 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    await relay.stop();
  }
  t.deepEqual([...broker.connected], [], 'the producer is closed, so the next holder can open it');
  t.is(broker.messages.length, 2, 'nothing published after the shard was lost');
  t.is(await pending(), 2);
});

test.serial('the lag metric is the age of the oldest unpublished event, and 0 when all are published', async (t) => {
  const registry = new Registry();
  const broker = new FakeBroker();
  const relay = relayTo(broker, { metrics: relayMetrics(registry, db()) });
  const lag = async () => {
    const metric = await registry.getSingleMetric('saga_outbox_lag_seconds')!.get();
    return metric.values[0]?.value ?? -1;
  };
  try {
    t.is(await lag(), 0);
    const [saga] = (await newSagas(1)) as [string];
    await db().query(
      `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, shard) values ($1, 1, 'X', 'Y', '{}', now() - interval '90 seconds', 0)`,
      [saga],
    );
    t.true((await lag()) >= 90);
    await drain(relay);
    t.is(await lag(), 0);
    t.regex(await registry.metrics(), /saga_outbox_published_total 1\b/);
  } finally {
    await relay.stop();
  }
});

test.serial('stop waits for the pass in flight, which is recorded', async (t) => {
  const sagas = await newSagas(3);
  await insertEvents(sagas, 1, 1);
  const broker = new FakeBroker();
  broker.latencyMs = 300;
  const relay = relayTo(broker);
  relay.start();
  await waitFor('the first sends', () => broker.attempts > 0);
  await relay.stop();
  t.is(await pending(), 0);
  const attempts = broker.attempts;
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(broker.attempts, attempts, 'no pass after stop');
  t.deepEqual([...broker.connected], [], 'the producer is closed, so another relay can open it');
});

test('loadPulsarClient rejects with a clear message when pulsar-client is missing', async (t) => {
  const expected = {
    message: /PULSAR_URL is set but the optional dependency pulsar-client is not installed.*libpulsar.*README.*npm install pulsar-client.*unset PULSAR_URL/s,
  };
  await t.throwsAsync(loadPulsarClient(), expected);
  await t.throwsAsync(createPulsarProducer('pulsar://127.0.0.1:6650', 'saga-events'), expected);
});

test('createPulsarProducer opens a named, unbatched producer on the topic and close releases producer and client', async (t) => {
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
  t.is(producer.config.batchingEnabled, false, 'one message per sequence id');
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
