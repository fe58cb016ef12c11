// What a participant's HTTP answer means to a saga: the gateway turns each
// status into ok, rejected (a business refusal: nothing happened) or transient
// (retried within the call's budget). Answers about our own configuration
// (401, 403, 407, a redirect) are not business refusals: an undo must never be
// given up because a credential expired or a URL moved.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { httpGateway } from '../src/gateway/participant-gateway.js';

/** A participant that answers a call to /status/{code} with that code. */
const server = http.createServer((req, res) => {
  const code = Number(req.url?.split('/').at(-1));
  res.statusCode = code;
  if (code >= 300 && code < 400) res.setHeader('location', '/elsewhere');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ detalle: `respuesta ${code}`, clave: req.headers['idempotency-key'] ?? null }));
});

test.before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
test.after.always(() => {
  server.close();
});

const answerTo = async (status: number) => {
  const { port } = server.address() as AddressInfo;
  const gateway = httpGateway({ servicio: `http://127.0.0.1:${port}` });
  return gateway.call({ participant: 'servicio', method: 'POST', path: `/status/${status}`, body: {} }, { idempotencyKey: 'k-1', timeoutMs: 2_000 });
};

test('a 2xx is the call done, with the participant answer as its result', async (t) => {
  t.like(await answerTo(201), { kind: 'ok', status: 201, resultado: { clave: 'k-1' } });
});

test('a business 4xx is a refusal that had no effect', async (t) => {
  for (const status of [400, 404, 422]) t.like(await answerTo(status), { kind: 'rejected', status }, String(status));
});

test('5xx and the "try again" 4xx answers are transient', async (t) => {
  for (const status of [500, 502, 503, 408, 409, 425, 429]) t.like(await answerTo(status), { kind: 'transient' }, String(status));
});

test('401, 403 and 407 are our credentials, not the participant business: transient, and the error says so', async (t) => {
  for (const status of [401, 403, 407]) {
    const outcome = await answerTo(status);
    t.is(outcome.kind, 'transient', String(status));
    if (outcome.kind === 'transient') t.regex(outcome.error, /configuración o credenciales del orquestador/);
  }
});

test('a redirect is a moved URL in our settings: transient, not followed and not a refusal', async (t) => {
  for (const status of [301, 302, 307, 308]) t.like(await answerTo(status), { kind: 'transient' }, String(status));
});

test('a participant that cannot be reached is transient', async (t) => {
  const gateway = httpGateway({ servicio: 'http://127.0.0.1:1' });
  t.like(await gateway.call({ participant: 'servicio', method: 'POST', path: '/x' }, { idempotencyKey: 'k', timeoutMs: 1_000 }), { kind: 'transient' });
});
