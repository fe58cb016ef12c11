// The events of a real saga reach Pulsar through the outbox relay, here a fake
// broker with pulsar-client's API (the real client cannot be built on this machine).
import test from 'ava';
import { testConfig, useTestEnv } from './helpers/system.js';
import { startOrchestratorRole } from '../src/roles.js';
import { seedDatos } from './fixtures/requests.js';
import { ScriptedGateway } from './fakes/participants.js';
import { FakeBroker, fakePulsarModule } from './fakes/pulsar.js';
import { waitForEstado } from './helpers/sagas.js';
import { pino } from 'pino';
import { chooseTransportFactory } from '../src/events/event-relay.js';
import { loadConfig } from '../src/config.js';
import { FakeBinaryBroker } from './fakes/pulsar-binary.js';
import { TLS_CERT_PATH, TLS_KEY_PATH, tlsFiles } from './fixtures/tls-certificate.js';
import type { EventTransport, OutboxMessage } from '../src/events/transport.js';
import { FakeWebSocketBroker } from './fakes/pulsar-websocket.js';

const env = useTestEnv(test);

// Serial, so it runs before the other tests start an orchestrator on this database.
test.serial('with PULSAR_TRANSPORT=pulsar-client and pulsar-client missing, the orchestrator refuses to start, says why, and ran nothing', async (t) => {
  await env.ready();
  const err = await t.throwsAsync(
    startOrchestratorRole(testConfig({ PULSAR_URL: 'pulsar://127.0.0.1:6650', PULSAR_TRANSPORT: 'pulsar-client' }), env.databaseUrl, env.log),
  );
  t.regex(err?.message ?? '', /PULSAR_URL/);
  t.regex(err?.message ?? '', /pulsar-client/);
  // It failed before taking any shard: it never ran (and abandoned) another test's sagas.
  // (A lease's epoch grows each time a process takes it, and is kept when given back.)
  t.deepEqual(await env.query('select shard from saga_shards where epoch > 0'), []);
});

test('with pulsar-client missing, the relay speaks the binary protocol to PULSAR_URL itself, and says so', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const transport = (await chooseTransportFactory(testConfig({ PULSAR_URL: 'pulsar://broker.example:6650' }), log)).create('saga-outbox-x');
  t.is(transport.name, 'binary');
  t.is(transport.target, 'pulsar://broker.example:6650 persistent://public/default/saga-events');
  t.true(lines.some((l) => /binary protocol/.test(String(l.msg))));
});

test('with pulsar-client missing and a pulsar+ssl:// URL, the relay speaks the binary protocol over TLS', async (t) => {
  const transport = (await chooseTransportFactory(testConfig({ PULSAR_URL: 'pulsar+ssl://broker.example:6651' }), pino({ level: 'silent' }))).create('x');
  t.is(transport.name, 'binary');
  t.is(transport.target, 'pulsar+ssl://broker.example:6651 persistent://public/default/saga-events');
});

/** One event to publish, for the tests of what a transport is given. */
const ONE_EVENT: OutboxMessage = { sequenceId: 1, key: 'k', payload: Buffer.from('e'), properties: {}, eventTime: 0 };

test("the binary transport's producers (one per shard) share one connection, with PULSAR_AUTH_TOKEN and PULSAR_TLS_CA_FILE", async (t) => {
  const broker = new FakeBinaryBroker();
  await broker.start(tlsFiles);
  try {
    const config = testConfig({ PULSAR_URL: broker.url, PULSAR_TRANSPORT: 'binary', PULSAR_AUTH_TOKEN: 'eyJ.token', PULSAR_TLS_CA_FILE: TLS_CERT_PATH });
    const factory = await chooseTransportFactory(config, pino({ level: 'silent' }));
    const shards = ['saga-outbox-x-0', 'saga-outbox-x-1'].map((name) => factory.create(name));
    const outcomes = await Promise.all(shards.map((p) => p.publish([ONE_EVENT])));
    t.deepEqual(outcomes.flat().map((o) => o.kind), ['stored', 'stored']);
    t.is(broker.accepted, 1);
    t.deepEqual(broker.connects, [{ method: 'token', data: 'eyJ.token' }]);
    await Promise.all(shards.map((p) => p.close()));
  } finally {
    await broker.stop();
  }
});

test('with pulsar-client, PULSAR_AUTH_TOKEN becomes its AuthenticationToken and PULSAR_TLS_CA_FILE its trusted certificates', async (t) => {
  const module = fakePulsarModule(new FakeBroker());
  const config = testConfig({ PULSAR_URL: 'pulsar+ssl://b:6651', PULSAR_AUTH_TOKEN: 'eyJ.token', PULSAR_TLS_CA_FILE: TLS_CERT_PATH });
  const producer = (await chooseTransportFactory(config, pino({ level: 'silent' }), { pulsarModule: () => Promise.resolve(module) })).create('x');
  t.deepEqual((await producer.publish([ONE_EVENT])).map((o) => o.kind), ['stored']);
  const client = module.clients[0]!.config;
  t.deepEqual(client.authentication, new module.AuthenticationToken!({ token: 'eyJ.token' }));
  t.is(client.tlsTrustCertsFilePath, TLS_CERT_PATH);
  await producer.close();
});

/** A TLS server's options that ask each client for a certificate, and accept only one the test certificate vouches for. */
const CLIENT_CERTIFICATE_REQUIRED = { ...tlsFiles, requestCert: true, rejectUnauthorized: true, ca: tlsFiles.cert };
/** The settings that present the test certificate as the relay's client certificate. */
const CLIENT_CERTIFICATE = { PULSAR_TLS_CA_FILE: TLS_CERT_PATH, PULSAR_TLS_CERT_FILE: TLS_CERT_PATH, PULSAR_TLS_KEY_FILE: TLS_KEY_PATH };

/** Publishes ONE_EVENT through the WebSocket transport the configuration gives, to a stand-in broker serving wss:// with the test certificate. */
async function publishOverWss(
  settings: Record<string, string>,
  server: Parameters<FakeWebSocketBroker['start']>[1] = tlsFiles,
): Promise<Awaited<ReturnType<EventTransport['publish']>>> {
  const broker = new FakeWebSocketBroker();
  await broker.start(0, server);
  try {
    const config = testConfig({ PULSAR_URL: 'pulsar://127.0.0.1:6650', PULSAR_WEB_URL: broker.url, PULSAR_TRANSPORT: 'websocket', ...settings });
    const producer = (await chooseTransportFactory(config, pino({ level: 'silent' }))).create('x');
    const outcomes = await producer.publish([ONE_EVENT]);
    await producer.close();
    return outcomes;
  } finally {
    await broker.stop();
  }
}

test("over a wss:// web service, PULSAR_TLS_CA_FILE makes the broker's certificate trusted", async (t) => {
  t.deepEqual((await publishOverWss({ PULSAR_TLS_CA_FILE: TLS_CERT_PATH })).map((o) => o.kind), ['stored']);
});

test("over a wss:// web service, without PULSAR_TLS_CA_FILE a certificate the system does not trust is refused", async (t) => {
  const [outcome] = await publishOverWss({});
  t.is(outcome?.kind, 'unavailable');
  t.regex(outcome?.kind === 'unavailable' ? outcome.error : '', /self-signed certificate/);
});

test('over a wss:// web service that asks for a client certificate, PULSAR_TLS_CERT_FILE and PULSAR_TLS_KEY_FILE present one', async (t) => {
  t.deepEqual((await publishOverWss(CLIENT_CERTIFICATE, CLIENT_CERTIFICATE_REQUIRED)).map((o) => o.kind), ['stored']);
});

test('over a wss:// web service that asks for a client certificate, none given, the handshake is refused', async (t) => {
  t.deepEqual((await publishOverWss({ PULSAR_TLS_CA_FILE: TLS_CERT_PATH }, CLIENT_CERTIFICATE_REQUIRED)).map((o) => o.kind), ['unavailable']);
});

/** What the stand-in binary broker, asking for a client certificate, saw of a publish made with `settings`. */
async function publishOverBinaryTls(settings: Record<string, string>): Promise<{ kinds: string[]; connects: FakeBinaryBroker['connects'] }> {
  const broker = new FakeBinaryBroker();
  await broker.start(CLIENT_CERTIFICATE_REQUIRED);
  try {
    const config = testConfig({ PULSAR_URL: broker.url, PULSAR_TRANSPORT: 'binary', ...settings });
    const producer = (await chooseTransportFactory(config, pino({ level: 'silent' }))).create('x');
    const kinds = (await producer.publish([ONE_EVENT])).map((o) => o.kind);
    await producer.close();
    return { kinds, connects: broker.connects };
  } finally {
    await broker.stop();
  }
}

test('the binary transport presents PULSAR_TLS_CERT_FILE in the TLS handshake and, without a token, names the method tls', async (t) => {
  t.deepEqual(await publishOverBinaryTls(CLIENT_CERTIFICATE), { kinds: ['stored'], connects: [{ method: 'tls', data: undefined }] });
});

test('the binary transport to a broker that asks for a client certificate, none given, is refused in the handshake', async (t) => {
  t.deepEqual(await publishOverBinaryTls({ PULSAR_TLS_CA_FILE: TLS_CERT_PATH }), { kinds: ['unavailable'], connects: [] });
});

test('a client certificate without its key, or a key without its certificate, is refused at start', (t) => {
  t.throws(() => loadConfig({ PULSAR_TLS_CERT_FILE: TLS_CERT_PATH }), { message: /PULSAR_TLS_KEY_FILE: a client certificate needs both/ });
  t.throws(() => loadConfig({ PULSAR_TLS_KEY_FILE: TLS_KEY_PATH }), { message: /PULSAR_TLS_CERT_FILE: a client certificate needs both/ });
});

test('with pulsar-client and no token, PULSAR_TLS_CERT_FILE and PULSAR_TLS_KEY_FILE become its AuthenticationTls', async (t) => {
  const module = fakePulsarModule(new FakeBroker());
  const config = testConfig({ PULSAR_URL: 'pulsar+ssl://b:6651', ...CLIENT_CERTIFICATE });
  const producer = (await chooseTransportFactory(config, pino({ level: 'silent' }), { pulsarModule: () => Promise.resolve(module) })).create('x');
  t.deepEqual((await producer.publish([ONE_EVENT])).map((o) => o.kind), ['stored']);
  t.deepEqual(module.clients[0]!.config.authentication, new module.AuthenticationTls!({ certificatePath: TLS_CERT_PATH, privateKeyPath: TLS_KEY_PATH }));
  await producer.close();
});

test('PULSAR_TRANSPORT=websocket publishes through the WebSocket API, on port 8085 of the PULSAR_URL host unless PULSAR_WEB_URL says', async (t) => {
  const log = pino({ level: 'silent' });
  const config = testConfig({ PULSAR_URL: 'pulsar://broker.example:6650', PULSAR_TRANSPORT: 'websocket' });
  const transport = (await chooseTransportFactory(config, log)).create('saga-outbox-x');
  t.is(transport.name, 'websocket');
  t.is(transport.target, 'http://broker.example:8085 persistent://public/default/saga-events');
  const given = (
    await chooseTransportFactory(testConfig({ PULSAR_URL: 'pulsar://a:6650', PULSAR_WEB_URL: 'http://b:9000', PULSAR_TRANSPORT: 'websocket' }), log)
  ).create('x');
  t.is(given.target, 'http://b:9000 persistent://public/default/saga-events');
});

test('every event of a saga is published to saga-events in order and marked published', async (t) => {
  const broker = new FakeBroker();
  const role = await env.orchestrator({
    gateway: new ScriptedGateway(),
    pulsarModule: () => Promise.resolve(fakePulsarModule(broker)),
    config: { PULSAR_URL: 'pulsar://fake:6650' },
  });
  const started = await role.orchestrator.startSaga('CREAR_CAMPANA_COMPLETA', seedDatos(), { timeoutMinutos: 30 });
  if (started.kind === 'keyReused') throw new Error('unexpected');
  t.is(await waitForEstado(env, started.sagaId), 'COMPLETADA');

  const rows = await env.query<{ id: string; tipo: string }>(
    'select id, tipo from saga_events where saga_id = $1 order by secuencia',
    [started.sagaId],
  );
  const until = Date.now() + 10_000;
  while (broker.messages.filter((m) => m.message.partitionKey === started.sagaId).length < rows.length) {
    if (Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const mine = broker.messages.filter((m) => m.message.partitionKey === started.sagaId);
  t.true(mine.every((m) => m.topic.endsWith('saga-events')));
  t.deepEqual(mine.map((m) => m.message.properties?.tipo), rows.map((r) => r.tipo));
  const ids = mine.map((m) => m.message.sequenceId ?? -1);
  t.deepEqual(ids, [...ids].sort((a, b) => a - b), 'sequence ids grow along the saga');
  // Marked once the broker acknowledged.
  let unpublished = -1;
  while (unpublished !== 0 && Date.now() < until) {
    const rows = await env.query('select id from saga_events where saga_id = $1 and publicado_en is null', [started.sagaId]);
    unpublished = rows.length;
    if (unpublished !== 0) await new Promise((r) => setTimeout(r, 50));
  }
  t.is(unpublished, 0);
});
