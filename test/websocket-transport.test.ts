// The WebSocket transport against a stand-in for Pulsar's WebSocket producer API: the
// broker must see the relay's own sequence ids although the API numbers messages itself.
import test from 'ava';
import { pino } from 'pino';
import { websocketTransport, consecutiveRuns } from '../src/events/websocket-transport.js';
import type { OutboxMessage } from '../src/events/transport.js';
import { FakeWebSocketBroker } from './fakes/pulsar-websocket.js';
import { freePort } from '../src/http/server.js';

const log = pino({ level: 'silent' });

function message(sequenceId: number): OutboxMessage {
  return { sequenceId, key: `saga-${sequenceId % 3}`, payload: Buffer.from(`event ${sequenceId}`), properties: {}, eventTime: 0 };
}

async function withBroker(run: (broker: FakeWebSocketBroker) => Promise<void>): Promise<void> {
  const broker = new FakeWebSocketBroker();
  await broker.start();
  try {
    await run(broker);
  } finally {
    await broker.stop();
  }
}

const transportTo = (broker: FakeWebSocketBroker) =>
  websocketTransport({ webUrl: broker.url, topic: 'saga-events', producerName: 'saga-outbox-x', log, connectTimeoutMs: 1_000 });

test('the broker stores each message under the relay\'s sequence id, with the saga id as key', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker);
    t.deepEqual((await transport.publish([41, 42, 43].map(message))).map((o) => o.kind), ['stored', 'stored', 'stored']);
    t.deepEqual((await transport.publish([44, 45].map(message))).map((o) => o.kind), ['stored', 'stored']);
    await transport.close();
    t.deepEqual(broker.stored.map((m) => [m.sequenceId, m.payload]), [41, 42, 43, 44, 45].map((n) => [n, `event ${n}`]));
    t.deepEqual(broker.stored.map((m) => m.key), [41, 42, 43, 44, 45].map((n) => `saga-${n % 3}`));
    t.is(broker.sessions.length, 1, 'consecutive batches share one session');
    t.is(broker.sessions[0]!.get('producerName'), 'saga-outbox-x');
    t.is(broker.sessions[0]!.get('initialSequenceId'), '40');
  });
});

test('a gap in the sequence ids opens a new session numbered from there', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker);
    await transport.publish([1, 2, 5, 6].map(message));
    await transport.close();
    t.deepEqual(broker.stored.map((m) => m.sequenceId), [1, 2, 5, 6]);
    t.deepEqual(broker.sessions.map((s) => s.get('initialSequenceId')), ['0', '4']);
  });
});

test('a replay under the same sequence ids is dropped by the broker and answered as stored', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker);
    await transport.publish([1, 2, 3].map(message));
    t.deepEqual((await transport.publish([2, 3, 4].map(message))).map((o) => o.kind), ['stored', 'stored', 'stored']);
    await transport.close();
    t.deepEqual(broker.stored.map((m) => m.sequenceId), [1, 2, 3, 4]);
    t.deepEqual(broker.duplicates.map((m) => m.sequenceId), [2, 3]);
  });
});

test('a refused message is reported as refused, and the next batch starts a fresh session', async (t) => {
  await withBroker(async (broker) => {
    broker.refuse = (payload) => payload === 'event 2';
    const transport = transportTo(broker);
    const outcomes = await transport.publish([1, 2, 3].map(message));
    t.deepEqual(outcomes.map((o) => o.kind), ['stored', 'refused', 'stored']);
    broker.refuse = undefined;
    await transport.publish([4].map(message));
    await transport.close();
    // After the refusal the API's numbering and the relay's differ (3 went as 2): a new session.
    t.is(broker.sessions.length, 2);
    t.deepEqual(broker.stored.at(-1), { producerName: 'saga-outbox-x', sequenceId: 4, key: 'saga-1', payload: 'event 4', context: '4' });
  });
});

test('a broker that does not answer makes every message unavailable', async (t) => {
  const transport = websocketTransport({
    webUrl: `http://127.0.0.1:${await freePort()}`,
    topic: 'saga-events',
    producerName: 'x',
    log,
    connectTimeoutMs: 500,
  });
  const outcomes = await transport.publish([1, 2].map(message));
  t.deepEqual(outcomes.map((o) => o.kind), ['unavailable', 'unavailable']);
  t.regex(outcomes[0]!.kind === 'unavailable' ? outcomes[0]!.error : '', /cannot open a producer/);
});

test('the producer batches, and pipelines up to maxPendingMessages messages waiting for their acknowledgements', async (t) => {
  await withBroker(async (broker) => {
    broker.ackDelayMs = 30;
    const transport = websocketTransport({
      webUrl: broker.url,
      topic: 'saga-events',
      producerName: 'saga-outbox-x',
      log,
      maxPendingMessages: 5,
      batchingMaxMessages: 100,
      batchingMaxPublishDelayMs: 2,
    });
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);
    const outcomes = await transport.publish(ids.map(message));
    await transport.close();
    t.true(outcomes.every((o) => o.kind === 'stored'));
    t.deepEqual(broker.stored.map((m) => m.sequenceId), ids, 'in order, under the relay\'s ids');
    t.is(broker.maxUnanswered, 5, 'five in flight at once, never more');
    const params = broker.sessions[0]!;
    t.deepEqual(
      ['batchingEnabled', 'batchingMaxMessages', 'batchingMaxPublishDelay', 'maxPendingMessages'].map((k) => params.get(k)),
      ['true', '100', '2', '5'],
    );
  });
});

test('a replay goes through an unbatched session, and the next new messages through a batched one again', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker);
    await transport.publish([1, 2, 3].map(message));
    t.deepEqual((await transport.publish([2, 3, 4].map(message), { replay: true })).map((o) => o.kind), ['stored', 'stored', 'stored']);
    await transport.publish([5].map(message));
    await transport.close();
    t.deepEqual(broker.stored.map((m) => m.sequenceId), [1, 2, 3, 4, 5]);
    t.deepEqual(broker.duplicates.map((m) => m.sequenceId), [2, 3], 'the broker judged each replayed message alone');
    t.deepEqual(broker.sessions.map((s) => s.get('batchingEnabled')), ['true', 'false', 'true']);
    t.deepEqual(broker.sessions.map((s) => s.get('initialSequenceId')), ['0', '1', '4']);
  });
});

test('consecutiveRuns splits at every gap', (t) => {
  t.deepEqual(consecutiveRuns([1, 2, 4, 5, 6, 9].map(message)).map((r) => r.map((m) => m.sequenceId)), [[1, 2], [4, 5, 6], [9]]);
});

test('with a token, each producer session is opened with it as a bearer token; without one, with no Authorization', async (t) => {
  await withBroker(async (broker) => {
    const withToken = websocketTransport({ webUrl: broker.url, topic: 'saga-events', producerName: 'a', log, authToken: 'eyJ.token' });
    await withToken.publish([message(1)]);
    await withToken.close();
    const without = websocketTransport({ webUrl: broker.url, topic: 'saga-events', producerName: 'b', log });
    await without.publish([message(1)]);
    await without.close();
    t.deepEqual(broker.authorizations, ['Bearer eyJ.token', null]);
  });
});
