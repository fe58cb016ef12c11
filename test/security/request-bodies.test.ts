// Request bodies are bounded per client and in time (issue 17, point 2): 66
// slow uploads from one address, each declaring 1 MB and sending a byte every
// 8 s, held the whole body budget, and every other client's POST was a 503
// for as long as they liked. Now each client holds at most its share of the
// budget (BODY_BUDGET_PER_CLIENT_MB; past it, 429) and each body must arrive
// within BODY_READ_TIMEOUT_MS (past it, 408 and the connection closed).
import { request } from 'node:http';
import test from 'ava';
import { BodyBudget } from '../../src/http/body.js';
import { loadConfig } from '../../src/config.js';
import { seedRequest } from '../fixtures/requests.js';
import { useTestEnv } from '../helpers/system.js';
import { waitUntil } from '../helpers/wait.js';

const env = useTestEnv(test);
const MB = 1024 * 1024;
// 8 MB in all, 2 MB per client; a body has 3 s to arrive.
const budget = new BodyBudget(8 * MB, { perClientBytes: 2 * MB, readTimeoutMs: 3_000 });
let bff = '';

test.before(async () => {
  bff = (await env.bff({ bodyBudget: budget })).urls.bff!;
});

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: { error: string };
}

/**
 * A POST from `localAddress` declaring `declared` bytes and sending only the
 * first 100 until `finish` is called (then the rest); or never, as a slow client.
 */
function slowUpload(localAddress: string, declared: number): { answer: Promise<Answer>; finish: () => void } {
  const payload = Buffer.alloc(declared, 0x20);
  payload.write('{"x":1}');
  let finish = () => undefined as void;
  const answer = new Promise<Answer>((resolve, reject) => {
    const req = request(
      `${bff}/saga/crear-campana-completa`,
      { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': declared } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) as { error: string } }));
      },
    );
    req.on('error', (err) => (/EPIPE|ECONNRESET/.test(err.message) ? undefined : reject(err)));
    req.write(payload.subarray(0, 100));
    finish = () => req.end(payload.subarray(100));
  });
  return { answer, finish };
}

const post = (body: unknown) =>
  fetch(`${bff}/saga/crear-campana-completa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** A POST of the seed request from `localAddress` (127.0.0.x is a client of its own). */
function postFrom(localAddress: string): Promise<number> {
  const payload = Buffer.from(JSON.stringify(seedRequest()));
  return new Promise((resolve, reject) => {
    const req = request(
      `${bff}/saga/crear-campana-completa`,
      { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

test.serial('one client\'s slow uploads hold only its share: its next body is a 429, and another client still starts sagas', async (t) => {
  const slow = Array.from({ length: 10 }, () => slowUpload('127.0.0.1', MB));
  // Two fit in the client's 2 MB share; the other eight are refused at once, while those two are still being read.
  await waitUntil(() => budget.refusals.cliente === 8);
  t.is(budget.heldBy('127.0.0.1'), 2 * MB);

  t.is(await postFrom('127.0.0.2'), 200, 'another client is not starved by the slow one');
  for (const u of slow) u.finish();
  const answers = await Promise.all(slow.map((u) => u.answer));
  const refused = answers.filter((a) => a.status === 429);
  t.is(refused.length, 8);
  t.true(refused.every((a) => a.body.error === 'demasiadas_solicitudes' && a.retryAfter === '1'), JSON.stringify(refused));
  t.deepEqual(answers.filter((a) => a.status !== 429).map((a) => a.status), [400, 400], 'finished, the two admitted are read (and refused as no saga)');
  await waitUntil(() => budget.inUse() === 0);
  t.is(await postFrom('127.0.0.1'), 200, 'its share is given back');
});

test.serial('a body that does not arrive within the read deadline is a 408, and its share is given back', async (t) => {
  const upload = slowUpload('127.0.0.3', 10_000);
  const answer = await upload.answer;
  t.is(answer.status, 408);
  t.is(answer.body.error, 'tiempo_agotado');
  t.is(budget.heldBy('127.0.0.3'), 0);
  t.true(budget.refusals.plazo >= 1);
  t.is((await post(seedRequest())).status, 200);
});

test.serial('the bounds are counted in /metrics', async (t) => {
  const metrics = await (await fetch(`${bff}/metrics`)).text();
  t.regex(metrics, /http_bodies_refused_total\{motivo="cliente"\} [1-9]/);
  t.regex(metrics, /http_bodies_refused_total\{motivo="plazo"\} [1-9]/);
  t.regex(metrics, /http_body_bytes_in_use \d+/);
});

test('the bounds are settings, with defaults of 8 MB per client and 10 s to read a body', (t) => {
  const config = loadConfig({});
  t.is(config.BODY_BUDGET_PER_CLIENT_MB, 8);
  t.is(config.BODY_READ_TIMEOUT_MS, 10_000);
  t.is(loadConfig({ BODY_BUDGET_PER_CLIENT_MB: '2', BODY_READ_TIMEOUT_MS: '500' }).BODY_READ_TIMEOUT_MS, 500);
});
