// Hostile input, each reproduced against the BFF: none may answer 5xx, and
// none may write anything.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { BodyBudget } from '../src/http/body.js';
import { createToken } from '../src/operator/tokens.js';
import { createPool } from '../src/persistence/pool.js';
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

// Issue 17, point 1: every input a 4xx, never a 5xx.

/** Dates JavaScript parses but PostgreSQL's timestamptz cannot hold (or read back as written). */
const OUT_OF_RANGE_DATES = ['-271821-04-20T00:00:00Z', '-005000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z'];

async function operatorToken(): Promise<string> {
  const pool = createPool(env.databaseUrl, 1, env.log);
  try {
    return await createToken(pool, `hostil-${randomUUID()}`, 'operador');
  } finally {
    await pool.end();
  }
}

for (const campo of ['desde', 'hasta'] as const) {
  test.serial(`a ${campo} PostgreSQL cannot hold is a 400 naming it, on the list and on /estadisticas`, async (t) => {
    for (const date of OUT_OF_RANGE_DATES) {
      for (const path of ['/saga/', '/estadisticas']) {
        const res = await send('GET', `${path}?${campo}=${encodeURIComponent(date)}`);
        t.is(res.status, 400, `${path} ${campo}=${date}`);
        t.like(res.body, { error: 'validacion', detalle: [{ campo }] }, `${path} ${campo}=${date}`);
      }
    }
  });

  test.serial(`a ${campo} PostgreSQL cannot hold in a bulk filter is a 400 naming it`, async (t) => {
    const token = await operatorToken();
    for (const date of OUT_OF_RANGE_DATES) {
      const res = await fetch(`${bff}/saga/lote/cancelar`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ motivo: 'prueba', dry_run: true, filtro: { [campo]: date } }),
      });
      const body = (await res.json()) as { error: string; detalle: { campo: string }[] };
      t.is(res.status, 400, date);
      t.like(body, { error: 'validacion' });
      t.true(body.detalle.some((d) => d.campo === `filtro.${campo}`), JSON.stringify(body.detalle));
    }
  });
}

/** `n` random characters of the CJK Unified Ideographs block: 3 bytes each in UTF-8. */
const cjk = (n: number) => Array.from({ length: n }, () => String.fromCodePoint(0x4e00 + Math.floor(Math.random() * 20_000))).join('');

test.serial('a search key of 1,000 CJK characters (3,000 bytes) starts the saga, and the list finds it by that key', async (t) => {
  const afiliado = cjk(1_000);
  const res = await send('POST', '/saga/crear-campana-completa', withBody((b) => (b.campana.id_afiliado = afiliado)));
  t.is(res.status, 200, JSON.stringify(res.body));
  const id = (res.body as unknown as { saga_id: string }).saga_id;
  const list = await fetch(`${bff}/saga/?id_afiliado=${encodeURIComponent(afiliado)}`);
  t.is(list.status, 200);
  const page = (await list.json()) as { total: number; sagas: { saga_id: string }[] };
  t.deepEqual(page.sagas.map((s) => s.saga_id), [id]);
});

test.serial('a JSON body declared in another charset is a 415 and starts nothing', async (t) => {
  const before = await sagas();
  for (const type of ['application/json; charset=iso-8859-1', 'application/json; charset="windows-1252"', 'application/json;charset=utf-16']) {
    const res = await send('POST', '/saga/crear-campana-completa', JSON.stringify(seedRequest()), type);
    t.is(res.status, 415, type);
    t.like(res.body, { error: 'tipo_de_contenido_no_soportado' });
  }
  for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"']) {
    t.is((await send('POST', '/saga/crear-campana-completa', JSON.stringify(seedRequest()), type)).status, 200, type);
  }
  t.is(await sagas(), before + 2);
});

test.serial('a body that is not valid UTF-8 is a 400 and starts nothing', async (t) => {
  const before = await sagas();
  const latin1 = Buffer.from(withBody((b) => (b.campana.nombre = 'Campaña')), 'latin1');
  const res = await fetch(`${bff}/saga/crear-campana-completa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: latin1 });
  t.is(res.status, 400);
  t.like(await res.json(), { error: 'json_invalido' });
  t.is(await sagas(), before);
});

test.serial('every string a client sends has a maximum length in the OpenAPI document', async (t) => {
  const doc = (await (await fetch(`${bff}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { parameters?: { name: string; schema: unknown }[]; requestBody?: { content: Record<string, { schema: unknown }> } }>>;
  };
  const unbounded: string[] = [];
  const walk = (schema: unknown, at: string): void => {
    if (schema === null || typeof schema !== 'object') return;
    const s = schema as Record<string, unknown>;
    if (s.type === 'string' && s.maxLength === undefined && s.enum === undefined && s.const === undefined) unbounded.push(at);
    for (const [k, v] of Object.entries(s)) {
      if (k === 'properties') for (const [p, ps] of Object.entries(v as Record<string, unknown>)) walk(ps, `${at}.${p}`);
      else if (typeof v === 'object') walk(v, `${at}/${k}`);
    }
  };
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const p of op.parameters ?? []) walk(p.schema, `${method.toUpperCase()} ${path} ${p.name}`);
      for (const [type, c] of Object.entries(op.requestBody?.content ?? {})) walk(c.schema, `${method.toUpperCase()} ${path} ${type}`);
    }
  }
  t.deepEqual(unbounded, []);
});
