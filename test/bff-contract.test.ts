// The BFF contract end to end: HTTP to the BFF, the orchestrator that runs the
// sagas it records, and the real reference participant services, all on one
// PostgreSQL database.
import test from 'ava';
import { createLogger } from '../src/log.js';
import { bffApi } from '../src/http/bff-api.js';
import { listen } from '../src/http/server.js';
import { openDatabase } from '../src/persistence/database.js';
import { SagaQueries } from '../src/persistence/saga-queries.js';
import { SagaChanges } from '../src/cluster/saga-changes.js';
import { createPool } from '../src/persistence/pool.js';
import { campaignType } from './fixtures/sagas.js';
import { createDatabase, startTestServer } from './helpers/database.js';
import { derivedUuid } from '../src/saga/ids.js';
import { seedRequest } from './fixtures/requests.js';
import { events, waitForEstado } from './helpers/sagas.js';
import { testConfig, useTestEnv } from './helpers/system.js';
import { startBffRole } from '../src/roles.js';

const env = useTestEnv(test);
// The tests share one set of participant services, whose fault rules and saga
// list are global: they run one at a time.
let bff = '';
let orchestratorUrl = '';
let campaigns = '';
let app = '';

test.before(async () => {
  const participants = await env.participants();
  campaigns = participants.urls.campaigns!;
  app = participants.urls.pagos!;
  const orchestrator = await env.orchestrator({ participantEnv: participants.participantEnv });
  orchestratorUrl = orchestrator.urls.orchestrator!;
  bff = (await env.bff()).urls.bff!;
});

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

async function http<T = Record<string, unknown>>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? null : JSON.parse(text)) as T };
}

const post = (body: unknown, headers: Record<string, string> = {}) =>
  http<{ exito: boolean; saga_id: string; estado: string; mensaje: string; datos_iniciales: Record<string, unknown> }>(
    'POST',
    `${bff}/saga/crear-campana-completa`,
    body,
    headers,
  );

interface OutcomeView {
  id: string;
  tipo: string;
  exitoso: boolean;
  error: string | null;
  fecha_ejecucion: string;
  resultado: Record<string, unknown> | null;
}
interface StatusView {
  saga_id: string;
  estado: string;
  tipo: string;
  pasos: OutcomeView[];
  compensaciones: OutcomeView[];
  fecha_inicio: string;
  fecha_fin: string | null;
  error_message: string | null;
}

/** Starts a saga through the BFF and waits for its final status. */
async function runSaga(body: unknown): Promise<StatusView> {
  const started = await post(body);
  if (started.status !== 200) throw new Error(`POST answered ${started.status}: ${JSON.stringify(started.body)}`);
  await waitForEstado(env, started.body.saga_id);
  return (await http<StatusView>('GET', `${bff}/saga/${started.body.saga_id}/status`)).body;
}

const resource = (path: string) => http<{ estado: string }>('GET', path);

/** A change feed that is never started: for BFFs built by hand whose tests do not wait. */
const idle = () => new SagaChanges(env.databaseUrl, createLogger('silent'));

test.serial('POST answers 200 with the contract fields as soon as the saga is recorded', async (t) => {
  const { status, body } = await post(seedRequest());
  t.is(status, 200);
  t.true(body.exito);
  t.regex(body.saga_id, /^[0-9a-f-]{36}$/);
  t.is(body.estado, 'INICIADA');
  t.is(body.mensaje, 'SAGA iniciada exitosamente');
  t.like(body.datos_iniciales, {
    campana: { nombre: 'Campaña Test' },
    pago: { monto: 1000 },
    reporte: { tipo_reporte: 'metricas_generales' },
  });
  const [row] = await env.query('select estado from saga_log where id = $1', [body.saga_id]);
  t.truthy(row, 'durably recorded before the answer');
});

test.serial('a saga whose three services accept completes, and its status shows every step', async (t) => {
  const s = await runSaga(seedRequest());
  t.is(s.estado, 'COMPLETADA');
  t.is(s.tipo, 'CREAR_CAMPANA_COMPLETA');
  t.deepEqual(s.pasos.map((p) => [p.tipo, p.exitoso, p.error]), [
    ['CREAR_CAMPANA', true, null],
    ['PROCESAR_PAGO', true, null],
    ['GENERAR_REPORTE', true, null],
  ]);
  t.deepEqual(s.pasos.map((p) => p.resultado?.estado), ['ACTIVA', 'PROCESADO', 'GENERADO']);
  t.deepEqual(s.compensaciones, []);
  t.is(s.error_message, null);
  t.truthy(s.fecha_fin);
  t.true(Date.parse(s.fecha_fin!) >= Date.parse(s.fecha_inicio));
  for (const p of s.pasos) t.regex(p.fecha_ejecucion, /^\d{4}-\d\d-\d\dT/);
  const campaignId = derivedUuid(s.saga_id, 'CREAR_CAMPANA');
  t.is((await resource(`${campaigns}/api/campaigns/${campaignId}`)).body.estado, 'ACTIVA');
  t.deepEqual((await events(env, s.saga_id)).map((e) => e.tipo), [
    'SagaIniciada',
    'SagaPasoEjecutado', 'SagaCampañaCreada',
    'SagaPasoEjecutado', 'SagaPagoProcesado',
    'SagaPasoEjecutado', 'SagaReporteGenerado', 'SagaCompletada',
  ]);
});

test.serial('a payment above the maximum is declined and the campaign is cancelled', async (t) => {
  const body = seedRequest();
  body.pago.monto = 9_999_999;
  const s = await runSaga(body);
  t.is(s.estado, 'COMPENSADA');
  t.deepEqual(s.pasos.map((p) => [p.tipo, p.exitoso]), [['CREAR_CAMPANA', true], ['PROCESAR_PAGO', false]]);
  t.regex(s.pasos[1]!.error ?? '', /^HTTP 422: pago rechazado: monto supera el máximo/);
  t.deepEqual(s.compensaciones.map((c) => [c.tipo, c.exitoso]), [['CANCELAR_CAMPANA', true]]);
  t.is(s.compensaciones[0]!.resultado?.estado, 'CANCELADA');
  t.regex(s.error_message ?? '', /^Paso PROCESAR_PAGO falló: HTTP 422: pago rechazado/);
  t.is((await resource(`${campaigns}/api/campaigns/${derivedUuid(s.saga_id, 'CREAR_CAMPANA')}`)).body.estado, 'CANCELADA');
  t.is((await resource(`${app}/pagos/${derivedUuid(s.saga_id, 'PROCESAR_PAGO')}`)).status, 404, 'no payment was made');
});

test.serial('a report type Reporting does not offer reverts the payment, then cancels the campaign', async (t) => {
  const body = seedRequest();
  body.reporte.tipo_reporte = 'inexistente';
  const s = await runSaga(body);
  t.is(s.estado, 'COMPENSADA');
  t.deepEqual(s.compensaciones.map((c) => c.tipo), ['REVERTIR_PAGO', 'CANCELAR_CAMPANA']);
  t.true(Date.parse(s.compensaciones[0]!.fecha_ejecucion) <= Date.parse(s.compensaciones[1]!.fecha_ejecucion));
  t.is((await resource(`${app}/pagos/${derivedUuid(s.saga_id, 'PROCESAR_PAGO')}`)).body.estado, 'REVERTIDO');
  t.is((await resource(`${campaigns}/api/campaigns/${derivedUuid(s.saga_id, 'CREAR_CAMPANA')}`)).body.estado, 'CANCELADA');
});

test.serial('a campaign ending before it starts is rejected, and its undo finds nothing to undo', async (t) => {
  const body = seedRequest();
  body.campana.fecha_fin = '2024-01-01T00:00:00';
  const s = await runSaga(body);
  t.is(s.estado, 'COMPENSADA');
  t.deepEqual(s.pasos.map((p) => [p.tipo, p.exitoso]), [['CREAR_CAMPANA', false]]);
  // A refusal of the first step keeps its undo (its first attempt may have been made twice); Campaigns answers 404.
  t.deepEqual(s.compensaciones.map((c) => [c.tipo, c.exitoso, c.resultado]), [['CANCELAR_CAMPANA', true, { nada_que_deshacer: true }]]);
});

test.serial('503s from the payment service are retried and the saga still completes', async (t) => {
  const fault = await http('POST', `${app}/__faults`, { route: 'POST /pagos', status: 503, times: 2 });
  t.is(fault.status, 201);
  const s = await runSaga(seedRequest());
  t.is(s.estado, 'COMPLETADA');
  const [paso] = await env.query<{ intentos: number }>(
    "select intentos from saga_pasos where saga_id = $1 and tipo = 'PROCESAR_PAGO'",
    [s.saga_id],
  );
  t.true((paso?.intentos ?? 0) >= 2, 'the payment needed more than one attempt');
});

test.serial('a saga past timeout_minutos fails and compensates, and the late payment never lands', async (t) => {
  // The payment service holds this request for 3 s; the saga allows 0.6 s.
  await http('POST', `${app}/__faults`, { route: 'POST /pagos', delayMs: 3_000, times: 1 });
  const body = { ...seedRequest(), timeout_minutos: 0.01 };
  const s = await runSaga(body);
  t.is(s.estado, 'COMPENSADA');
  t.regex(s.error_message ?? '', /timeout_minutos/);
  t.is(s.compensaciones.at(-1)?.tipo, 'CANCELAR_CAMPANA');
  // Wait for the delayed payment request to reach the service: it is refused.
  await new Promise((r) => setTimeout(r, 3_500));
  t.is((await resource(`${app}/pagos/${derivedUuid(s.saga_id, 'PROCESAR_PAGO')}`)).status, 404);
  const after = (await http<StatusView>('GET', `${bff}/saga/${s.saga_id}/status`)).body;
  t.deepEqual(after, s, 'a terminal saga never changes');
});

test.serial('status and the list describe a saga in exactly the same words', async (t) => {
  const body = seedRequest();
  body.reporte.tipo_reporte = 'inexistente'; // steps, compensations, an error: every field filled
  const s = await runSaga(body);
  const list = await http<{ sagas: StatusView[] }>('GET', `${bff}/saga/?estado=COMPENSADA&limite=100`);
  t.deepEqual(list.body.sagas.find((x) => x.saga_id === s.saga_id), s);
  t.regex(s.fecha_inicio, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.is(s.compensaciones.length, 2);
});

test.serial('status with esperar_ms answers once the saga has ended, without polling', async (t) => {
  // The payment takes a second, so the saga is still running when the client asks.
  await http('POST', `${app}/__faults`, { route: 'POST /pagos', delayMs: 1_000, times: 1 });
  const started = await post(seedRequest());
  const t0 = Date.now();
  const res = await http<StatusView>('GET', `${bff}/saga/${started.body.saga_id}/status?esperar_ms=30000`);
  t.is(res.status, 200);
  t.is(res.body.estado, 'COMPLETADA', 'one request, answered with the final state');
  t.is(res.body.pasos.length, 3);
  t.true(Date.now() - t0 < 25_000, 'woken by the end of the saga, not by its deadline');
});

test.serial('status with an esperar_ms that runs out answers the state the saga is in', async (t) => {
  await http('POST', `${app}/__faults`, { route: 'POST /pagos', delayMs: 3_000, times: 1 });
  const started = await post(seedRequest());
  const res = await http<StatusView>('GET', `${bff}/saga/${started.body.saga_id}/status?esperar_ms=200`);
  t.is(res.status, 200);
  t.true(['INICIADA', 'CAMPAÑA_CREADA'].includes(res.body.estado), res.body.estado);
  t.is(await waitForEstado(env, started.body.saga_id), 'COMPLETADA');
});

test.serial('an esperar_ms that is not a whole number of ms up to 30000 is a 400 naming it', async (t) => {
  const { body } = await post(seedRequest());
  for (const bad of ['abc', '-1', '30001', '1.5']) {
    const res = await http('GET', `${bff}/saga/${body.saga_id}/status?esperar_ms=${bad}`);
    t.is(res.status, 400, bad);
    t.like(res.body, { error: 'validacion', detalle: [{ campo: 'esperar_ms' }] });
  }
});

test.serial('the same Idempotency-Key returns the same saga instead of starting another', async (t) => {
  const key = `retry-${Date.now()}`;
  const first = await post(seedRequest(), { 'Idempotency-Key': key });
  const second = await post(seedRequest(), { 'Idempotency-Key': key });
  t.is(first.status, 200);
  t.is(second.status, 200);
  t.is(second.body.saga_id, first.body.saga_id);
  const rows = await env.query('select id from saga_log where idempotency_key = $1', [key]);
  t.is(rows.length, 1);
});

test.serial('twenty concurrent POSTs with one Idempotency-Key start one saga', async (t) => {
  const key = `burst-${Date.now()}`;
  const answers = await Promise.all(Array.from({ length: 20 }, () => post(seedRequest(), { 'Idempotency-Key': key })));
  t.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
  t.is(new Set(answers.map((a) => a.body.saga_id)).size, 1);
  t.is((await env.query('select id from saga_log where idempotency_key = $1', [key])).length, 1);
});

test.serial('the same Idempotency-Key with a different body is refused with 422', async (t) => {
  const key = `reuse-${Date.now()}`;
  await post(seedRequest(), { 'Idempotency-Key': key });
  const other = seedRequest();
  other.pago.monto = 5;
  const again = await post(other, { 'Idempotency-Key': key });
  t.is(again.status, 422);
  t.like(again.body, { error: 'idempotency_key_reutilizada' });
});

test.serial('the same Idempotency-Key with another timeout_minutos is another request: 422, and the first saga keeps its deadline', async (t) => {
  const key = `plazo-${Date.now()}`;
  const first = await post({ ...seedRequest(), timeout_minutos: 30 }, { 'Idempotency-Key': key });
  t.is(first.status, 200);
  const again = await post({ ...seedRequest(), timeout_minutos: 45 }, { 'Idempotency-Key': key });
  t.is(again.status, 422, 'a longer deadline is not a retry of the first request');
  t.like(again.body, { error: 'idempotency_key_reutilizada' });
  const rows = await env.query<{ id: string; timeout_minutos: number; minutos: number }>(
    `select id, timeout_minutos, extract(epoch from fecha_limite - fecha_inicio) / 60 as minutos from saga_log where idempotency_key = $1`,
    [key],
  );
  t.deepEqual(rows.map((r) => [r.id, r.timeout_minutos, Number(r.minutos)]), [[first.body.saga_id, 30, 30]]);
  const retried = await post({ ...seedRequest(), timeout_minutos: 30 }, { 'Idempotency-Key': key });
  t.like(retried, { status: 200, body: { saga_id: first.body.saga_id } }, 'the first request, sent again, is still that saga');
});

test.serial('malformed JSON is a 400 and writes nothing', async (t) => {
  const before = await sagaCount();
  const res = await post('{"campana": ');
  t.is(res.status, 400);
  t.like(res.body, { error: 'json_invalido' });
  t.is(await sagaCount(), before);
});

test.serial('missing and mistyped fields are a 400 that names each field', async (t) => {
  const before = await sagaCount();
  const body = seedRequest() as unknown as { pago: Record<string, unknown>; campana: Record<string, unknown> };
  body.pago.monto = 'mil';
  delete body.campana.nombre;
  const res = await http<{ error: string; detalle: { campo: string; mensaje: string }[] }>(
    'POST',
    `${bff}/saga/crear-campana-completa`,
    body,
  );
  t.is(res.status, 400);
  t.is(res.body.error, 'validacion');
  t.deepEqual(
    res.body.detalle.map((d) => d.campo).sort(),
    ['campana.nombre', 'pago.monto'],
  );
  t.like(res.body.detalle.find((d) => d.campo === 'pago.monto'), { mensaje: 'debe ser un número' });
  t.like(res.body.detalle.find((d) => d.campo === 'campana.nombre'), { mensaje: 'es obligatorio' });
  t.is(await sagaCount(), before);
});

test.serial('a timeout_minutos that is not positive is a 400; a fraction is accepted', async (t) => {
  t.is((await post({ ...seedRequest(), timeout_minutos: 0 })).status, 400);
  t.is((await post({ ...seedRequest(), timeout_minutos: -3 })).status, 400);
  t.is((await post({ ...seedRequest(), timeout_minutos: 0.5 })).status, 200);
});

test.serial('a body over 1 MB is a 413', async (t) => {
  const body = { ...seedRequest(), relleno: 'x'.repeat(1024 * 1024 + 10) };
  const res = await post(body);
  t.is(res.status, 413);
  t.like(res.body, { error: 'cuerpo_demasiado_grande' });
});

test.serial('an unknown or malformed saga id is a 404 with a JSON error', async (t) => {
  const unknown = await http('GET', `${bff}/saga/00000000-0000-4000-8000-000000000000/status`);
  t.is(unknown.status, 404);
  t.like(unknown.body, { error: 'no_encontrada' });
  const malformed = await http('GET', `${bff}/saga/no-es-un-uuid/status`);
  t.is(malformed.status, 404);
  t.like(malformed.body, { error: 'no_encontrada' });
});

test.serial('the list is newest first, filtered by estado and paged, with the total', async (t) => {
  const a = await runSaga(seedRequest());
  const b = await runSaga(seedRequest());
  const page = await http<{ sagas: StatusView[]; total: number; pagina: number; limite: number }>(
    'GET',
    `${bff}/saga/?estado=COMPLETADA&pagina=1&limite=2`,
  );
  t.is(page.status, 200);
  t.is(page.body.pagina, 1);
  t.is(page.body.limite, 2);
  t.true(page.body.total >= 2);
  t.deepEqual(page.body.sagas.map((s) => s.saga_id), [b.saga_id, a.saga_id]);
  t.true(page.body.sagas.every((s) => s.estado === 'COMPLETADA'));
  t.deepEqual(page.body.sagas[0], b, 'each item has the shape of the status answer');
  const second = await http<{ sagas: StatusView[] }>('GET', `${bff}/saga/?estado=COMPLETADA&pagina=2&limite=2`);
  t.false(second.body.sagas.some((s) => s.saga_id === a.saga_id || s.saga_id === b.saga_id));
  const byTipo = await http<{ total: number }>('GET', `${bff}/saga?tipo=OTRO_TIPO`);
  t.is(byTipo.body.total, 0);
});

test.serial('bad list parameters are a 400 naming the parameter', async (t) => {
  for (const [query, campo] of [
    ['estado=TERMINADA', 'estado'],
    ['pagina=0', 'pagina'],
    ['pagina=abc', 'pagina'],
    ['limite=1000', 'limite'],
    ['limite=5&limite=6', 'limite'],
  ] as const) {
    const res = await http<{ error: string; detalle: { campo: string }[] }>('GET', `${bff}/saga/?${query}`);
    t.is(res.status, 400, query);
    t.is(res.body.detalle[0]?.campo, campo, query);
  }
});

test.serial('health answers 200 with the database check on the BFF and the orchestrator', async (t) => {
  t.deepEqual((await http('GET', `${bff}/health`)).body, { status: 'healthy', service: 'bff', database: 'ok' });
  t.deepEqual((await http('GET', `${orchestratorUrl}/health`)).body, {
    status: 'healthy',
    service: 'saga-orchestrator',
    database: 'ok',
  });
});

test.serial('the orchestrator serves metrics: sagas by state, durations, outcomes', async (t) => {
  await runSaga(seedRequest());
  const res = await fetch(`${orchestratorUrl}/metrics`);
  t.is(res.status, 200);
  const text = await res.text();
  t.regex(text, /^saga_estado\{tipo="CREAR_CAMPANA_COMPLETA",estado="COMPLETADA"\} [1-9]\d*$/m);
  t.regex(text, /^saga_step_outcomes_total\{clase="paso",tipo="CREAR_CAMPANA_COMPLETA",paso="GENERAR_REPORTE",resultado="exitoso"\} [1-9]\d*$/m);
  t.regex(text, /^saga_step_outcomes_total\{clase="compensacion",tipo="CREAR_CAMPANA_COMPLETA",paso="CANCELAR_CAMPANA",resultado="exitoso"\} [1-9]\d*$/m);
  t.regex(text, /^saga_duration_seconds_count\{tipo="CREAR_CAMPANA_COMPLETA",estado="COMPENSADA"\} [1-9]\d*$/m);
});

/** A BFF app built by hand on `db` and a pool, with no orchestrator and a change feed that never starts. */
function bareBff(db: typeof env.db, url: string, start: Parameters<typeof bffApi>[0]['start']) {
  const pool = createPool(url, 2, createLogger('silent'));
  const app = bffApi({
    db,
    pool,
    queries: new SagaQueries(db, pool),
    changes: idle(),
    types: [campaignType()],
    start,
    log: createLogger('silent'),
    orderWaitMs: 1_000,
    authContract: false,
  });
  return { app, pool };
}

test.serial('health answers 503 when the database is unreachable', async (t) => {
  const db = await openDatabase(env.databaseUrl);
  await db.close();
  const { app, pool } = bareBff(db, env.databaseUrl, () => Promise.reject(new Error('unused')));
  const server = await listen(app, 0);
  try {
    const res = await http('GET', `${server.url}/health`);
    t.is(res.status, 503);
    t.deepEqual(res.body, { status: 'unhealthy', service: 'bff', database: 'error' });
  } finally {
    await server.close();
    await pool.end();
  }
});

test.serial('a POST whose write cannot be confirmed is a 503 that names the saga, never a 500', async (t) => {
  // A BFF on a database of its own, which is then dropped under it: the write fails.
  const server0 = await startTestServer();
  const created = await createDatabase(server0.adminUrl, 'saga_gone');
  const role = await startBffRole(testConfig(), created.url, createLogger('silent'));
  try {
    await created.drop();
    const res = await http<{ error: string; saga_id: string }>('POST', `${role.urls.bff!}/saga/crear-campana-completa`, seedRequest());
    t.is(res.status, 503);
    t.is(res.body.error, 'resultado_desconocido');
    t.regex(res.body.saga_id, /^[0-9a-f-]{36}$/, 'the client can ask for this saga later');
  } finally {
    await role.stop().catch(() => undefined);
    await server0.stop();
  }
});

async function sagaCount(): Promise<number> {
  const [row] = await env.query<{ n: string }>('select count(*) as n from saga_log');
  return Number(row?.n ?? 0);
}
