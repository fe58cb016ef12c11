// A broker with TLS and token authentication: a Pulsar standalone of its own, started
// here with the test certificate (test/fixtures/tls) and a secret key made for the run.
// The relay's transport of this run (PULSAR_TEST_TRANSPORT) presents the token: the
// binary protocol over TLS to pulsar+ssl://, the WebSocket API as a bearer token. The
// broker refuses a token it did not sign, and Apache's Python client reads the events
// back over pulsar+ssl:// with the token.
import test from 'ava';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { binaryTransport } from '../../src/events/binary-transport.js';
import type { EventTransport, OutboxMessage } from '../../src/events/transport.js';
import { websocketTransport } from '../../src/events/websocket-transport.js';
import { freePort } from '../../src/http/server.js';
import { readOverBinaryProtocol } from '../../scripts/pulsar/binary-reader.js';
import { resolveClasspath, startStandalone, type RunningStandalone } from '../../scripts/pulsar/standalone.js';
import { brokerUnderTest, uniqueTopic } from '../helpers/pulsar-broker.js';
import { TLS_CERT_PATH, TLS_KEY_PATH, tlsFiles } from '../fixtures/tls-certificate.js';

const log = pino({ level: 'silent' });
const { python, transport } = brokerUnderTest();

/** A token as Pulsar's `tokens create` makes it: a JWT signed with HS256, its subject the role. */
function signedToken(subject: string, secret: Buffer): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256' })}.${part({ sub: subject })}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

const secret = randomBytes(32);
const relayToken = signedToken('relay', secret);
let broker: RunningStandalone | undefined;
let tlsUrl = '';
const dataDir = mkdtempSync(path.join(tmpdir(), 'saga-pulsar-secured-'));

test.before(async () => {
  const tlsPort = await freePort();
  const adminToken = signedToken('admin', secret);
  broker = await startStandalone(
    {
      dataDir,
      brokerPort: await freePort(),
      webPort: await freePort(),
      bookiePort: await freePort(),
      adminToken,
      settings: {
        authenticationEnabled: 'true',
        // Tokens, and client certificates signed by the test certificate (their role is the certificate's CN).
        authenticationProviders:
          'org.apache.pulsar.broker.authentication.AuthenticationProviderToken,org.apache.pulsar.broker.authentication.AuthenticationProviderTls',
        tlsTrustCertsFilePath: TLS_CERT_PATH,
        tokenSecretKey: `data:;base64,${secret.toString('base64')}`,
        superUserRoles: 'admin',
        // The broker's own clients (the WebSocket API's, its admin's) authenticate too.
        brokerClientAuthenticationPlugin: 'org.apache.pulsar.client.impl.auth.AuthenticationToken',
        brokerClientAuthenticationParameters: `token:${adminToken}`,
        brokerServicePortTls: String(tlsPort),
        tlsCertificateFilePath: TLS_CERT_PATH,
        tlsKeyFilePath: TLS_KEY_PATH,
      },
    },
    resolveClasspath(() => undefined),
  );
  tlsUrl = `pulsar+ssl://127.0.0.1:${tlsPort}`;
});

test.after.always(async () => {
  await broker?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** This run's transport to the secured broker, presenting `token`. */
function producer(topic: string, token: string): EventTransport {
  const producerName = `secured-${randomUUID().slice(0, 8)}`;
  return transport === 'binary'
    ? binaryTransport({ serviceUrl: tlsUrl, topic, producerName, log, authToken: token, tlsCa: tlsFiles.cert })
    : websocketTransport({ webUrl: broker!.webUrl, topic, producerName, log, authToken: token });
}

/** Events of one saga, numbered 1..n, as the relay sends them. */
function events(sagaId: string, n: number): OutboxMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    sequenceId: i + 1,
    key: sagaId,
    payload: Buffer.from(JSON.stringify({ saga_id: sagaId, secuencia: i + 1, tipo: 'Prueba' })),
    properties: {},
    eventTime: Date.now(),
  }));
}

test(`with the broker's token, the ${transport} transport's events are stored, and Apache's client reads them back over pulsar+ssl://`, async (t) => {
  const topic = uniqueTopic('secured');
  const sagaId = randomUUID();
  const relay = producer(topic, relayToken);
  const outcomes = await relay.publish(events(sagaId, 5));
  await relay.close();
  t.deepEqual(
    outcomes.map((o) => o.kind),
    Array(5).fill('stored'),
  );
  const report = await readOverBinaryProtocol(python, tlsUrl, topic, new Map([[sagaId, [1, 2, 3, 4, 5]]]), {
    token: relayToken,
    tlsCa: TLS_CERT_PATH,
    timeoutS: 30,
  });
  t.log(`read over ${tlsUrl} by Apache's Python client with the token: ${report.read} events, ${report.duplicates} copies`);
  t.is(report.exitCode, 0, JSON.stringify(report));
});

test(`a token the broker did not sign is refused: the ${transport} transport stores nothing, and says why`, async (t) => {
  const relay = producer(uniqueTopic('secured'), signedToken('relay', randomBytes(32)));
  const outcomes = await relay.publish(events(randomUUID(), 1));
  await relay.close();
  t.deepEqual(
    outcomes.map((o) => o.kind),
    ['unavailable'],
  );
  const error = outcomes[0]?.kind === 'unavailable' ? outcomes[0].error : '';
  t.log(error);
  t.regex(error, transport === 'binary' ? /AuthenticationError/ : /401/);
});

// A client certificate is presented in the TLS handshake of pulsar+ssl://, which only the binary transport speaks here
// (this broker's web service, for the WebSocket API, is plain HTTP).
const binaryOnly = transport === 'binary' ? test : test.skip;

binaryOnly('with a client certificate the broker trusts and no token, the binary transport is let in and its events are stored', async (t) => {
  const relay = binaryTransport({ serviceUrl: tlsUrl, topic: uniqueTopic('secured'), producerName: `mtls-${randomUUID().slice(0, 8)}`, log, tlsCa: tlsFiles.cert, tlsCert: tlsFiles });
  const outcomes = await relay.publish(events(randomUUID(), 3));
  await relay.close();
  t.deepEqual(
    outcomes.map((o) => o.kind),
    Array(3).fill('stored'),
  );
});

binaryOnly('with neither a token nor a client certificate, the binary transport is refused', async (t) => {
  const relay = binaryTransport({ serviceUrl: tlsUrl, topic: uniqueTopic('secured'), producerName: `none-${randomUUID().slice(0, 8)}`, log, tlsCa: tlsFiles.cert });
  const outcomes = await relay.publish(events(randomUUID(), 1));
  await relay.close();
  t.deepEqual(
    outcomes.map((o) => o.kind),
    ['unavailable'],
  );
  t.regex(outcomes[0]?.kind === 'unavailable' ? outcomes[0].error : '', /AuthenticationError|authenticat/i);
});
