// Server-sent-event streams are bounded (issue 17, point 2): one client opened
// 3,000 streams on one saga, /health went from 2 to 60-110 ms and the memory
// was not given back. Now a client holds at most SSE_MAX_PER_CLIENT (429 past
// it) and the process SSE_MAX_TOTAL (503 past it), both with Retry-After, and
// a closed stream gives back its slot, its subscription and its timer.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import test from 'ava';
import { jsonErrors } from '../../src/http/errors.js';
import { listen } from '../../src/http/server.js';
import { mountSagaStream, StreamLimits } from '../../src/http/sse.js';
import { seedRequest } from '../fixtures/requests.js';
import { startCampaign } from '../helpers/sagas.js';
import { useTestEnv } from '../helpers/system.js';
import { waitUntil } from '../helpers/wait.js';

const env = useTestEnv(test);
let bff = '';
let sagaId = '';

test.before(async () => {
  bff = (await env.bff({ config: { SSE_MAX_PER_CLIENT: '3', SSE_MAX_TOTAL: '5' } })).urls.bff!;
  sagaId = await startCampaign(bff, seedRequest());
});

interface Stream {
  status: number;
  retryAfter: string | undefined;
  body: string;
  res: IncomingMessage;
  req: ClientRequest;
}

/** Opens the saga's stream from `localAddress` (each 127.0.0.x is a client of its own); resolves on the answer's headers. */
function openStream(base: string, id: string, localAddress: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/saga/${id}/stream`, { localAddress }, (res) => {
      const stream: Stream = { status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: '', res, req };
      if (stream.status === 200) return resolve(stream);
      res.on('data', (c: Buffer) => (stream.body += c.toString()));
      res.on('end', () => resolve(stream));
    });
    req.on('error', reject);
    req.end();
  });
}

const gauge = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${bff}/metrics`)).text())?.[1]);

test.serial('a client past its streams gets 429, the process past its total 503, both with Retry-After; closed streams give their slots back', async (t) => {
  const mine = await Promise.all([1, 2, 3].map(() => openStream(bff, sagaId, '127.0.0.1')));
  t.deepEqual(mine.map((s) => s.status), [200, 200, 200]);
  const fourth = await openStream(bff, sagaId, '127.0.0.1');
  t.is(fourth.status, 429);
  t.is(fourth.retryAfter, '5');
  t.is((JSON.parse(fourth.body) as { error: string }).error, 'demasiadas_conexiones');

  const others = await Promise.all([1, 2].map(() => openStream(bff, sagaId, '127.0.0.2')));
  t.deepEqual(others.map((s) => s.status), [200, 200]);
  const sixth = await openStream(bff, sagaId, '127.0.0.3');
  t.is(sixth.status, 503, 'five streams are the whole process\'s');
  t.is(sixth.retryAfter, '5');
  t.is(await gauge('sse_streams_open'), 5);

  for (const s of [...mine, ...others]) s.req.destroy();
  await waitUntil(async () => (await gauge('sse_streams_open')) === 0);
  const again = await openStream(bff, sagaId, '127.0.0.1');
  t.is(again.status, 200, 'the slots were given back');
  again.req.destroy();
  const metrics = await (await fetch(`${bff}/metrics`)).text();
  t.regex(metrics, /sse_streams_refused_total\{motivo="cliente"\} 1/);
  t.regex(metrics, /sse_streams_refused_total\{motivo="total"\} 1/);
});

test.serial('a closed stream keeps nothing: no slot, no subscription to the saga, no live watch, no heartbeat timer', async (t) => {
  // The route alone, over a saga that always exists and a change feed that counts its subscribers and watches.
  let subscribers = 0;
  let watches = 0;
  const changes = {
    subscribe: () => {
      subscribers += 1;
      return () => void (subscribers -= 1);
    },
    watch: () => {
      watches += 1;
      return Promise.resolve(() => void (watches -= 1));
    },
  };
  const limits = new StreamLimits(100, 100);
  const router = new Router();
  mountSagaStream(router, () => async (_ctx, next) => {
    await next();
  }, {
    queries: { status: () => Promise.resolve({ estado: 'EN_CURSO' } as never) },
    changes,
    limits,
    heartbeatMs: 5,
  });
  const app = new Koa();
  app.use(jsonErrors(env.log));
  app.use(router.routes());
  const server = await listen(app, 0);
  t.teardown(() => server.close());

  const id = '00000000-0000-4000-8000-000000000001';
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const streams = await Promise.all(Array.from({ length: 50 }, () => openStream(server.url, id, '127.0.0.1')));
  t.is(limits.count(), 50);
  t.is(subscribers, 50);
  await waitUntil(() => watches === 50);
  t.true(timers() >= before + 50, 'a heartbeat timer per stream');
  for (const s of streams) s.req.destroy();
  await waitUntil(() => limits.count() === 0 && subscribers === 0 && watches === 0);
  t.is(limits.clients(), 0);
  t.true(timers() < before + 50, `the heartbeat timers are gone (${timers()} timers, ${before} before)`);
});
