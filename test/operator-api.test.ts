// The operator routes over HTTP, on the BFF and the orchestrator, with the real
// participant services: authentication and roles, the audit row and its event,
// idempotent repeats, refusals, and bulk operations.
import test from 'ava';
import { createHash } from 'node:crypto';
import { entryPoint, spawnNode } from '../scripts/lib/processes.js';
import { createPool } from '../src/persistence/pool.js';
import { createToken } from '../src/operator/tokens.js';
import { seedRequest } from './fixtures/requests.js';
import { waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';
import { addFault } from './helpers/faults.js';

const env = useTestEnv(test);
let bff = '';
let orchestratorUrl = '';
let app = '';
let operador = '';
let lector = '';
/** Lotes the orchestrator was told of (SAGA_LOTE_CHANNEL), which wakes its idle lote worker. */
let lotesHeard = 0;

test.before(async () => {
  const participants = await env.participants();
  app = participants.urls.pagos!;
  const role = await env.orchestrator({ participantEnv: participants.participantEnv });
  orchestratorUrl = role.urls.orchestrator!;
  role.orchestrator.onLoteRecorded(() => (lotesHeard += 1));
  bff = (await env.bff()).urls.bff!;
  const pool = createPool(env.databaseUrl, 1, env.log);
  operador = await createToken(pool, 'ana.operadora', 'operador');
  lector = await createToken(pool, 'luis.lector', 'lector');
  await pool.end();
});

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

async function http<T = Record<string, unknown>>(
  method: string,
  url: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const res = await fetch(url, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
      ...opts.headers,
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? null : JSON.parse(text)) as T, headers: res.headers };
}

interface Operacion {
  id: string;
  accion: string;
  quien: string;
  motivo: string;
  fecha: string;
  resultado: string;
}

/** A saga held in its payment for `ms` (the payment service answers late). */
async function heldSaga(ms = 4_000): Promise<string> {
  await addFault(app, { route: 'POST /pagos', delayMs: ms });
  const started = await http<{ saga_id: string }>('POST', `${bff}/saga/crear-campana-completa`, { body: seedRequest() });
  await waitForEstado(env, started.body.saga_id, ['CAMPAÑA_CREADA']);
  return started.body.saga_id;
}

async function finishedSaga(): Promise<string> {
  const started = await http<{ saga_id: string }>('POST', `${bff}/saga/crear-campana-completa`, { body: seedRequest() });
  await waitForEstado(env, started.body.saga_id);
  return started.body.saga_id;
}

test.serial('an operator route without a token is 401, with a wrong role 403; the contract routes need none', async (t) => {
  const sagaId = await finishedSaga();
  const none = await http('POST', `${bff}/saga/${sagaId}/cancelar`, { body: { motivo: 'x' } });
  t.is(none.status, 401);
  t.like(none.body, { error: 'no_autenticado' });
  t.is(none.headers.get('www-authenticate'), 'Bearer');
  const forged = await http('POST', `${bff}/saga/${sagaId}/cancelar`, { body: { motivo: 'x' }, token: operador.slice(0, -4) + 'AAAA' });
  t.is(forged.status, 401, 'a token whose secret is wrong');
  const reader = await http('POST', `${bff}/saga/${sagaId}/cancelar`, { body: { motivo: 'x' }, token: lector });
  t.is(reader.status, 403);
  t.like(reader.body, { error: 'prohibido' });
  t.is((await env.query('select 1 from saga_operaciones where saga_id = $1', [sagaId])).length, 0, 'nothing was ordered');
  t.is((await http('GET', `${bff}/saga/${sagaId}/status`)).status, 200);
  t.is((await http('GET', `${bff}/saga/`)).status, 200);
  t.deepEqual((await http('GET', `${bff}/auth/yo`, { token: lector })).body, { nombre: 'luis.lector', rol: 'lector' });
});

test.serial('pausar answers 200 with the status body once recorded, with its audit row and its outbox event', async (t) => {
  const sagaId = await heldSaga();
  const res = await http<{ saga_id: string; pausada: boolean; operacion: Operacion; operaciones: Operacion[] }>(
    'POST',
    `${bff}/saga/${sagaId}/pausar`,
    { body: { motivo: 'revisión de fraude' }, token: operador, headers: { 'x-request-id': 'req-123' } },
  );
  t.is(res.status, 200);
  t.is(res.body.saga_id, sagaId);
  t.true(res.body.pausada);
  t.like(res.body.operacion, { accion: 'pausar', quien: 'ana.operadora', motivo: 'revisión de fraude', resultado: 'aceptada' });
  t.deepEqual(res.body.operaciones.map((o) => o.id), [res.body.operacion.id], 'status lists the operations');
  const [row] = await env.query<Record<string, unknown>>('select * from saga_operaciones where id = $1', [res.body.operacion.id]);
  t.like(row, { saga_id: sagaId, accion: 'pausar', quien: 'ana.operadora', motivo: 'revisión de fraude', request_id: 'req-123', resultado: 'aceptada' });
  const [event] = await env.query<{ payload: Record<string, unknown> }>(
    `select payload from saga_events where saga_id = $1 and tipo = 'SagaOperacionPausar'`,
    [sagaId],
  );
  t.like(event?.payload, { operacion_id: res.body.operacion.id, accion: 'pausar', quien: 'ana.operadora', resultado: 'aceptada' });
  const resumed = await http('POST', `${orchestratorUrl}/saga/${sagaId}/reanudar`, { body: {}, token: operador });
  t.is(resumed.status, 200, 'the orchestrator serves the same routes');
  t.is(await waitForEstado(env, sagaId), 'COMPLETADA');
});

test.serial('an action the saga state does not allow is a 409 with a Spanish reason, and is audited', async (t) => {
  const sagaId = await finishedSaga();
  const res = await http<{ error: string; detalle: string; operacion: Operacion }>('POST', `${bff}/saga/${sagaId}/cancelar`, {
    body: { motivo: 'tarde' },
    token: operador,
  });
  t.is(res.status, 409);
  t.is(res.body.error, 'accion_no_permitida');
  t.regex(res.body.detalle, /ya terminó \(COMPLETADA\)/);
  t.is(res.body.operacion.resultado, 'rechazada');
  t.is((await env.query(`select 1 from saga_operaciones where saga_id = $1 and resultado = 'rechazada'`, [sagaId])).length, 1);
});

test.serial('a repeated Idempotency-Key returns the first result and acts once; reused for another action it is 422', async (t) => {
  const sagaId = await heldSaga();
  const key = `op-${sagaId}`;
  const first = await http<{ operacion: Operacion }>('POST', `${bff}/saga/${sagaId}/pausar`, { body: {}, token: operador, headers: { 'idempotency-key': key } });
  const again = await http<{ operacion: Operacion }>('POST', `${bff}/saga/${sagaId}/pausar`, { body: {}, token: operador, headers: { 'idempotency-key': key } });
  t.is(first.status, 200);
  t.is(again.status, 200, 'not a 409 "already paused": the same operation, answered again');
  t.is(again.body.operacion.id, first.body.operacion.id);
  t.is((await env.query('select 1 from saga_operaciones where saga_id = $1', [sagaId])).length, 1);
  const other = await http('POST', `${bff}/saga/${sagaId}/reanudar`, { body: {}, token: operador, headers: { 'idempotency-key': key } });
  t.is(other.status, 422);
  t.like(other.body, { error: 'operacion_id_reutilizada' });
  await http('POST', `${bff}/saga/${sagaId}/reanudar`, { body: {}, token: operador });
  await waitForEstado(env, sagaId);
});

test.serial('omitir without a motivo is a 400; an unknown action or saga is a 404', async (t) => {
  const sagaId = await finishedSaga();
  const res = await http('POST', `${bff}/saga/${sagaId}/omitir`, { body: {}, token: operador });
  t.is(res.status, 400);
  t.like(res.body, { error: 'validacion', detalle: [{ campo: 'motivo' }] });
  t.is((await http('POST', `${bff}/saga/${sagaId}/borrar`, { body: {}, token: operador })).status, 404);
  t.is((await http('POST', `${bff}/saga/00000000-0000-4000-8000-000000000000/pausar`, { body: {}, token: operador })).status, 404);
});

test.serial('cancelar over HTTP undoes what the saga did: the campaign is cancelled', async (t) => {
  const sagaId = await heldSaga(2_000);
  const res = await http<{ operacion: Operacion }>('POST', `${bff}/saga/${sagaId}/cancelar`, { body: { motivo: 'pedido del cliente' }, token: operador });
  t.is(res.status, 200);
  t.is(await waitForEstado(env, sagaId), 'COMPENSADA');
  const [campaign] = await env.query<{ estado: string }>('select estado from participantes.campanas where saga_id = $1', [sagaId]);
  t.is(campaign?.estado, 'CANCELADA');
  const [payment] = await env.query<{ estado: string }>('select estado from participantes.pagos where saga_id = $1', [sagaId]);
  t.true(payment === undefined || payment.estado === 'REVERTIDO', 'the payment in flight, if made, is reverted');
});

test.serial('a bulk dry run answers the count and the first ids without acting; the bulk cancel then undoes every saga it matched', async (t) => {
  const desde = new Date().toISOString();
  await finishedSaga(); // one the filter leaves out
  const held = [await heldSaga(3_000), await heldSaga(3_000)].sort();
  // Paused while the payment is in flight: each stops at PAGO_PROCESADO, and cannot finish before the bulk order reaches it.
  for (const id of held) {
    const paused = await http('POST', `${bff}/saga/${id}/pausar`, { body: { motivo: 'antes del lote' }, token: operador });
    t.is(paused.status, 200);
  }
  for (const id of held) await waitForEstado(env, id, ['PAGO_PROCESADO']);
  const filtro = { estado: 'PAGO_PROCESADO', desde };
  const dry = await http<{ total: number; primeras: string[] }>('POST', `${bff}/saga/lote/pausar`, {
    body: { filtro, motivo: 'mantenimiento', dry_run: true },
    token: operador,
  });
  t.is(dry.status, 200);
  t.is(dry.body.total, held.length);
  t.deepEqual([...dry.body.primeras].sort(), held);
  t.is((await env.query(`select 1 from saga_ordenes`)).length, 0, 'a dry run orders nothing');
  const all = await http<{ total: number }>('POST', `${bff}/saga/lote/pausar`, { body: { filtro: {}, motivo: 'x', dry_run: true }, token: operador });
  t.true(all.body.total > dry.body.total, 'the filter is applied');
  const run = await http<{ lote_id: string; total: number }>('POST', `${bff}/saga/lote/cancelar`, {
    body: { filtro, motivo: 'campaña retirada' },
    token: operador,
  });
  t.is(run.status, 202);
  t.is(run.body.total, held.length);
  const progress = async () => (await http<{ estado: string; procesadas: number; aceptadas: number; rechazadas: number }>('GET', `${bff}/saga/lote/${run.body.lote_id}`, { token: lector })).body;
  const until = Date.now() + 20_000;
  const settled = (p: Awaited<ReturnType<typeof progress>>) => p.estado === 'terminado' && p.aceptadas + p.rechazadas === held.length;
  while (!settled(await progress()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  t.like(await progress(), { estado: 'terminado', procesadas: held.length, aceptadas: held.length, rechazadas: 0 });
  for (const id of held) {
    t.is(await waitForEstado(env, id), 'COMPENSADA', `saga ${id}, cancelled by the lote`);
    const [campaign] = await env.query<{ estado: string }>('select estado from participantes.campanas where saga_id = $1', [id]);
    const [payment] = await env.query<{ estado: string }>('select estado from participantes.pagos where saga_id = $1', [id]);
    t.deepEqual([campaign?.estado, payment?.estado], ['CANCELADA', 'REVERTIDO'], `saga ${id}: what it made is undone`);
  }
  const decided = await env.query<{ saga_id: string; accion: string; quien: string; resultado: string }>(
    'select saga_id, accion, quien, resultado from saga_operaciones where lote_id = $1 order by saga_id',
    [run.body.lote_id],
  );
  t.deepEqual(
    decided,
    held.map((saga_id) => ({ saga_id, accion: 'cancelar', quien: 'ana.operadora', resultado: 'aceptada' })),
    'one accepted order per saga of the lote',
  );
});

test.serial('only the SHA-256 of a token\'s secret is stored; the audit is append-only', async (t) => {
  const rows = await env.query<{ id: string; hash: Buffer }>('select id, hash from operador_tokens');
  const [, id, secret] = /^sgo_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(operador)!;
  t.false(rows.some((r) => r.hash.toString('utf8').includes(secret!) || r.hash.toString('hex').includes(secret!)));
  const stored = rows.find((r) => r.id === id)?.hash.toString('hex');
  t.is(stored, createHash('sha256').update(secret!).digest('hex'), 'the stored hash is the SHA-256 of the secret');
  await t.throwsAsync(env.query(`update saga_operaciones set quien = 'otro'`), { message: /append-only/ });
  await t.throwsAsync(env.query(`delete from saga_operaciones`), { message: /append-only/ });
});

test.serial('npm run token prints the token alone on its last line, and it works', async (t) => {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawnNode(entryPoint('token'), ['--nombre', 'marta', '--rol', 'operador'], { env: { DATABASE_URL: env.databaseUrl } });
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
  });
  const token = out.trim().split('\n').at(-1)!;
  t.regex(token, /^sgo_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  t.deepEqual((await http('GET', `${bff}/auth/yo`, { token })).body, { nombre: 'marta', rol: 'operador' });
});

test.serial('a lote recorded on the BFF is told to the orchestrators, whose idle lote workers wake at once', async (t) => {
  const before = lotesHeard;
  const run = await http<{ lote_id: string }>('POST', `${bff}/saga/lote/pausar`, {
    body: { filtro: { desde: '2999-01-01T00:00:00Z' }, motivo: 'despertar' },
    token: operador,
  });
  t.is(run.status, 202);
  const until = Date.now() + 5_000;
  while (lotesHeard === before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.is(lotesHeard, before + 1);
});

