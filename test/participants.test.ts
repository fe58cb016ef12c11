// The reference participant services against a real PostgreSQL: an embedded server
// (or DATABASE_URL), with a fresh database of their own for this file.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import type Koa from 'koa';
import pg from 'pg';
import { listen, type RunningServer } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { aeropartnersApp, campaignsApp, type ParticipantOptions } from '../src/participants/services/apps.js';
import { migratedDatabase, type MigratedDatabase } from './helpers/database.js';
import { migrateParticipants } from '../src/participants/database.js';
import { SAGA_LOG_MIGRATIONS } from '../src/persistence/database.js';

const log = createLogger('silent');

let database: MigratedDatabase | undefined;
let pool: pg.Pool;
let campaigns: RunningServer;
let aero: RunningServer;
const started: RunningServer[] = [];

async function start(
  factory: (opts: ParticipantOptions) => Koa,
  extra: Partial<ParticipantOptions> = {},
): Promise<RunningServer> {
  const running = await listen(factory({ pool, log, faults: false, ...extra }), 0);
  started.push(running);
  return running;
}

test.before(async () => {
  // The pool the services use in production: a connection cut at teardown
  // (the database is dropped with force) is logged, not an uncaught error.
  database = await migratedDatabase('participants', 30, { participants: true });
  pool = database.pool;
  campaigns = await start(campaignsApp);
  aero = await start(aeropartnersApp);
});

test.after.always(async () => {
  await Promise.allSettled(started.map((s) => s.close()));
  await database?.close();
});

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(
  base: RunningServer,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await fetch(base.url + route, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: res.headers };
}

const key = (): Record<string, string> => ({ 'Idempotency-Key': `test:${randomUUID()}` });

const campaignBody = (extra: Record<string, unknown> = {}) => ({
  nombre: 'Campaña de verano',
  tipo: 'afiliacion',
  presupuesto: { monto: 15000.5, moneda: 'USD' },
  fecha_inicio: '2026-01-01',
  fecha_fin: '2026-03-31',
  id_afiliado: 'afiliado-1',
  ...extra,
});

const paymentBody = (extra: Record<string, unknown> = {}) => ({
  id_afiliado: 'afiliado-1',
  monto: 1234.56,
  moneda: 'USD',
  referencia_pago: `ref-${randomUUID()}`,
  ...extra,
});

const reportBody = (extra: Record<string, unknown> = {}) => ({
  tipo_reporte: 'metricas_generales',
  filtros: { desde: '2026-01-01' },
  ...extra,
});

async function count(table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const r = await pool.query<{ n: number }>(`select count(*)::int as n from ${table} where ${where}`, params);
  return r.rows[0]!.n;
}

/** The three services, described for the tests that hold for all of them. */
const services = [
  {
    name: 'campaigns',
    server: () => campaigns,
    base: '/api/campaigns',
    compensation: 'cancel',
    table: 'campanas',
    body: campaignBody,
    created: 'ACTIVA',
    compensated: 'CANCELADA',
  },
  {
    name: 'pagos',
    server: () => aero,
    base: '/pagos',
    compensation: 'revertir',
    table: 'pagos',
    body: paymentBody,
    created: 'PROCESADO',
    compensated: 'REVERTIDO',
  },
  {
    name: 'reporting',
    server: () => aero,
    base: '/reporting',
    compensation: 'cancel',
    table: 'reportes',
    body: reportBody,
    created: 'GENERADO',
    compensated: 'CANCELADO',
  },
] as const;

// ---------------------------------------------------------------- stats (serial: counts are global)

test.serial('/__stats counts creations, compensations and tombstones of each service', async (t) => {
  const before = await call(aero, 'GET', '/__stats');
  t.is(before.status, 200);
  const created = await call(aero, 'POST', '/pagos', paymentBody());
  await call(aero, 'PATCH', `/pagos/${created.body.id as string}/revertir`);
  await call(aero, 'PATCH', `/pagos/${randomUUID()}/revertir`);
  await call(aero, 'POST', '/reporting', reportBody());
  const after = await call(aero, 'GET', '/__stats');
  const b = before.body as Record<string, Record<string, number>>;
  const a = after.body as Record<string, Record<string, number>>;
  t.is(a.pagos!.creados! - b.pagos!.creados!, 1);
  t.is(a.pagos!.cancelados! - b.pagos!.cancelados!, 1);
  t.is(a.pagos!.anulados! - b.pagos!.anulados!, 1);
  t.is(a.reporting!.creados! - b.reporting!.creados!, 1);
  t.is(a.reporting!.cancelados! - b.reporting!.cancelados!, 0);

  const c = await call(campaigns, 'GET', '/__stats');
  t.deepEqual(Object.keys(c.body), ['campaigns']);
});

// ---------------------------------------------------------------- create, get, compensate

test('campaigns: a created campaign is ACTIVA, readable by id, and CANCELADA once cancelled', async (t) => {
  const id = randomUUID();
  const created = await call(campaigns, 'POST', '/api/campaigns', campaignBody({ id, descripcion: 'desc', saga_id: 's-1' }));
  t.is(created.status, 201);
  t.like(created.body, {
    id,
    estado: 'ACTIVA',
    nombre: 'Campaña de verano',
    tipo: 'afiliacion',
    presupuesto: { monto: 15000.5, moneda: 'USD' },
    fecha_inicio: '2026-01-01T00:00:00.000Z',
    fecha_fin: '2026-03-31T00:00:00.000Z',
    id_afiliado: 'afiliado-1',
    descripcion: 'desc',
    saga_id: 's-1',
    cancelado_en: null,
  });
  t.is(typeof created.body.creado_en, 'string');

  const read = await call(campaigns, 'GET', `/api/campaigns/${id}`);
  t.is(read.status, 200);
  t.deepEqual(read.body, created.body);

  const cancelled = await call(campaigns, 'PATCH', `/api/campaigns/${id}/cancel`);
  t.is(cancelled.status, 200);
  t.is(cancelled.body.estado, 'CANCELADA');
  t.is(typeof cancelled.body.cancelado_en, 'string');
  t.is((await call(campaigns, 'GET', `/api/campaigns/${id}`)).body.estado, 'CANCELADA');
});

test('pagos: a created payment is PROCESADO with a numeric monto, and REVERTIDO once reverted', async (t) => {
  const campana = randomUUID();
  const created = await call(aero, 'POST', '/pagos', paymentBody({ id_campana: campana, moneda: 'cop' }));
  t.is(created.status, 201);
  t.like(created.body, { estado: 'PROCESADO', monto: 1234.56, moneda: 'COP', id_campana: campana, saga_id: null });
  const id = created.body.id as string;
  t.regex(id, /^[0-9a-f-]{36}$/);

  t.deepEqual((await call(aero, 'GET', `/pagos/${id}`)).body, created.body);
  const reverted = await call(aero, 'PATCH', `/pagos/${id}/revertir`);
  t.is(reverted.status, 200);
  t.like(reverted.body, { id, estado: 'REVERTIDO', monto: 1234.56 });
  t.is(typeof reverted.body.revertido_en, 'string');
});

test('reporting: a created report is GENERADO, readable by id, and CANCELADO once cancelled', async (t) => {
  const id = randomUUID();
  const created = await call(aero, 'POST', '/reporting', reportBody({ id, tipo_reporte: 'conversiones' }));
  t.is(created.status, 201);
  t.like(created.body, { id, estado: 'GENERADO', tipo_reporte: 'conversiones', filtros: { desde: '2026-01-01' } });
  t.deepEqual((await call(aero, 'GET', `/reporting/${id}`)).body, created.body);
  const cancelled = await call(aero, 'PATCH', `/reporting/${id}/cancel`);
  t.is(cancelled.status, 200);
  t.is(cancelled.body.estado, 'CANCELADO');
});

test('GET of an unknown or malformed id is a 404 no_encontrado', async (t) => {
  for (const s of services) {
    for (const id of [randomUUID(), 'not-a-uuid']) {
      const r = await call(s.server(), 'GET', `${s.base}/${id}`);
      t.is(r.status, 404, s.name);
      t.is(r.body.error, 'no_encontrado');
    }
  }
});

test('/health answers 200 on both apps', async (t) => {
  t.like((await call(campaigns, 'GET', '/health')).body, { estado: 'ok', servicio: 'campaigns' });
  t.like((await call(aero, 'GET', '/health')).body, { estado: 'ok', servicio: 'aeropartners' });
});

// ---------------------------------------------------------------- validation and business rules

test('malformed JSON is a 400 and a wrong shape a 400 listing the fields', async (t) => {
  const malformed = await call(aero, 'POST', '/pagos', '{"monto": ');
  t.is(malformed.status, 400);

  const shape = await call(aero, 'POST', '/pagos', { monto: 'mucho', moneda: 'USD' });
  t.is(shape.status, 400);
  t.is(shape.body.error, 'validacion');
  const campos = (shape.body.detalle as { campo: string; mensaje: string }[]).map((p) => p.campo);
  t.true(campos.includes('monto'));
  t.true(campos.includes('id_afiliado'));
  t.true(campos.includes('referencia_pago'));

  const nested = await call(campaigns, 'POST', '/api/campaigns', campaignBody({ presupuesto: { monto: -1 }, fecha_fin: 'ayer' }));
  t.is(nested.status, 400);
  const nestedCampos = (nested.body.detalle as { campo: string }[]).map((p) => p.campo);
  t.true(nestedCampos.includes('presupuesto.monto'));
  t.true(nestedCampos.includes('presupuesto.moneda'));
  t.true(nestedCampos.includes('fecha_fin'));

  const badId = await call(aero, 'POST', '/reporting', reportBody({ id: 'abc' }));
  t.is(badId.status, 400);
  t.is((await call(aero, 'POST', '/reporting')).status, 400);
});

test('campaigns: fecha_fin before fecha_inicio is a 422 and creates nothing', async (t) => {
  const id = randomUUID();
  const r = await call(campaigns, 'POST', '/api/campaigns', campaignBody({ id, fecha_inicio: '2026-05-01', fecha_fin: '2026-04-30' }));
  t.is(r.status, 422);
  t.is(r.body.error, 'rechazado');
  t.regex(r.body.detalle as string, /fecha_fin/);
  t.is(await count('campanas', 'id = $1', [id]), 0);
});

test('pagos: an amount above the maximum or an unsupported currency is a 422 and creates nothing', async (t) => {
  const big = paymentBody({ monto: 1_000_000.01 });
  const tooBig = await call(aero, 'POST', '/pagos', big);
  t.is(tooBig.status, 422);
  t.deepEqual(tooBig.body.error, 'rechazado');
  t.regex(tooBig.body.detalle as string, /pago rechazado: monto supera el máximo/);

  const currency = paymentBody({ moneda: 'XYZ' });
  const badCurrency = await call(aero, 'POST', '/pagos', currency);
  t.is(badCurrency.status, 422);
  t.regex(badCurrency.body.detalle as string, /pago rechazado: moneda no soportada/);

  t.is(await count('pagos', 'referencia_pago = any($1)', [[big.referencia_pago, currency.referencia_pago]]), 0);
  t.is((await call(aero, 'POST', '/pagos', paymentBody({ monto: 1_000_000 }))).status, 201);
});

test('pagos: the maximum amount is an option of the app', async (t) => {
  const strict = await start(aeropartnersApp, { pagosMontoMaximo: 100 });
  t.is((await call(strict, 'POST', '/pagos', paymentBody({ monto: 100.01 }))).status, 422);
  t.is((await call(strict, 'POST', '/pagos', paymentBody({ monto: 100 }))).status, 201);
});

test('reporting: a tipo_reporte that is not offered is a 422', async (t) => {
  const r = await call(aero, 'POST', '/reporting', reportBody({ tipo_reporte: 'horoscopo' }));
  t.is(r.status, 422);
  t.is(r.body.error, 'rechazado');
  t.is((await call(aero, 'POST', '/reporting', reportBody({ tipo_reporte: 'rendimiento_campana' }))).status, 201);
});

// ---------------------------------------------------------------- Idempotency-Key

for (const s of services) {
  test(`${s.name}: the same Idempotency-Key twice creates one resource and answers the same`, async (t) => {
    const body = s.body();
    const headers = key();
    const first = await call(s.server(), 'POST', s.base, body, headers);
    const second = await call(s.server(), 'POST', s.base, body, headers);
    t.is(first.status, 201);
    t.is(second.status, 201);
    t.deepEqual(second.body, first.body);
    t.is(second.headers.get('idempotent-replayed'), 'true');
    t.is(await count(s.table, 'id = $1', [first.body.id]), 1);
  });

  test(`${s.name}: ten concurrent POSTs with the same key create exactly one resource`, async (t) => {
    const body = s.body();
    const headers = key();
    const answers = await Promise.all(Array.from({ length: 10 }, () => call(s.server(), 'POST', s.base, body, headers)));
    t.deepEqual(new Set(answers.map((a) => a.status)), new Set([201]));
    const ids = new Set(answers.map((a) => a.body.id));
    t.is(ids.size, 1);
    for (const a of answers) t.deepEqual(a.body, answers[0]!.body);
    t.is(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true').length, 9);
    t.is(await count(s.table, 'id = $1', [[...ids][0]]), 1);
    t.is(await count(`${s.table}_idempotencia`, 'clave = $1', [headers['Idempotency-Key']]), 1);
  });
}

test('pagos: a key reused with another body is a 422 idempotency_key_reutilizada', async (t) => {
  const headers = key();
  const first = await call(aero, 'POST', '/pagos', paymentBody(), headers);
  t.is(first.status, 201);
  const other = await call(aero, 'POST', '/pagos', paymentBody(), headers);
  t.is(other.status, 422);
  t.is(other.body.error, 'idempotency_key_reutilizada');
  // Used for a compensation of another path, the key is refused too.
  t.is((await call(aero, 'PATCH', `/pagos/${first.body.id as string}/revertir`, undefined, headers)).status, 422);
  t.is((await call(aero, 'GET', `/pagos/${first.body.id as string}`)).body.estado, 'PROCESADO');
});

test('pagos: a 422 under a key is stored, so its retry gets the same 422 even if the rule changed', async (t) => {
  const strict = await start(aeropartnersApp, { pagosMontoMaximo: 100 });
  const body = paymentBody({ monto: 500 });
  const headers = key();
  const refused = await call(strict, 'POST', '/pagos', body, headers);
  t.is(refused.status, 422);
  // The default app would accept 500, but this key already has its answer.
  const retried = await call(aero, 'POST', '/pagos', body, headers);
  t.is(retried.status, 422);
  t.deepEqual(retried.body, refused.body);
  t.is(await count('pagos', 'referencia_pago = $1', [body.referencia_pago]), 0);
});

test('campaigns: a compensation under a key is answered once and replayed', async (t) => {
  const created = await call(campaigns, 'POST', '/api/campaigns', campaignBody());
  const id = created.body.id as string;
  const headers = key();
  const first = await call(campaigns, 'PATCH', `/api/campaigns/${id}/cancel`, undefined, headers);
  const second = await call(campaigns, 'PATCH', `/api/campaigns/${id}/cancel`, undefined, headers);
  t.is(first.status, 200);
  t.deepEqual(second.body, first.body);
  t.is(second.headers.get('idempotent-replayed'), 'true');
});

// ---------------------------------------------------------------- compensations and tombstones

for (const s of services) {
  test(`${s.name}: compensating twice answers 200 with the same compensated resource`, async (t) => {
    const created = await call(s.server(), 'POST', s.base, s.body());
    t.is(created.body.estado, s.created);
    const route = `${s.base}/${created.body.id as string}/${s.compensation}`;
    const first = await call(s.server(), 'PATCH', route);
    const second = await call(s.server(), 'PATCH', route);
    t.is(first.status, 200);
    t.is(second.status, 200);
    t.is(first.body.estado, s.compensated);
    t.deepEqual(second.body, first.body);
  });

  test(`${s.name}: compensating an unknown id is a 404, and a later create of that id is a 409 anulado`, async (t) => {
    const id = randomUUID();
    const cancel = await call(s.server(), 'PATCH', `${s.base}/${id}/${s.compensation}`);
    t.is(cancel.status, 404);
    t.is(cancel.body.error, 'no_encontrado');

    const late = await call(s.server(), 'POST', s.base, s.body({ id }), key());
    t.is(late.status, 409);
    t.is(late.body.error, 'anulado');
    t.is(await count(s.table, 'id = $1', [id]), 0);
    t.is((await call(s.server(), 'GET', `${s.base}/${id}`)).status, 404);
    // Compensating again is still a 404 (nothing was ever created).
    t.is((await call(s.server(), 'PATCH', `${s.base}/${id}/${s.compensation}`)).status, 404);
  });
}

test('pagos: a create repeated with the same id answers the resource, with other data is a 409', async (t) => {
  const id = randomUUID();
  const body = paymentBody({ id });
  t.is((await call(aero, 'POST', '/pagos', body)).status, 201);
  const again = await call(aero, 'POST', '/pagos', body);
  t.is(again.status, 200);
  t.is(again.body.id, id);
  const conflicting = await call(aero, 'POST', '/pagos', { ...body, monto: 1 });
  t.is(conflicting.status, 409);
  t.is(conflicting.body.error, 'conflicto');

  await call(aero, 'PATCH', `/pagos/${id}/revertir`);
  const afterRevert = await call(aero, 'POST', '/pagos', body);
  t.is(afterRevert.status, 409);
  t.is(afterRevert.body.error, 'anulado');
  t.is(await count('pagos', 'id = $1', [id]), 1);
});

test('pagos: deduplicating by key only, a create or undo repeated without its key is applied again; under its key once', async (t) => {
  const keyOnly = await start(aeropartnersApp, { dedupe: 'clave' });
  const effects = (id: string, accion: string) => count('pagos_efectos', 'recurso_id = $1 and accion = $2', [id, accion]);
  const id = randomUUID();
  const body = paymentBody({ id });
  const headers = key();
  t.is((await call(keyOnly, 'POST', '/pagos', body, headers)).status, 201);
  t.is((await call(keyOnly, 'POST', '/pagos', body, headers)).headers.get('idempotent-replayed'), 'true');
  t.is(await effects(id, 'crear'), 1, 'the same key: one charge');
  t.is((await call(keyOnly, 'POST', '/pagos', body)).status, 201);
  t.is(await effects(id, 'crear'), 2, 'no key: charged again, as a service that only knows keys would');

  const undoKey = key();
  t.is((await call(keyOnly, 'PATCH', `/pagos/${id}/revertir`, undefined, undoKey)).status, 200);
  t.is((await call(keyOnly, 'PATCH', `/pagos/${id}/revertir`, undefined, undoKey)).status, 200);
  t.is(await effects(id, 'compensar'), 1);
  t.is((await call(keyOnly, 'PATCH', `/pagos/${id}/revertir`, undefined, key())).status, 200);
  t.is(await effects(id, 'compensar'), 2);
  // A late create of what was undone is still refused.
  t.is((await call(keyOnly, 'POST', '/pagos', body)).status, 409);
});

test('pagos: a create racing the compensation of the same id ends either compensated or refused', async (t) => {
  for (let i = 0; i < 15; i++) {
    const id = randomUUID();
    const [created, reverted] = await Promise.all([
      call(aero, 'POST', '/pagos', paymentBody({ id })),
      call(aero, 'PATCH', `/pagos/${id}/revertir`),
    ]);
    const rows = await pool.query<{ estado: string }>('select estado from pagos where id = $1', [id]);
    if (reverted.status === 404) {
      // The compensation came first: the create must have been refused.
      t.is(created.status, 409);
      t.is(rows.rowCount, 0);
    } else {
      t.is(created.status, 201);
      t.is(reverted.status, 200);
      t.is(rows.rows[0]?.estado, 'REVERTIDO');
    }
  }
});

// ---------------------------------------------------------------- fault injection

test('faults: a status rule answers that status the given number of times, then normally', async (t) => {
  const app = await start(aeropartnersApp, { faults: true });
  const rule = await call(app, 'POST', '/__faults', { route: 'POST /pagos', status: 503, times: 2 });
  t.is(rule.status, 201);
  const body = paymentBody();
  const first = await call(app, 'POST', '/pagos', body);
  const second = await call(app, 'POST', '/pagos', body);
  t.is(first.status, 503);
  t.is(first.body.error, 'falla_inyectada');
  t.is(second.status, 503);
  t.is(await count('pagos', 'referencia_pago = $1', [body.referencia_pago]), 0);
  t.is((await call(app, 'POST', '/pagos', body)).status, 201);
  t.is((await call(app, 'POST', '/reporting', reportBody())).status, 201);
});

test('faults: an injected 5xx under an Idempotency-Key is not stored, so the retry takes effect', async (t) => {
  const app = await start(aeropartnersApp, { faults: true });
  await call(app, 'POST', '/__faults', { route: 'POST /reporting', status: 500 });
  const headers = key();
  const body = reportBody();
  t.is((await call(app, 'POST', '/reporting', body, headers)).status, 500);
  const retried = await call(app, 'POST', '/reporting', body, headers);
  t.is(retried.status, 201);
  t.is(retried.headers.get('idempotent-replayed'), null);
});

test('faults: a delay rule answers normally after the delay', async (t) => {
  const app = await start(campaignsApp, { faults: true });
  await call(app, 'POST', '/__faults', { route: 'POST /api/campaigns', delayMs: 300 });
  const t0 = Date.now();
  const delayed = await call(app, 'POST', '/api/campaigns', campaignBody());
  t.true(Date.now() - t0 >= 290);
  t.is(delayed.status, 201);
});

test('faults: a response-phase delay applies the effect first and answers late', async (t) => {
  const app = await start(campaignsApp, { faults: true });
  await call(app, 'POST', '/__faults', { route: 'POST /api/campaigns', delayMs: 1_000, delayPhase: 'response' });
  const body = { ...campaignBody(), id: randomUUID() };
  let answered = false;
  const pending = call(app, 'POST', '/api/campaigns', body).then((r) => {
    answered = true;
    return r;
  });
  let seen = 404;
  while (seen === 404 && !answered) seen = (await call(app, 'GET', `/api/campaigns/${body.id}`)).status;
  t.is(seen, 200, 'the campaign exists');
  t.false(answered, 'before the creator hears back');
  t.is((await pending).status, 201);
});

test('faults: ":id" in a rule matches any id segment, and an exact path matches only itself', async (t) => {
  const app = await start(aeropartnersApp, { faults: true });
  const created = await call(app, 'POST', '/pagos', paymentBody());
  const id = created.body.id as string;
  await call(app, 'POST', '/__faults', { route: 'PATCH /pagos/:id/revertir', status: 504 });
  t.is((await call(app, 'PATCH', `/pagos/${id}/revertir`)).status, 504);
  t.is((await call(app, 'GET', `/pagos/${id}`)).body.estado, 'PROCESADO');

  const other = randomUUID();
  await call(app, 'POST', '/__faults', { route: `GET /pagos/${other}`, status: 502 });
  t.is((await call(app, 'GET', `/pagos/${id}`)).status, 200);
  t.is((await call(app, 'GET', `/pagos/${other}`)).status, 502);
  t.is((await call(app, 'PATCH', `/pagos/${id}/revertir`)).status, 200);
});

test('faults: rules queue up, GET lists them and DELETE clears them', async (t) => {
  const app = await start(aeropartnersApp, { faults: true });
  await call(app, 'POST', '/__faults', { route: 'GET /health', status: 503 });
  await call(app, 'POST', '/__faults', { route: 'GET /health', status: 502, times: 2 });
  const listed = await call(app, 'GET', '/__faults');
  t.deepEqual(listed.body, {
    reglas: [
      { route: 'GET /health', status: 503, remaining: 1, delayMs: 0, delayPhase: 'request' },
      { route: 'GET /health', status: 502, remaining: 2, delayMs: 0, delayPhase: 'request' },
    ],
  });
  t.is((await call(app, 'GET', '/health')).status, 503);
  t.is((await call(app, 'GET', '/health')).status, 502);
  t.deepEqual((await call(app, 'GET', '/__faults')).body, {
    reglas: [{ route: 'GET /health', status: 502, remaining: 1, delayMs: 0, delayPhase: 'request' }],
  });

  const cleared = await call(app, 'DELETE', '/__faults');
  t.deepEqual(cleared.body, { eliminadas: 1 });
  t.is((await call(app, 'GET', '/health')).status, 200);
  t.deepEqual((await call(app, 'GET', '/__faults')).body, { reglas: [] });
});

test('faults: each app has its own rules', async (t) => {
  const a = await start(aeropartnersApp, { faults: true });
  const b = await start(aeropartnersApp, { faults: true });
  await call(a, 'POST', '/__faults', { route: 'GET /health', status: 503 });
  t.is((await call(b, 'GET', '/health')).status, 200);
  t.is((await call(a, 'GET', '/health')).status, 503);
});

test('faults: an invalid rule is a 400', async (t) => {
  const app = await start(campaignsApp, { faults: true });
  t.is((await call(app, 'POST', '/__faults', { route: 'pagos', status: 503 })).status, 400);
  t.is((await call(app, 'POST', '/__faults', { route: 'POST /pagos', status: 200 })).status, 400);
  t.is((await call(app, 'POST', '/__faults', { route: 'POST /pagos' })).status, 400);
  t.deepEqual((await call(app, 'GET', '/__faults')).body, { reglas: [] });
});

test('faults: when disabled, /__faults does not exist', async (t) => {
  for (const app of [campaigns, aero]) {
    t.is((await call(app, 'GET', '/__faults')).status, 404);
    t.is((await call(app, 'POST', '/__faults', { route: 'GET /health', status: 503 })).status, 404);
    t.is((await call(app, 'DELETE', '/__faults')).status, 404);
    t.is((await call(app, 'GET', '/health')).status, 200);
  }
});

test.serial("the participants' migrations take a lock of their own: they never wait for the saga log's migrations", async (t) => {
  const url = database!.url;
  // Another process migrating the saga log holds its lock all along.
  const sagaLogLock = new pg.Client({ connectionString: url });
  await sagaLogLock.connect();
  try {
    await sagaLogLock.query('select pg_advisory_lock($1)', [SAGA_LOG_MIGRATIONS.lockKey]);
    let settled = false;
    const migrated = migrateParticipants(url).then(() => 'migrated' as const);
    // Either the participants' migration ends, or it is seen queueing behind the saga log's lock.
    const blocked = (async () => {
      while (!settled) {
        const { rows } = await sagaLogLock.query<{ n: number }>(
          `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted and objid = $1`,
          [SAGA_LOG_MIGRATIONS.lockKey],
        );
        if (rows[0]!.n > 0) return 'waiting for the saga log lock' as const;
        await new Promise((r) => setTimeout(r, 20));
      }
      return 'stopped looking' as const;
    })();
    const first = await Promise.race([migrated, blocked]);
    settled = true;
    await blocked;
    t.is(first, 'migrated');
  } finally {
    await sagaLogLock.end();
  }
});
