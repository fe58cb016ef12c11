// Hostile input, each reproduced against the BFF: none may answer 5xx, and
// none may write anything.
import test from 'ava';
import { request } from 'node:http';
import { BodyBudget } from '../src/http/body.js';
import { seedRequest } from './fixtures/requests.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let bff = '';
let app = '';
const budget = new BodyBudget(8 * 1024 * 1024);

test.before(async () => {
  const participants = await env.participants();
  app = participants.urls.pagos!;
  await env.orchestrator({ participantEnv: participants.participantEnv });
  // A small budget of bodies read at once, so that this test's flood passes it.
  bff = (await env.bff({ bodyBudget: budget })).urls.bff!;
});

async function send(method: string, path: string, body?: string, contentType = 'application/json') {
  const res = await fetch(`${bff}${path}`, { method, headers: { 'content-type': contentType }, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as { error: string; detalle: unknown }, headers: res.headers };
}

const sagas = async () => Number((await env.query<{ n: string }>('select count(*) as n from saga_log'))[0]!.n);

/** `mutate` applied to the seed request, sent as JSON text as a client would. */
const withBody = (mutate: (b: ReturnType<typeof seedRequest>) => void) => {
  const b = seedRequest();
  mutate(b);
  return JSON.stringify(b);
};

for (const [name, text, campo] of [
  ['a NUL in a string', withBody((b) => (b.campana.nombre = 'Campa\u0000ña')), 'campana.nombre'],
  ['a lone surrogate', withBody((b) => (b.pago.referencia_pago = 'ref\ud800')), 'pago.referencia_pago'],
  ['a NUL deep in filtros', withBody((b) => (b.reporte.filtros = { a: ['x', 'y\u0000'] })), 'reporte.filtros.a.1'],
  ['a NUL in a key', withBody((b) => (b.reporte.filtros = { 'k\u0000': 1 })), 'reporte.filtros.k\u0000'],
] as const) {
  test.serial(`${name} is a 400 naming the field, and writes nothing`, async (t) => {
    const before = await sagas();
    const res = await send('POST', '/saga/crear-campana-completa', text);
    t.is(res.status, 400);
    t.like(res.body, { error: 'validacion' });
    t.true((res.body.detalle as { campo: string }[]).some((d) => d.campo === campo), JSON.stringify(res.body.detalle));
    t.is(await sagas(), before);
  });
}

test.serial('a timeout_minutos of 5e9 is a 400 (the deadline would overflow a timestamp)', async (t) => {
  const res = await send('POST', '/saga/crear-campana-completa', JSON.stringify({ ...seedRequest(), timeout_minutos: 5e9 }));
  t.is(res.status, 400);
  t.like(res.body, { detalle: [{ campo: 'timeout_minutos' }] });
});

test.serial('a NUL in a query parameter is a 400, not a 500', async (t) => {
  const res = await send('GET', '/saga/?tipo=a%00b');
  t.is(res.status, 400);
  t.like(res.body, { error: 'validacion', detalle: [{ campo: 'tipo' }] });
});

test.serial('JSON nested 4,100 levels deep is a 400, not a stack overflow', async (t) => {
  const deep = '['.repeat(4_100) + ']'.repeat(4_100);
  const text = JSON.stringify({ ...seedRequest(), reporte: { tipo_reporte: 'x', filtros: { f: 0 } } }).replace('{"f":0}', `{"f":${deep}}`);
  const before = await sagas();
  const res = await send('POST', '/saga/crear-campana-completa', text);
  t.is(res.status, 400);
  t.like(res.body, { error: 'json_invalido' });
  t.is(await sagas(), before);
});

test.serial('a body that is not application/json is a 415 and starts nothing (no cross-site form POST)', async (t) => {
  const before = await sagas();
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const res = await send('POST', '/saga/crear-campana-completa', JSON.stringify(seedRequest()), type);
    t.is(res.status, 415, type);
    t.like(res.body, { error: 'tipo_de_contenido_no_soportado' });
  }
  t.is(await sagas(), before);
  const faults = await fetch(`${app}/__faults`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"route":"POST /pagos","status":503}' });
  t.is(faults.status, 415, 'fault rules cannot be set by a plain cross-site POST either');
});

test.serial('amounts are money: at least 0.01, at most two decimals; the participant still checks its maximum', async (t) => {
  for (const monto of [1e-320, 0, 0.001, 1e13]) {
    const res = await send('POST', '/saga/crear-campana-completa', withBody((b) => (b.pago.monto = monto)));
    t.is(res.status, 400, String(monto));
    t.like(res.body, { detalle: [{ campo: 'pago.monto' }] });
  }
  t.is((await send('POST', '/saga/crear-campana-completa', withBody((b) => (b.pago.monto = 19.99)))).status, 200);
});

/**
 * POSTs `body` as a slow client would: the headers and a first chunk at once,
 * the rest after `holdMs`, so that every request is being read at the same time.
 */
function slowPost(path: string, body: string, holdMs: number): Promise<{ status: number; retryAfter: string | undefined; body: { error: string; detalle: unknown } }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(body);
    const req = request(`${bff}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': payload.length } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) as { error: string; detalle: unknown } }));
    });
    req.on('error', (err) => (err.message.includes('EPIPE') || err.message.includes('ECONNRESET') ? undefined : reject(err)));
    req.write(payload.subarray(0, 1_000));
    setTimeout(() => req.end(payload.subarray(1_000)), holdMs);
  });
}

test.serial('250 parallel 1 MB bodies are bounded: past the budget they wait outside (503 with Retry-After), none is a 500', async (t) => {
  const big = withBody((b) => (b.reporte.filtros = { relleno: 'x'.repeat(1_000_000) }));
  const before = await sagas();
  const answers = await Promise.all(Array.from({ length: 250 }, () => slowPost('/saga/crear-campana-completa', big, 4_000)));
  const statuses = new Map<number, number>();
  for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  t.log('answers by status', Object.fromEntries(statuses));
  t.true([...statuses.keys()].every((s) => s === 400 || s === 503), JSON.stringify(Object.fromEntries(statuses)));
  t.log('peak bytes of bodies held at once', budget.peak());
  // The budget's own peak can never pass its limit (take() refuses first): count what the BFF read instead.
  // Every request is held open 4 s after its first chunk, so the bodies it read in full (the 400s) were all
  // held at once: they must fit in the 8 MB budget, and they must have filled it to within one body.
  const readInFull = statuses.get(400) ?? 0;
  t.true(readInFull * big.length <= 8 * 1024 * 1024, `${readInFull} bodies of ${big.length} bytes were read at once: more than the 8 MB budget holds`);
  t.true(budget.peak() > 8 * 1024 * 1024 - big.length, `the flood filled the BFF's budget (peak ${budget.peak()} bytes)`);
  t.true((statuses.get(503) ?? 0) >= 200, 'most were refused at once');
  t.is(statuses.get(503), budget.refused);
  t.true(answers.filter((a) => a.status === 503).every((a) => a.retryAfter === '1' && a.body.error === 'sobrecargado'));
  const refused = answers.filter((a) => a.status === 400);
  t.true(refused.length >= 1, 'the bodies the budget holds are read and judged on their content, not all turned away');
  t.true(refused.every((a) => JSON.stringify(a.body.detalle).includes('reporte.filtros')), JSON.stringify(refused.map((a) => a.body)));
  t.is(await sagas(), before);
});

test.serial('the body budget never holds more than its limit, and counts what it refused', (t) => {
  const budget = new BodyBudget(3_000);
  t.true(budget.take(1_000));
  t.true(budget.take(2_000));
  t.false(budget.take(1), 'full');
  budget.give(1_000);
  t.true(budget.take(500));
  t.is(budget.peak(), 3_000);
  t.is(budget.refused, 1);
});
