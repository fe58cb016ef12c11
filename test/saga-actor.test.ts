// The saga actors under their supervisor, on a real saga log, with the
// participant services replaced by a scripted gateway. Operator orders reach
// the actors the way they do in production: through the saga log's mailbox.
import test from 'ava';
import { Orchestrator } from '../src/orchestrator.js';
import { OrderDesk, type OrderRequest } from '../src/operator/orders.js';
import { SagaChanges } from '../src/cluster/saga-changes.js';
import { createPool } from '../src/persistence/pool.js';
import { SagaQueries } from '../src/persistence/saga-queries.js';
import type { CallOutcome, StepDefinition } from '../src/saga/definition.js';
import type { AnySagaType } from '../src/saga/saga-type.js';
import type { OperatorAction } from '../src/saga/operations.js';
import { seedDatos } from './fixtures/requests.js';
import { campaignType, S, TIPO } from './fixtures/sagas.js';
import { rejected, revertDownUntilUp, RoutingGateway, ScriptedGateway, slow, transient } from './fakes/participants.js';
import { events, pasos, waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';
import { waitUntil } from './helpers/wait.js';
import type pg from 'pg';

const env = useTestEnv(test);
const router = new RoutingGateway();
let orchestrator: Orchestrator;
let desk: OrderDesk;
let queries: SagaQueries;
let pool: pg.Pool;
let changes: SagaChanges;
/** Sagas whose actor reported done and was stopped. */
const finished = new Set<string>();

const POLICIES = { backoffScale: 0.01, callTimeoutMs: 60_000, stepBudgetMs: 1_500, compensationBudgetMs: 3_000 };

/** The campaign saga under another tipo, on other policies, its steps optionally changed. */
function variant(tipo: string, policies: typeof POLICIES, patch: (s: StepDefinition<never>, i: number) => StepDefinition<never> = (s) => s): AnySagaType {
  const base = campaignType(policies);
  const v1 = base.versions[0]!;
  return { ...base, tipo, versions: [{ ...v1, tipo, steps: v1.steps.map(patch) }] };
}

/** A bug in a definition, as the engine meets it: the payment step's handler throws for sagas named BOOM. */
const CRASHING = variant('CON_FALLO', POLICIES, (s, i) =>
  i !== 1
    ? s
    : {
        ...s,
        action: (input) => {
          if ((input.datos as { campana: { nombre: string } }).campana.nombre === 'BOOM') throw new Error('bug in PROCESAR_PAGO');
          return s.action(input);
        },
      },
);

/** Retries for a minute, with production backoff: for tests where an operator acts while a call is retried. */
const PATIENT = variant('PACIENTE', { ...POLICIES, backoffScale: 1, stepBudgetMs: 60_000, compensationBudgetMs: 60_000 });

/** Calls time out after 1 s: a call that outlives that (the actor wedged) is overdue. */
const HANGING = variant('COLGADA', { ...POLICIES, callTimeoutMs: 1_000 });

const TYPES = [campaignType(POLICIES), CRASHING, PATIENT, HANGING];

function newOrchestrator(): Orchestrator {
  const o = new Orchestrator({
    db: env.db,
    gateway: router,
    types: TYPES,
    log: env.log,
    commitRetryMs: 50,
    cluster: { leaseMs: 5_000, sweepMs: 500 },
  });
  o.onSagaDone((sagaId) => finished.add(sagaId));
  return o;
}

test.before(async () => {
  await env.ready();
  // One orchestrator for the file, holding every shard; each test scripts the
  // participants of its own saga through the router.
  orchestrator = newOrchestrator();
  await orchestrator.start();
  pool = createPool(env.databaseUrl, 4, env.log);
  changes = new SagaChanges(env.databaseUrl, env.log);
  await changes.start();
  desk = new OrderDesk(pool, changes);
  queries = new SagaQueries(env.db, pool);
});
test.after.always(async () => {
  await orchestrator?.stop();
  await changes?.stop();
  await pool?.end();
});

async function start(gateway: ScriptedGateway, opts: { timeoutMinutos?: number; tipo?: string; nombre?: string } = {}): Promise<string> {
  const datos = seedDatos();
  if (opts.nombre !== undefined) datos.campana.nombre = opts.nombre;
  const result = await orchestrator.startSaga(opts.tipo ?? TIPO, datos, { timeoutMinutos: opts.timeoutMinutos ?? 30 });
  if (result.kind === 'keyReused') throw new Error('unexpected');
  router.register(result.sagaId, gateway);
  return result.sagaId;
}

/** Sends an operator order through the mailbox and waits for its decision. */
async function act(sagaId: string, accion: OperatorAction, extra: Partial<OrderRequest> = {}) {
  const req: OrderRequest = {
    operacionId: `${accion}-${sagaId}-${Math.random()}`,
    sagaId,
    accion,
    quien: 'ana',
    motivo: 'prueba',
    requestId: null,
    ...extra,
  };
  const submitted = await desk.submit(req);
  if (submitted.kind !== 'pending') throw new Error(`order not placed: ${submitted.kind}`);
  const decided = await desk.decision(req, 10_000);
  if (decided === null) throw new Error('order not decided in time');
  return decided;
}

const always = (n = 2_000) => Array.from({ length: n }, () => transient());

test('happy path: three steps in order, COMPLETADA, and the actor is stopped', async (t) => {
  const gateway = new ScriptedGateway();
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPLETADA);
  t.deepEqual(gateway.routes(), ['POST /api/campaigns', 'POST /pagos', 'POST /reporting']);
  t.deepEqual((await pasos(env, sagaId)).map((p) => [p.tipo, p.exitoso]), [
    ['CREAR_CAMPANA', true],
    ['PROCESAR_PAGO', true],
    ['GENERAR_REPORTE', true],
  ]);
  const evs = await events(env, sagaId);
  t.deepEqual(evs.map((e) => e.secuencia), evs.map((_, i) => i + 1), 'one event per transition, no gaps');
  t.is(evs.at(-1)?.tipo, 'SagaCompletada');
  await waitUntil(() => finished.has(sagaId));
  t.pass('the supervisor stopped the actor of the finished saga');
});

const failures = [
  // The first step's first attempt may have been made by another process too (every process that runs a saga fresh
  // makes it), so its refusal proves nothing: its undo runs, and finds nothing when nothing was done.
  { at: 'POST /api/campaigns', failed: 'CREAR_CAMPANA', compensations: ['PATCH /api/campaigns/:id/cancel'] },
  { at: 'POST /pagos', failed: 'PROCESAR_PAGO', compensations: ['PATCH /api/campaigns/:id/cancel'] },
  { at: 'POST /reporting', failed: 'GENERAR_REPORTE', compensations: ['PATCH /pagos/:id/revertir', 'PATCH /api/campaigns/:id/cancel'] },
];

for (const f of failures) {
  test(`a business refusal of ${f.failed} compensates the completed steps in reverse order`, async (t) => {
    const gateway = new ScriptedGateway().on(f.at, rejected(422, `${f.failed} rechazado`));
    const sagaId = await start(gateway);
    t.is(await waitForEstado(env, sagaId), S.COMPENSADA);
    const forward = gateway.routes().filter((r) => r.startsWith('POST'));
    t.is(forward.at(-1), f.at, 'no step runs after the refusal');
    t.deepEqual(gateway.routes().filter((r) => r.startsWith('PATCH')), f.compensations);
    const last = (await pasos(env, sagaId)).at(-1);
    t.like(last, { tipo: f.failed, exitoso: false, error: `HTTP 422: ${f.failed} rechazado` });
    t.is((await pasos(env, sagaId, 'saga_compensaciones')).length, f.compensations.length);
    const tipos = (await events(env, sagaId)).map((e) => e.tipo);
    t.deepEqual(tipos.slice(-3), ['SagaFallida', 'SagaCompensacionIniciada', 'SagaCompensacionCompletada']);
  });
}

test('transient errors are retried with the same Idempotency-Key until the step succeeds', async (t) => {
  const gateway = new ScriptedGateway().on('POST /pagos', transient(), transient('ECONNREFUSED'));
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPLETADA);
  const payments = gateway.calls.filter((c) => c.path === '/pagos');
  t.is(payments.length, 3);
  t.deepEqual(new Set(payments.map((c) => c.idempotencyKey)), new Set([`${sagaId}:PROCESAR_PAGO:accion`]));
  t.like((await pasos(env, sagaId))[1], { tipo: 'PROCESAR_PAGO', exitoso: true, intentos: 3 });
});

test('a step that stays unavailable past its budget fails the saga, and its possible effect is compensated too', async (t) => {
  const gateway = new ScriptedGateway().on('POST /pagos', ...always());
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPENSADA);
  t.deepEqual(gateway.routes().filter((r) => r.startsWith('PATCH')), [
    'PATCH /pagos/:id/revertir',
    'PATCH /api/campaigns/:id/cancel',
  ]);
});

test('a compensation that fails for a while is retried until it succeeds', async (t) => {
  const gateway = new ScriptedGateway()
    .on('POST /reporting', rejected(422, 'tipo_reporte no ofrecido'))
    .on('PATCH /pagos', transient(), transient(), transient());
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPENSADA);
  const comps = await pasos(env, sagaId, 'saga_compensaciones');
  t.deepEqual(comps.map((c) => [c.tipo, c.exitoso, c.intentos]), [
    ['REVERTIR_PAGO', true, 4],
    ['CANCELAR_CAMPANA', true, 1],
  ]);
});

test('a compensation that never succeeds does not stop the others; the saga ends COMPENSACION_FALLIDA saying which', async (t) => {
  const gateway = new ScriptedGateway()
    .on('POST /reporting', rejected(422, 'tipo_reporte no ofrecido'))
    .on('PATCH /pagos', ...always());
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPENSACION_FALLIDA);
  t.true(gateway.routes().includes('PATCH /api/campaigns/:id/cancel'), 'the campaign is cancelled although the revert failed');
  const status = (await queries.status(sagaId))!;
  t.deepEqual(status.plan_compensacion, [
    { tipo: 'REVERTIR_PAGO', estado: 'fallida' },
    { tipo: 'CANCELAR_CAMPANA', estado: 'hecha' },
  ]);
  t.regex(status.error_message ?? '', /compensación REVERTIR_PAGO falló/);
});

test('timeout_minutos fails a saga stuck in a step and compensates what may have happened', async (t) => {
  // The payment service never answers within the saga's 3 s. (A shorter
  // deadline could strike, on a busy CI machine, before any step is called.)
  const gateway = new ScriptedGateway().on('POST /pagos', slow(60_000));
  const sagaId = await start(gateway, { timeoutMinutos: 0.05 });
  t.is(await waitForEstado(env, sagaId), S.COMPENSADA);
  const [row] = await env.query<{ error_message: string }>('select error_message from saga_log where id = $1', [sagaId]);
  t.regex(row?.error_message ?? '', /timeout_minutos \(0\.05\)/);
  // Every step that was called, answered or not, is undone, last first.
  const undo: Record<string, string> = {
    'POST /api/campaigns': 'PATCH /api/campaigns/:id/cancel',
    'POST /pagos': 'PATCH /pagos/:id/revertir',
  };
  const called = gateway.routes().filter((r) => r.startsWith('POST'));
  t.true(called.length >= 1);
  t.deepEqual(
    gateway.routes().filter((r) => r.startsWith('PATCH')),
    called.reverse().map((r) => undo[r]),
  );
});

// Operator actions, each through the mailbox to the saga's actor.

test('cancelar a saga waiting to retry a step compensates everything that may have had an effect', async (t) => {
  const gateway = new ScriptedGateway().on('POST /pagos', ...always());
  // The payment keeps being retried (for a minute) until the operator cancels.
  const sagaId = await start(gateway, { tipo: 'PACIENTE' });
  await waitUntil(() => gateway.calls.filter((c) => c.path === '/pagos').length >= 2);
  const decided = await act(sagaId, 'cancelar', { motivo: 'el cliente desistió' });
  t.is(decided.resultado, 'aceptada');
  t.is(await waitForEstado(env, sagaId), S.COMPENSADA);
  t.deepEqual(gateway.routes().filter((r) => r.startsWith('PATCH')), ['PATCH /pagos/:id/revertir', 'PATCH /api/campaigns/:id/cancel'],
    'the payment whose outcome is unknown is reverted too');
});

test('cancelar racing a call in flight lets the call finish, records it, and undoes it too', async (t) => {
  let answer!: () => void;
  const answered = new Promise<void>((r) => (answer = r));
  const gateway = new ScriptedGateway().on('POST /pagos', async () => {
    await answered;
    return { kind: 'ok', status: 201, resultado: { id: 'pago-1', estado: 'PROCESADO' } };
  });
  const sagaId = await start(gateway);
  await waitUntil(() => gateway.calls.some((c) => c.path === '/pagos'));
  const decided = await act(sagaId, 'cancelar', { motivo: 'error del operador' });
  t.is(decided.resultado, 'aceptada');
  t.is(await estadoOf(sagaId), S.CAMPANA_CREADA, 'nothing moves while the payment call is out');
  answer();
  t.is(await waitForEstado(env, sagaId), S.COMPENSADA);
  t.like((await pasos(env, sagaId))[1], { tipo: 'PROCESAR_PAGO', exitoso: true }, 'the call that took effect is recorded');
  t.deepEqual(gateway.routes().filter((r) => r.startsWith('PATCH')), ['PATCH /pagos/:id/revertir', 'PATCH /api/campaigns/:id/cancel']);
  t.false(gateway.routes().includes('POST /reporting'), 'no step after the cancel');
  const status = (await queries.status(sagaId))!;
  t.like(status.operaciones[0], { accion: 'cancelar', quien: 'ana', motivo: 'error del operador', resultado: 'aceptada' });
  t.regex(status.error_message ?? '', /cancelada por ana: error del operador/);
});

test('cancelar a finished saga is refused (409 at the route), and the refusal is audited', async (t) => {
  const sagaId = await start(new ScriptedGateway());
  await waitForEstado(env, sagaId);
  const decided = await act(sagaId, 'cancelar');
  t.is(decided.resultado, 'rechazada');
  t.regex(decided.detalle ?? '', /ya terminó/);
  t.is(await estadoOf(sagaId), S.COMPLETADA);
});

test('reintentar after COMPENSACION_FALLIDA runs the outstanding compensation again and ends COMPENSADA', async (t) => {
  const { gateway, up } = revertDownUntilUp();
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPENSACION_FALLIDA);
  up();
  const decided = await act(sagaId, 'reintentar', { motivo: 'Pagos volvió' });
  t.is(decided.resultado, 'aceptada');
  t.is(await waitForEstado(env, sagaId, [S.COMPENSADA]), S.COMPENSADA);
  const status = (await queries.status(sagaId))!;
  t.deepEqual(status.plan_compensacion.map((c) => c.estado), ['hecha', 'hecha']);
  t.deepEqual(status.compensaciones.map((c) => [c.tipo, c.exitoso]), [
    ['REVERTIR_PAGO', false],
    ['CANCELAR_CAMPANA', true],
    ['REVERTIR_PAGO', true],
  ], 'the history keeps the failed attempt');
});

test('omitir declares a failed compensation done by hand; the saga continues and ends COMPENSADA', async (t) => {
  const gateway = new ScriptedGateway()
    .on('POST /reporting', rejected(422, 'tipo_reporte no ofrecido'))
    .on('PATCH /pagos', rejected(409, 'pago ya liquidado'));
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPENSACION_FALLIDA);
  const decided = await act(sagaId, 'omitir', { compensacion: 'REVERTIR_PAGO', motivo: 'devuelto a mano por transferencia' });
  t.is(decided.resultado, 'aceptada');
  t.is(await waitForEstado(env, sagaId, [S.COMPENSADA]), S.COMPENSADA);
  const status = (await queries.status(sagaId))!;
  t.like(status.compensaciones.at(-1), { tipo: 'REVERTIR_PAGO', manual: true, exitoso: false });
  t.deepEqual(status.plan_compensacion, [
    { tipo: 'REVERTIR_PAGO', estado: 'omitida' },
    { tipo: 'CANCELAR_CAMPANA', estado: 'hecha' },
  ]);
});

test('omitir the compensation being retried lets the rest run at once', async (t) => {
  const gateway = new ScriptedGateway()
    .on('POST /reporting', rejected(422, 'tipo_reporte no ofrecido'))
    .on('PATCH /pagos', ...always());
  const sagaId = await start(gateway, { tipo: 'PACIENTE' });
  await waitUntil(() => gateway.calls.filter((c) => c.path.startsWith('/pagos/')).length >= 2);
  const decided = await act(sagaId, 'omitir', { compensacion: 'REVERTIR_PAGO', motivo: 'a mano' });
  t.is(decided.resultado, 'aceptada', decided.detalle ?? '');
  t.is(await waitForEstado(env, sagaId, [S.COMPENSADA]), S.COMPENSADA);
  t.true(gateway.routes().includes('PATCH /api/campaigns/:id/cancel'));
});

test('pausar stops new calls; reanudar goes on from where it stopped', async (t) => {
  let answer!: () => void;
  const answered = new Promise<void>((r) => (answer = r));
  const gateway = new ScriptedGateway().on('POST /pagos', async () => {
    await answered;
    return { kind: 'ok', status: 201, resultado: { id: 'p', estado: 'PROCESADO' } };
  });
  const sagaId = await start(gateway);
  await waitUntil(() => gateway.calls.some((c) => c.path === '/pagos'));
  t.is((await act(sagaId, 'pausar')).resultado, 'aceptada');
  answer();
  await waitForEstado(env, sagaId, [S.PAGO_PROCESADO]);
  await new Promise((r) => setTimeout(r, 300));
  t.false(gateway.routes().includes('POST /reporting'), 'no new call while paused');
  const paused = (await queries.status(sagaId))!;
  t.true(paused.pausada);
  t.false(paused.atascada, 'a paused saga is not stuck');
  t.is((await act(sagaId, 'reanudar')).resultado, 'aceptada');
  t.is(await waitForEstado(env, sagaId), S.COMPLETADA);
});

test('an operation id is decided once: a repeat returns the first decision', async (t) => {
  const gateway = new ScriptedGateway().on('POST /pagos', slow(60_000));
  const sagaId = await start(gateway);
  await waitUntil(() => gateway.calls.some((c) => c.path === '/pagos'));
  const req: OrderRequest = { operacionId: `once-${sagaId}`, sagaId, accion: 'pausar', quien: 'ana', motivo: '', requestId: null };
  await desk.submit(req);
  const first = await desk.decision(req, 10_000);
  const again = await desk.submit(req);
  t.like(again, { kind: 'decided', operacion: { id: first!.id, resultado: 'aceptada' } });
  t.is((await env.query('select 1 from saga_operaciones where id = $1', [req.operacionId])).length, 1);
  t.deepEqual(await desk.submit({ ...req, accion: 'reanudar' }), { kind: 'reused' });
  await act(sagaId, 'cancelar');
});

// Sagas the engine cannot handle are parked, not lost.

test('a saga whose handler throws is parked and visible; the other sagas of its batches finish', async (t) => {
  const boom = await start(new ScriptedGateway(), { tipo: 'CON_FALLO', nombre: 'BOOM' });
  const others = await Promise.all(Array.from({ length: 10 }, () => start(new ScriptedGateway(), { tipo: 'CON_FALLO' })));
  for (const id of others) t.is(await waitForEstado(env, id), S.COMPLETADA);
  await waitUntil(async () => (await queries.status(boom))?.aparcada !== null);
  const status = (await queries.status(boom))!;
  // The transition whose decision crashed (campaign recorded, payment started) was never committed.
  t.is(status.estado, S.INICIADA, 'it stays at its last committed state');
  t.regex(status.aparcada?.motivo ?? '', /bug in PROCESAR_PAGO/);
  t.true(status.atascada, 'a parked saga is listed among the stuck ones');
  t.true((await events(env, boom)).some((e) => e.tipo === 'SagaAparcada'));
  const metrics = await orchestrator.metrics.registry.metrics();
  t.regex(metrics, /^saga_parked_total\{tipo="CON_FALLO"\} 1$/m);
  t.regex(metrics, /^saga_stuck\{tipo="CON_FALLO",motivo="aparcada"\} 1$/m);
  const listed = await queries.list({ atascadas: true }, { pagina: 1, limite: 100 });
  t.true(listed.sagas.some((s) => s.saga_id === boom));
});

test('a saga with no transition long past its expected one is listed as stuck, with a gauge, until it moves', async (t) => {
  // Its payment call never returns (a wedged actor or connection): the saga log
  // expected a change within the call's 1 s timeout, and none comes.
  let answer: (o: CallOutcome) => void = () => undefined;
  const gateway = new ScriptedGateway().on('POST /pagos', () => new Promise<CallOutcome>((resolve) => (answer = resolve)));
  const id = await start(gateway, { tipo: 'COLGADA' });
  await waitUntil(async () => (await queries.status(id))?.estado === S.CAMPANA_CREADA);
  t.false((await queries.status(id))!.atascada, 'not stuck while within its expected time');
  await waitUntil(async () => (await queries.status(id))?.atascada === true, { timeoutMs: 60_000 });
  const listed = await queries.list({ atascadas: true }, { pagina: 1, limite: 100 });
  t.like(listed.sagas.find((s) => s.saga_id === id), { estado: S.CAMPANA_CREADA });
  t.regex(await orchestrator.metrics.registry.metrics(), /^saga_stuck\{tipo="COLGADA",motivo="sin_progreso"\} 1$/m);
  answer({ kind: 'ok', status: 201, resultado: { id: 'p', estado: 'PROCESADO' } });
  t.is(await waitForEstado(env, id), S.COMPLETADA);
  t.false((await queries.status(id))!.atascada);
});

test('a saga whose write PostgreSQL refuses for good is parked; the others in its batches commit', async (t) => {
  // A real permanent refusal: a check on the step rows of one saga.
  await env.query(`create table veneno (saga_id uuid primary key)`).catch(() => undefined);
  await env.query(`create or replace function veneno() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from veneno v where v.saga_id = new.saga_id) then
        raise exception 'fila rechazada' using errcode = '23514';
      end if;
      return new;
    end $$`);
  await env.query(`drop trigger if exists veneno on saga_pasos`);
  await env.query(`create trigger veneno before insert on saga_pasos for each row execute function veneno()`);
  t.teardown(() => env.query('drop trigger if exists veneno on saga_pasos'));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const held = () => new ScriptedGateway().on('POST /api/campaigns', async () => {
    await gate;
    return { kind: 'ok', status: 201, resultado: { id: 'c', estado: 'ACTIVA' } };
  });
  const poisoned = await start(held());
  await env.query('insert into veneno values ($1)', [poisoned]);
  const others = await Promise.all(Array.from({ length: 10 }, () => start(held())));
  release(); // all eleven answers arrive together: their writes share batches
  for (const id of others) t.is(await waitForEstado(env, id), S.COMPLETADA);
  await waitUntil(async () => (await queries.status(poisoned))?.aparcada !== null);
  const status = (await queries.status(poisoned))!;
  t.regex(status.aparcada?.motivo ?? '', /SQLSTATE 23514/);
  t.is(status.estado, S.INICIADA);
  // Once the cause is removed, an operator's reintentar finishes it.
  await env.query('delete from veneno where saga_id = $1', [poisoned]);
  t.is((await act(poisoned, 'reintentar')).resultado, 'aceptada');
  t.is(await waitForEstado(env, poisoned), S.COMPLETADA);
});

// Failed before issue 16's defect 2 was fixed: the order starts a fresh actor, which calls CREAR_CAMPANA
// for the order, then its resume saw that call in flight, counted it as interrupted, and called again.
test('reintentar on a saga parked by a refused write asks the unrecorded step once, and each later step once', async (t) => {
  await env.query(`create table if not exists veneno_reintentar (saga_id uuid primary key)`);
  await env.query(`create or replace function veneno_reintentar() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from veneno_reintentar v where v.saga_id = new.saga_id) then
        raise exception 'fila rechazada' using errcode = '23514';
      end if;
      return new;
    end $$`);
  await env.query(`drop trigger if exists veneno_reintentar on saga_pasos`);
  await env.query(`create trigger veneno_reintentar before insert on saga_pasos for each row execute function veneno_reintentar()`);
  t.teardown(() => env.query('drop trigger if exists veneno_reintentar on saga_pasos'));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const gateway = new ScriptedGateway().on('POST /api/campaigns', async () => {
    await gate;
    return { kind: 'ok', status: 201, resultado: { id: 'c', estado: 'ACTIVA' } };
  });
  const sagaId = await start(gateway);
  await env.query('insert into veneno_reintentar values ($1)', [sagaId]);
  release();
  await waitUntil(async () => (await queries.status(sagaId))?.aparcada !== null);
  await env.query('delete from veneno_reintentar where saga_id = $1', [sagaId]);
  const before = gateway.calls.length;
  t.is((await act(sagaId, 'reintentar')).resultado, 'aceptada');
  t.is(await waitForEstado(env, sagaId), S.COMPLETADA);
  t.deepEqual(
    gateway.calls.slice(before).map((c) => c.idempotencyKey),
    ['CREAR_CAMPANA', 'PROCESAR_PAGO', 'GENERAR_REPORTE'].map((tipo) => `${sagaId}:${tipo}:accion`),
    'one participant call per decision after reintentar',
  );
  t.like((await pasos(env, sagaId))[0], { tipo: 'CREAR_CAMPANA', exitoso: true, intentos: 1 });
});

test('participant text PostgreSQL cannot store is made storable, not fatal', async (t) => {
  const gateway = new ScriptedGateway().on('POST /pagos', rejected(422, 'monto\u0000 inválido \ud800'));
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPENSADA);
  t.is((await pasos(env, sagaId))[1]?.error, 'HTTP 422: monto inválido \ufffd');
});

// Serial: it restarts the file's orchestrator (serial tests run before the others).
test.serial('each restart during a call counts an attempt, so a crash loop reaches the retry limit', async (t) => {
  const gateway = new ScriptedGateway().on('POST /pagos', slow(600_000), slow(600_000), slow(600_000));
  const sagaId = await start(gateway, { tipo: 'PACIENTE' });
  await waitUntil(() => gateway.calls.some((c) => c.path === '/pagos'));
  const attempts = async () =>
    (await env.query<{ a: number }>(`select (snapshot->>'attempt')::int as a from saga_log where id = $1`, [sagaId]))[0]!.a;
  t.is(await attempts(), 1);
  // A second process resumes the saga as a process restarted after a crash would.
  for (let restart = 1; restart <= 2; restart++) {
    await orchestrator.stop();
    orchestrator = newOrchestrator();
    await orchestrator.start();
    await waitUntil(async () => (await attempts()) >= restart + 1);
  }
  t.is(await attempts(), 3, 'the two interrupted attempts count');
  await act(sagaId, 'cancelar');
});

async function estadoOf(sagaId: string): Promise<string> {
  return (await env.query<{ estado: string }>('select estado from saga_log where id = $1', [sagaId]))[0]!.estado;
}

