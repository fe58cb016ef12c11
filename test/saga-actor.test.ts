// The saga actors under their supervisor, on a real saga log, with the
// participant services replaced by a scripted gateway.
import test from 'ava';
import { Orchestrator } from '../src/orchestrator.js';
import { crearCampanaCompleta } from '../src/sagas/crear-campana-completa/definition.js';
import { SagaState } from '../src/saga/states.js';
import { seedDatos } from './fixtures/requests.js';
import { rejected, RoutingGateway, ScriptedGateway, slow, transient } from './fakes/participants.js';
import { events, pasos, waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
const router = new RoutingGateway();
let orchestrator: Orchestrator;
/** Sagas whose actor reported done and was stopped. */
const finished = new Set<string>();

test.before(async () => {
  await env.ready();
  // One orchestrator for the file, holding every shard; each test scripts the
  // participants of its own saga through the router.
  orchestrator = new Orchestrator({
    db: env.db,
    gateway: router,
    definitions: [crearCampanaCompleta({ backoffScale: 0.01, callTimeoutMs: 60_000 })],
    log: env.log,
    commitRetryMs: 50,
    cluster: { leaseMs: 5_000, sweepMs: 60_000 },
  });
  orchestrator.onSagaDone((sagaId) => finished.add(sagaId));
  await orchestrator.start();
});
test.after.always(async () => {
  await orchestrator?.stop();
});

async function start(gateway: ScriptedGateway, opts: { timeoutMinutos?: number } = {}): Promise<string> {
  const result = await orchestrator.startSaga('CREAR_CAMPANA_COMPLETA', seedDatos(), {
    timeoutMinutos: opts.timeoutMinutos ?? 30,
  });
  if (result.kind === 'keyReused') throw new Error('unexpected');
  router.register(result.sagaId, gateway);
  return result.sagaId;
}

test('happy path: three steps in order, COMPLETADA, and the actor is stopped', async (t) => {
  const gateway = new ScriptedGateway();
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), SagaState.COMPLETADA);
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
  { at: 'POST /api/campaigns', failed: 'CREAR_CAMPANA', compensations: [] },
  { at: 'POST /pagos', failed: 'PROCESAR_PAGO', compensations: ['PATCH /api/campaigns/:id/cancel'] },
  { at: 'POST /reporting', failed: 'GENERAR_REPORTE', compensations: ['PATCH /pagos/:id/revertir', 'PATCH /api/campaigns/:id/cancel'] },
];

for (const f of failures) {
  test(`a business refusal of ${f.failed} compensates the completed steps in reverse order`, async (t) => {
    const gateway = new ScriptedGateway().on(f.at, rejected(422, `${f.failed} rechazado`));
    const sagaId = await start(gateway);
    t.is(await waitForEstado(env, sagaId), SagaState.COMPENSADA);
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
  t.is(await waitForEstado(env, sagaId), SagaState.COMPLETADA);
  const payments = gateway.calls.filter((c) => c.path === '/pagos');
  t.is(payments.length, 3);
  t.deepEqual(new Set(payments.map((c) => c.idempotencyKey)), new Set([`${sagaId}:PROCESAR_PAGO:accion`]));
  t.like((await pasos(env, sagaId))[1], { tipo: 'PROCESAR_PAGO', exitoso: true, intentos: 3 });
});

test('a step that stays unavailable fails the saga, and its possible effect is compensated too', async (t) => {
  const gateway = new ScriptedGateway().on('POST /pagos', transient(), transient(), transient(), transient());
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), SagaState.COMPENSADA);
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
  t.is(await waitForEstado(env, sagaId), SagaState.COMPENSADA);
  const comps = await pasos(env, sagaId, 'saga_compensaciones');
  t.deepEqual(comps.map((c) => [c.tipo, c.exitoso, c.intentos]), [
    ['REVERTIR_PAGO', true, 4],
    ['CANCELAR_CAMPANA', true, 1],
  ]);
});

test('a compensation that never succeeds ends in COMPENSACION_FALLIDA after its retries', async (t) => {
  const gateway = new ScriptedGateway()
    .on('POST /pagos', rejected(422, 'pago rechazado'))
    .on('PATCH /api/campaigns', ...Array.from({ length: 12 }, () => transient()));
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), SagaState.COMPENSACION_FALLIDA);
  t.is(gateway.routes().filter((r) => r.startsWith('PATCH')).length, 12);
  const [row] = await env.query<{ error_message: string }>('select error_message from saga_log where id = $1', [sagaId]);
  t.regex(row?.error_message ?? '', /compensación CANCELAR_CAMPANA falló/);
});

test('timeout_minutos fails a saga stuck in a step and compensates what may have happened', async (t) => {
  // The payment service never answers within the saga's 3 s. (A shorter
  // deadline could strike, on a busy CI machine, before any step is called.)
  const gateway = new ScriptedGateway().on('POST /pagos', slow(60_000));
  const sagaId = await start(gateway, { timeoutMinutos: 0.05 });
  t.is(await waitForEstado(env, sagaId), SagaState.COMPENSADA);
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

async function waitUntil(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
