// What the team's web front end needs from the BFF: it is a static page on
// another origin (localhost:3000, or an editor's live server on 5500) that
// calls the BFF with fetch, sends the report's dates beside tipo_reporte,
// shows `result.detail` on an error, and sends empty query parameters.
import test from 'ava';
import { loadConfig } from '../src/config.js';
import { derivedUuid } from '../src/saga/ids.js';
import { seedRequest } from './fixtures/requests.js';
import { waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let bff = '';
let reporting = '';

test.before(async () => {
  const participants = await env.participants();
  reporting = participants.urls.reporting!;
  await env.orchestrator({ participantEnv: participants.participantEnv });
  bff = (await env.bff()).urls.bff!;
});

const FRONT_END_ORIGINS = ['http://localhost:3000', 'http://127.0.0.1:3000', 'http://localhost:5500', 'http://127.0.0.1:5500'];

/** The front end's create body: report dates at the top of `reporte`, no filtros, no timeout. */
function frontEndBody() {
  const { campana, pago } = seedRequest();
  return {
    campana,
    pago,
    reporte: { fecha_inicio: '2025-02-01', fecha_fin: '2025-02-28', tipo_reporte: 'metricas_generales' },
  };
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

test('the preflight of a JSON POST from the front end origin is allowed, Authorization included', async (t) => {
  const res = await fetch(`${bff}/saga/crear-campana-completa`, {
    method: 'OPTIONS',
    headers: {
      Origin: 'http://localhost:3000',
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type,authorization',
    },
  });
  t.is(res.status, 204);
  t.is(res.headers.get('access-control-allow-origin'), 'http://localhost:3000');
  t.regex(res.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
  const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
  t.true(allowed.includes('content-type') && allowed.includes('authorization'), allowed);
});

test('each of the four local development origins may read answers, and is named, never *', async (t) => {
  for (const origin of FRONT_END_ORIGINS) {
    const res = await fetch(`${bff}/health`, { headers: { Origin: origin } });
    t.is(res.status, 200);
    t.is(res.headers.get('access-control-allow-origin'), origin);
    t.regex(res.headers.get('vary') ?? '', /Origin/i);
  }
});

test('an origin that is not listed gets no CORS header, so its page cannot read the answer', async (t) => {
  const simple = await fetch(`${bff}/health`, { headers: { Origin: 'http://evil.example' } });
  t.is(simple.headers.get('access-control-allow-origin'), null);
  const preflight = await fetch(`${bff}/saga/crear-campana-completa`, {
    method: 'OPTIONS',
    headers: { Origin: 'http://localhost:3001', 'Access-Control-Request-Method': 'POST' },
  });
  t.is(preflight.headers.get('access-control-allow-origin'), null);
});

test('CORS_ORIGINS replaces the default list, and * is refused', (t) => {
  t.deepEqual(loadConfig({}).CORS_ORIGINS, FRONT_END_ORIGINS);
  t.deepEqual(loadConfig({ CORS_ORIGINS: 'https://panel.example.com, http://localhost:8080' }).CORS_ORIGINS, [
    'https://panel.example.com',
    'http://localhost:8080',
  ]);
  t.throws(() => loadConfig({ CORS_ORIGINS: '*' }), { message: /CORS_ORIGINS/ });
});

test('the front end body, dates beside tipo_reporte and no timeout, keeps the dates as the report filters', async (t) => {
  const res = await fetch(`${bff}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: 'http://127.0.0.1:5500' },
    body: JSON.stringify(frontEndBody()),
  });
  t.is(res.status, 200);
  const body = (await res.json()) as { saga_id: string; datos_iniciales: { reporte: Record<string, unknown> } };
  t.deepEqual(body.datos_iniciales.reporte.filtros, { fecha_inicio: '2025-02-01', fecha_fin: '2025-02-28' });
  t.is(await waitForEstado(env, body.saga_id), 'COMPLETADA');
  // What the Reporting service received and stored for this saga's report.
  const report = await fetch(`${reporting}/reporting/${derivedUuid(body.saga_id, 'GENERAR_REPORTE')}`);
  t.deepEqual(((await report.json()) as { filtros: unknown }).filtros, { fecha_inicio: '2025-02-01', fecha_fin: '2025-02-28' });
});

test('filtros given with the request are kept as they are', async (t) => {
  const body = frontEndBody() as ReturnType<typeof frontEndBody> & { reporte: { filtros?: unknown } };
  body.reporte.filtros = { canal: 'web' };
  const res = await fetch(`${bff}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  t.is(res.status, 200);
  t.deepEqual(((await json(res)).datos_iniciales as { reporte: { filtros: unknown } }).reporte.filtros, { canal: 'web' });
});

test('a validation error carries detail, a readable line with the same information as detalle', async (t) => {
  const body = frontEndBody() as unknown as { pago: Record<string, unknown> };
  body.pago.monto = 'mil';
  const res = await fetch(`${bff}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  t.is(res.status, 400);
  const answer = await json(res);
  t.is(answer.error, 'validacion');
  t.deepEqual(answer.detalle, [{ campo: 'pago.monto', mensaje: 'debe ser un número' }]);
  t.is(answer.detail, 'pago.monto: debe ser un número');
});

test('every kind of error body has error, detalle and detail', async (t) => {
  const answers = await Promise.all([
    fetch(`${bff}/saga/crear-campana-completa`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{' }),
    fetch(`${bff}/saga/00000000-0000-4000-8000-000000000000/status`),
    fetch(`${bff}/no-existe`),
  ]);
  for (const res of answers) {
    const body = await json(res);
    t.is(typeof body.error, 'string', res.url);
    t.is(typeof body.detail, 'string', res.url);
    t.is(body.detail, body.detalle, res.url);
  }
});

// Serial (ava runs these before the others): no saga starts between the two reads.
test.serial('empty query parameters mean no filter: the README example answers 200', async (t) => {
  const res = await fetch(`${bff}/saga/?estado=&tipo=&pagina=1&limite=10`);
  t.is(res.status, 200);
  const body = await json(res);
  t.like(body, { pagina: 1, limite: 10 });
  const all = await json(await fetch(`${bff}/saga/?pagina=1&limite=10`));
  t.is(body.total, all.total);
  t.is((await fetch(`${bff}/saga/?pagina=&limite=`)).status, 200);
});
