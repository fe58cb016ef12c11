// The binary transport's connection rules against a stand-in broker (test/fakes/pulsar-binary.ts):
// what each answer of the broker becomes for the relay. The real broker, its
// deduplication and Apache's own client reading the topic back are in `npm run test:pulsar`.
import test from 'ava';
import { pino } from 'pino';
import type tls from 'node:tls';
import { BinaryClient, binaryTransport } from '../src/events/binary-transport.js';
import type { OutboxMessage, PublishOutcome } from '../src/events/transport.js';
import { freePort } from '../src/http/server.js';
import { FakeBinaryBroker } from './fakes/pulsar-binary.js';
import { tlsFiles } from './fixtures/tls-certificate.js';
import { waitUntil } from './helpers/wait.js';

const log = pino({ level: 'silent' });

/** The error of an outcome that is not `stored`. */
const errorOf = (o: PublishOutcome | undefined): string => (o === undefined || o.kind === 'stored' ? '' : o.error);

const message = (sequenceId: number): OutboxMessage => ({
  sequenceId,
  key: `saga-${sequenceId}`,
  payload: Buffer.from(`event ${sequenceId}`),
  properties: {},
  eventTime: 0,
});

/** Runs `run` against a stand-in broker, over TLS with `tlsOptions`. */
async function withBroker(run: (broker: FakeBinaryBroker) => Promise<void>, tlsOptions?: tls.TlsOptions): Promise<void> {
  const broker = new FakeBinaryBroker();
  await broker.start(tlsOptions);
  try {
    await run(broker);
  } finally {
    await broker.stop();
  }
}

const transportTo = (url: string, sendTimeoutMs = 10_000) =>
  binaryTransport({ serviceUrl: url, topic: 'saga-events', producerName: 'saga-outbox-x-3', log, sendTimeoutMs, connectTimeoutMs: 2_000 });

test('a run goes out as one batch under the shard\'s producer name, on the topic looked up in full', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker.url);
    t.deepEqual((await transport.publish([41, 42, 43].map(message))).map((o) => o.kind), ['stored', 'stored', 'stored']);
    await transport.close();
    t.deepEqual(broker.sends, [{ sequenceId: 41, highest: 43, messages: 3 }]);
    t.deepEqual(broker.producerNames, ['saga-outbox-x-3']);
    t.deepEqual(broker.lookups, ['persistent://public/default/saga-events']);
  });
});

test('a lookup redirected to another broker is followed, and the producer opens there', async (t) => {
  await withBroker(async (first) => {
    await withBroker(async (owner) => {
      first.redirectTo = owner.url;
      const transport = transportTo(first.url);
      t.deepEqual((await transport.publish([1].map(message))).map((o) => o.kind), ['stored']);
      await transport.close();
      t.deepEqual(first.producerNames, []);
      t.deepEqual(owner.producerNames, ['saga-outbox-x-3']);
      t.is(owner.sends.length, 1);
    });
  });
});

test('a producer name still held by a producer that just left is tried again until it is free', async (t) => {
  await withBroker(async (broker) => {
    broker.busyTimes = 3;
    const transport = transportTo(broker.url);
    t.deepEqual((await transport.publish([1].map(message))).map((o) => o.kind), ['stored']);
    await transport.close();
    t.deepEqual(broker.producerNames, ['saga-outbox-x-3']);
  });
});

test('a checksum error refuses the frame\'s messages; a persistence error leaves them unavailable; the next publish opens the producer anew', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker.url);
    broker.sendAnswers.push({ kind: 'error', code: 9, message: 'checksum' });
    const refused = await transport.publish([1, 2].map(message));
    t.deepEqual(refused.map((o) => o.kind), ['refused', 'refused']);
    t.regex(errorOf(refused[0]), /ChecksumError/);
    broker.sendAnswers.push({ kind: 'error', code: 2, message: 'bookie down' });
    t.deepEqual((await transport.publish([3].map(message))).map((o) => o.kind), ['unavailable']);
    t.deepEqual((await transport.publish([4].map(message))).map((o) => o.kind), ['stored']);
    await transport.close();
    t.is(broker.producerNames.length, 3, 'a producer opened anew after each failed frame');
  });
});

test('a replay goes one message per frame, so that the broker judges each alone', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker.url);
    t.deepEqual((await transport.publish([7, 8].map(message), { replay: true })).map((o) => o.kind), ['stored', 'stored']);
    await transport.close();
    t.deepEqual(broker.sends, [
      { sequenceId: 7, highest: undefined, messages: 1 },
      { sequenceId: 8, highest: undefined, messages: 1 },
    ]);
  });
});

test('a broker that closes the producer leaves the frame unavailable; a silent broker too, after the send timeout', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker.url, 300);
    broker.sendAnswers.push({ kind: 'closeProducer' });
    t.deepEqual((await transport.publish([1].map(message))).map((o) => o.kind), ['unavailable']);
    broker.sendAnswers.push({ kind: 'silence' });
    const silent = await transport.publish([2].map(message));
    t.deepEqual(silent.map((o) => o.kind), ['unavailable']);
    t.regex(errorOf(silent[0]), /no answer/);
    await transport.close();
  });
});

test("the broker's pings are answered, so it keeps the connection", async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker.url);
    await transport.publish([1].map(message));
    broker.ping();
    await waitUntil(() => broker.pongs === 1, { what: 'a pong', timeoutMs: 5_000 });
    await transport.close();
    t.is(broker.pongs, 1);
  });
});

test('a broker that refuses the connection makes a publish unavailable at once, not after the connect timeout', async (t) => {
  t.timeout(10_000);
  const transport = binaryTransport({
    serviceUrl: `pulsar://127.0.0.1:${await freePort()}`,
    topic: 'saga-events',
    producerName: 'p',
    log,
    connectTimeoutMs: 60_000,
  });
  const outcomes = await transport.publish([1].map(message));
  t.deepEqual(outcomes.map((o) => o.kind), ['unavailable']);
  t.regex(errorOf(outcomes[0]), /cannot open a producer: .*ECONNREFUSED/);
});

test('a broker that never answers CONNECT is given up after the connect timeout, and its connection closed', async (t) => {
  await withBroker(async (broker) => {
    broker.connectAnswer = 'silence';
    const transport = binaryTransport({ serviceUrl: broker.url, topic: 'saga-events', producerName: 'p', log, connectTimeoutMs: 300 });
    const outcomes = await transport.publish([1].map(message));
    t.deepEqual(outcomes.map((o) => o.kind), ['unavailable']);
    t.regex(errorOf(outcomes[0]), /no answer from the broker within 300 ms/);
    await waitUntil(() => broker.connections === 0, { what: 'the connection closed' });
    t.is(broker.connections, 0);
  });
});

test("a broker that refuses CONNECT (authentication) makes a publish unavailable, with the broker's reason", async (t) => {
  t.timeout(10_000);
  await withBroker(async (broker) => {
    broker.connectAnswer = 'authenticationError';
    const transport = binaryTransport({ serviceUrl: broker.url, topic: 'saga-events', producerName: 'p', log, connectTimeoutMs: 60_000 });
    const outcomes = await transport.publish([1].map(message));
    t.deepEqual(outcomes.map((o) => o.kind), ['unavailable']);
    t.regex(errorOf(outcomes[0]), /AuthenticationError: Unable to authenticate/);
  });
});

test('a producer the broker keeps waiting for access to the topic is not used: the publish is unavailable, saying why', async (t) => {
  t.timeout(10_000);
  await withBroker(async (broker) => {
    broker.producerReady = false;
    const outcomes = await transportTo(broker.url).publish([1].map(message));
    t.deepEqual(outcomes.map((o) => o.kind), ['unavailable']);
    t.regex(errorOf(outcomes[0]), /keeps the producer waiting/);
    t.deepEqual(broker.sends, [], 'nothing sent');
  });
});

const clientOf = (url: string, extra: Partial<ConstructorParameters<typeof BinaryClient>[0]> = {}) =>
  new BinaryClient({ serviceUrl: url, topic: 'saga-events', log, connectTimeoutMs: 2_000, ...extra });

/** The producers of shards 0 and 1, on one client. */
const twoShards = (url: string) => {
  const client = clientOf(url);
  return [client.producer('saga-outbox-x-0'), client.producer('saga-outbox-x-1')] as const;
};

test("every shard's producer is a producer of one connection, each frame under its own producer's id", async (t) => {
  await withBroker(async (broker) => {
    const client = clientOf(broker.url);
    const shards = [0, 1, 2].map((n) => client.producer(`saga-outbox-x-${n}`));
    const outcomes = await Promise.all(shards.map((p, n) => p.publish([message(10 * n + 1), message(10 * n + 2)])));
    t.deepEqual(outcomes.flat().map((o) => o.kind), Array(6).fill('stored'));
    t.is(broker.accepted, 1, 'one connection for the three producers');
    t.deepEqual([...broker.sendsByProducer].sort(), ['saga-outbox-x-0#1', 'saga-outbox-x-1#11', 'saga-outbox-x-2#21']);
    await Promise.all(shards.map((p) => p.close()));
  });
});

test("a failed frame closes its own producer only: the other shards' producers keep the connection", async (t) => {
  await withBroker(async (broker) => {
    const [a, b] = twoShards(broker.url);
    t.deepEqual((await b.publish([message(1)])).map((o) => o.kind), ['stored']);
    broker.sendAnswers.push({ kind: 'error', code: 2, message: 'bookie down' });
    t.deepEqual((await a.publish([message(1)])).map((o) => o.kind), ['unavailable']);
    t.deepEqual(broker.closedProducers, [2], "a's producer closed at the broker");
    t.deepEqual((await b.publish([message(2)])).map((o) => o.kind), ['stored']);
    t.deepEqual((await a.publish([message(1)])).map((o) => o.kind), ['stored']);
    t.is(broker.accepted, 1, 'no new connection');
    t.deepEqual(broker.producerNames, ['saga-outbox-x-1', 'saga-outbox-x-0', 'saga-outbox-x-0']);
    await Promise.all([a.close(), b.close()]);
  });
});

test('a producer the broker closes is opened again at its next publish, on the same connection', async (t) => {
  await withBroker(async (broker) => {
    const [a, b] = twoShards(broker.url);
    await a.publish([message(1)]);
    await b.publish([message(1)]);
    broker.closeProducer(1);
    // b's receipt comes after the CLOSE_PRODUCER on the connection: once it is in, so is the close.
    t.deepEqual((await b.publish([message(2)])).map((o) => o.kind), ['stored']);
    t.deepEqual((await a.publish([message(2)])).map((o) => o.kind), ['stored']);
    t.is(broker.accepted, 1);
    t.deepEqual(broker.producerNames, ['saga-outbox-x-0', 'saga-outbox-x-1', 'saga-outbox-x-0']);
    await Promise.all([a.close(), b.close()]);
  });
});

test('the connection is closed when its last producer closes, and opened again by the next publish', async (t) => {
  await withBroker(async (broker) => {
    const [a, b] = twoShards(broker.url);
    await Promise.all([a.publish([message(1)]), b.publish([message(1)])]);
    await a.close();
    t.is(broker.connections, 1, 'b still uses it');
    await b.close();
    await waitUntil(() => broker.connections === 0, { what: 'the connection closed' });
    t.deepEqual((await a.publish([message(2)])).map((o) => o.kind), ['stored']);
    t.is(broker.accepted, 2);
    await a.close();
  });
});

test('with a token, CONNECT carries it, and the broker\'s challenge for it again is answered with it', async (t) => {
  await withBroker(async (broker) => {
    const transport = binaryTransport({ serviceUrl: broker.url, topic: 'saga-events', producerName: 'p', log, authToken: 'eyJ.token' });
    t.deepEqual((await transport.publish([message(1)])).map((o) => o.kind), ['stored']);
    t.deepEqual(broker.connects, [{ method: 'token', data: 'eyJ.token' }]);
    broker.challenge();
    await waitUntil(() => broker.authResponses.length === 1, { what: 'an answer to the challenge' });
    t.deepEqual(broker.authResponses, ['eyJ.token']);
    await transport.close();
  });
});

test('without a token, CONNECT carries no authentication', async (t) => {
  await withBroker(async (broker) => {
    const transport = transportTo(broker.url);
    await transport.publish([message(1)]);
    t.deepEqual(broker.connects, [{ method: undefined, data: undefined }]);
    await transport.close();
  });
});

test("pulsar+ssl:// publishes over TLS to a broker whose certificate is trusted, at the lookup's TLS address", async (t) => {
  await withBroker(async (broker) => {
    t.regex(broker.url, /^pulsar\+ssl:/);
    const transport = binaryTransport({ serviceUrl: broker.url, topic: 'saga-events', producerName: 'p', log, tlsCa: tlsFiles.cert });
    t.deepEqual((await transport.publish([message(1), message(2)])).map((o) => o.kind), ['stored', 'stored']);
    t.is(broker.accepted, 1, 'the lookup said Connect here, at its TLS address');
    await transport.close();
  }, tlsFiles);
});

test('pulsar+ssl:// to a broker whose certificate is not trusted publishes nothing, and says why', async (t) => {
  await withBroker(async (broker) => {
    const transport = binaryTransport({ serviceUrl: broker.url, topic: 'saga-events', producerName: 'p', log });
    const outcomes = await transport.publish([message(1)]);
    t.deepEqual(outcomes.map((o) => o.kind), ['unavailable']);
    t.regex(errorOf(outcomes[0]), /self-signed certificate/);
    t.deepEqual(broker.sends, []);
  }, tlsFiles);
});
