// A participant's answer is bounded (issue 17, point 2): one over
// PARTICIPANT_ANSWER_MAX_BYTES or PARTICIPANT_ANSWER_MAX_DEPTH is not read
// further, never stored, and is that call's failure. A 600 MB answer crashed
// the orchestrator (ERR_STRING_TOO_LONG), a 20 MB one was stored and served in
// every list page, and one nested 100,000 levels deep was retried for ever.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { httpGateway } from '../../src/gateway/participant-gateway.js';
import { seedRequest } from '../fixtures/requests.js';
import { pasos, startCampaign, waitForEstado } from '../helpers/sagas.js';
import { useTestEnv } from '../helpers/system.js';

const env = useTestEnv(test);

/**
 * A participant whose answer is given by the path: /sin-fin/{status} sends
 * 64 KB chunks without end and without a length, as a broken or hostile service
 * could; /grande/{status} sends 2 MB with its length; /honda/{status} JSON
 * nested 100,000 levels deep.
 */
const server = http.createServer((req, res) => {
  const [, kind, code] = (req.url ?? '').split('/');
  res.statusCode = Number(code);
  res.setHeader('content-type', 'application/json');
  if (kind === 'sin-fin') {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const more = () => {
      // 2 GB at most, so that a gateway that reads everything fails this test instead of running for ever.
      while (!res.destroyed && sent < 32_768) {
        sent += 1;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    res.write('{"relleno":"');
    more();
  } else if (kind === 'grande') {
    res.end(JSON.stringify({ detalle: 'x'.repeat(2 * 1024 * 1024) }));
  } else {
    res.end('['.repeat(100_000) + ']'.repeat(100_000));
  }
});

let base = '';
test.before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after.always(() => {
  server.closeAllConnections();
  server.close();
});

const call = (gateway: ReturnType<typeof httpGateway>, path: string) =>
  gateway.call({ participant: 'servicio', method: 'POST', path, body: {} }, { idempotencyKey: 'k-1', timeoutMs: 20_000 });

test('an endless 2xx answer is cut at the cap: the call failed and may have acted (transient), and it is counted', async (t) => {
  const gateway = httpGateway({ servicio: base });
  const outcome = await call(gateway, '/sin-fin/200');
  t.is(outcome.kind, 'transient');
  if (outcome.kind === 'transient') t.regex(outcome.error, /HTTP 200: respuesta demasiado grande \(más de 1048576 bytes\)/);
  t.deepEqual(gateway.refusedAnswers, { tamano: 1, profundidad: 0 });
});

test('a 2 MB 2xx answer declared by its length is refused before it is read', async (t) => {
  const gateway = httpGateway({ servicio: base });
  t.like(await call(gateway, '/grande/201'), { kind: 'transient' });
  t.is(gateway.refusedAnswers.tamano, 1);
});

test('a business refusal (4xx) too large to read is still that refusal, with its real status', async (t) => {
  const gateway = httpGateway({ servicio: base });
  for (const path of ['/grande/422', '/sin-fin/400']) {
    const outcome = await call(gateway, path);
    t.like(outcome, { kind: 'rejected', status: Number(path.split('/')[2]) }, path);
    if (outcome.kind === 'rejected') t.regex(outcome.error, /respuesta demasiado grande/);
  }
});

test('an answer nested deeper than the cap is refused: transient for a 2xx, the refusal for a 4xx', async (t) => {
  const gateway = httpGateway({ servicio: base });
  const ok = await call(gateway, '/honda/200');
  t.is(ok.kind, 'transient');
  if (ok.kind === 'transient') t.regex(ok.error, /anidada más de 64 niveles/);
  t.like(await call(gateway, '/honda/409'), { kind: 'transient' }, 'a "try again" 4xx stays transient');
  t.like(await call(gateway, '/honda/422'), { kind: 'rejected', status: 422 });
  t.deepEqual(gateway.refusedAnswers, { tamano: 0, profundidad: 3 });
});

test('the caps are settings: a smaller PARTICIPANT_ANSWER_MAX_BYTES refuses what the default takes', async (t) => {
  const small = httpGateway({ servicio: base }, undefined, { maxBytes: 1_024, maxDepth: 64 });
  t.like(await call(small, '/honda/422'), { kind: 'rejected', status: 422 });
  t.is(small.refusedAnswers.tamano, 1, '200,000 bytes are over 1 KB');
});

/**
 * Pagos behind a proxy that lets the payment be made, then answers it with
 * 2 MB: the participant acted, and its answer cannot be read.
 */
async function oversizedPayments(pagos: string): Promise<{ url: string; close: () => void }> {
  const proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        const key = req.headers['idempotency-key'];
        if (typeof key === 'string') headers['idempotency-key'] = key;
        const answer = await fetch(`${pagos}${req.url}`, {
          method: req.method!,
          headers,
          ...(chunks.length === 0 ? {} : { body: Buffer.concat(chunks) }),
        });
        const text = await answer.text();
        res.statusCode = answer.status;
        res.setHeader('content-type', 'application/json');
        if (req.method === 'POST' && req.url === '/pagos' && answer.ok) {
          res.end(JSON.stringify({ ...(JSON.parse(text) as object), relleno: 'x'.repeat(2 * 1024 * 1024) }));
        } else res.end(text);
      })();
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    close: () => {
      proxy.closeAllConnections();
      proxy.close();
    },
  };
}

test('a payment answered with 2 MB is compensated: the saga fails, says why, reverts the payment, and stores nothing large', async (t) => {
  const participants = await env.participants();
  const proxy = await oversizedPayments(participants.urls.pagos!);
  t.teardown(proxy.close);
  const orchestrator = await env.orchestrator({ participantEnv: { ...participants.participantEnv, PAGOS_URL: proxy.url } });
  const base = orchestrator.urls.orchestrator!;
  const id = await startCampaign(base, seedRequest());
  t.is(await waitForEstado(env, id, ['COMPENSADA', 'COMPENSACION_FALLIDA', 'COMPLETADA'], 30_000), 'COMPENSADA');

  const pago = (await pasos(env, id)).find((p) => p.tipo === 'PROCESAR_PAGO');
  t.false(pago?.exitoso);
  t.regex(pago?.error ?? '', /respuesta demasiado grande/);
  const undo = await pasos(env, id, 'saga_compensaciones');
  t.true(undo.some((c) => c.tipo === 'REVERTIR_PAGO' && c.exitoso), 'the payment the participant made is reverted');

  const status = await fetch(`${base}/saga/${id}/status`);
  t.true((await status.text()).length < 100_000, 'the status holds no part of the oversized answer');
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.regex(metrics, /saga_participant_answers_refused_total\{motivo="tamano"\} [1-9]/);
});
