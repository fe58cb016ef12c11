// Holes in the saga promise that the simulator found or was built to find
// (npm run test:sim), each shown here on the real actor, supervisor and saga
// log: one call per decision after an order, every order on an ended saga
// decided at once, a snapshot that cannot be read parked with its reason.
import test from 'ava';
import { Orchestrator } from '../src/orchestrator.js';
import { OrderDesk, type OrderRequest } from '../src/operator/orders.js';
import { SagaChanges } from '../src/cluster/saga-changes.js';
import { createPool } from '../src/persistence/pool.js';
import { seedDatos } from './fixtures/requests.js';
import { campaignType, S, TIPO } from './fixtures/sagas.js';
import { revertDownUntilUp, RoutingGateway, ScriptedGateway, transient } from './fakes/participants.js';
import { waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';
import { waitUntil } from './helpers/wait.js';
import type pg from 'pg';

const env = useTestEnv(test);
const router = new RoutingGateway();
let orchestrator: Orchestrator;
let desk: OrderDesk;
let pool: pg.Pool;
let changes: SagaChanges;

const POLICIES = { backoffScale: 0.01, callTimeoutMs: 60_000, stepBudgetMs: 1_500, compensationBudgetMs: 1_500 };

/** An orchestrator over the test's saga log, its participants scripted per saga; `sweepMs`: how often it sweeps. */
async function startOrchestrator(sweepMs: number): Promise<Orchestrator> {
  const o = new Orchestrator({
    db: env.db,
    gateway: router,
    types: [campaignType(POLICIES)],
    log: env.log,
    commitRetryMs: 50,
    cluster: { leaseMs: 5_000, sweepMs },
  });
  await o.start();
  return o;
}

test.before(async () => {
  await env.ready();
  // A sweep far slower than the answers expected: an order must not wait for it.
  orchestrator = await startOrchestrator(60_000);
  pool = createPool(env.databaseUrl, 4, env.log);
  changes = new SagaChanges(env.databaseUrl, env.log);
  await changes.start();
  desk = new OrderDesk(pool, changes);
});
test.after.always(async () => {
  await orchestrator?.stop();
  await changes?.stop();
  await pool?.end();
});

async function start(gateway: ScriptedGateway): Promise<string> {
  const result = await orchestrator.startSaga(TIPO, seedDatos(), { timeoutMinutos: 30 });
  if (result.kind === 'keyReused') throw new Error('unexpected');
  router.register(result.sagaId, gateway);
  return result.sagaId;
}

const order = (sagaId: string, accion: OrderRequest['accion'], n = 0): OrderRequest => ({
  operacionId: `${accion}-${sagaId}-${n}`,
  sagaId,
  accion,
  quien: 'ana',
  motivo: 'prueba',
  requestId: null,
});

test('reintentar after COMPENSACION_FALLIDA calls the participant once, and records one attempt', async (t) => {
  const { gateway, up } = revertDownUntilUp();
  const sagaId = await start(gateway);
  t.is(await waitForEstado(env, sagaId), S.COMPENSACION_FALLIDA);
  up();
  const before = gateway.routes().filter((r) => r === 'PATCH /pagos/:id/revertir').length;
  const req = order(sagaId, 'reintentar');
  await desk.submit(req);
  t.like(await desk.decision(req, 10_000), { resultado: 'aceptada' });
  t.is(await waitForEstado(env, sagaId, [S.COMPENSADA]), S.COMPENSADA);
  t.is(gateway.routes().filter((r) => r === 'PATCH /pagos/:id/revertir').length - before, 1, 'one revert call for the one decision');
  const rows = await env.query<{ intentos: number }>(
    "select intentos from saga_compensaciones where saga_id = $1 and tipo = 'REVERTIR_PAGO' and exitoso",
    [sagaId],
  );
  t.deepEqual(rows.map((r) => r.intentos), [1]);
});

test('twenty orders at once on a COMPLETADA saga are each refused at once, none left pending', async (t) => {
  const sagaId = await start(new ScriptedGateway());
  t.is(await waitForEstado(env, sagaId, [S.COMPLETADA]), S.COMPLETADA);
  const reqs = Array.from({ length: 20 }, (_, i) => order(sagaId, 'cancelar', i));
  await Promise.all(reqs.map((r) => desk.submit(r)));
  const decided = await Promise.all(reqs.map((r) => desk.decision(r, 3_000)));
  t.deepEqual(
    decided.map((d) => d?.resultado ?? 'pendiente'),
    reqs.map(() => 'rechazada'),
  );
  const [left] = await env.query<{ n: number }>('select count(*)::int as n from saga_ordenes where saga_id = $1', [sagaId]);
  t.is(left?.n, 0, 'the mailbox is empty');
});

// Serial: it stops and replaces the shared orchestrator, which would interrupt the sagas of tests running beside it.
test.serial('a saga whose stored snapshot cannot be read is parked with the reason, not respawned for ever', async (t) => {
  const sagaId = await start(new ScriptedGateway().on('POST /pagos', ...Array.from({ length: 2_000 }, () => transient())));
  await waitForEstado(env, sagaId, [S.CAMPANA_CREADA]);
  // A snapshot of the old format whose step positions this definition does not have.
  await orchestrator.stop();
  await env.query(
    `update saga_log set snapshot = jsonb_build_object('sagaId', id::text, 'tipo', tipo, 'estado', estado, 'phase', 'forward',
       'cursor', 7, 'attempt', 1, 'inFlight', false, 'retryAt', null, 'mayHaveEffect', '[0]'::jsonb,
       'compensationPlan', '[]'::jsonb, 'results', '{}'::jsonb, 'errorMessage', null, 'timeoutMinutos', 30,
       'startedAt', fecha_inicio, 'deadline', fecha_limite, 'finishedAt', null, 'lastEventSeq', (snapshot->>'lastEventSeq')::int)
     where id = $1`,
    [sagaId],
  );
  orchestrator = await startOrchestrator(200);
  await waitUntil(async () => {
    const [row] = await env.query<{ aparcada: string | null }>('select aparcada from saga_log where id = $1', [sagaId]);
    return row?.aparcada != null;
  }, { timeoutMs: 15_000, what: 'the saga to be parked' });
  const [row] = await env.query<{ aparcada: string; estado: string }>('select aparcada, estado from saga_log where id = $1', [sagaId]);
  t.regex(row!.aparcada, /la instantánea de la SAGA no se puede leer: .*no step 7/);
  t.is(row!.estado, S.CAMPANA_CREADA);
  const events = await env.query<{ tipo: string }>('select tipo from saga_events where saga_id = $1 order by secuencia', [sagaId]);
  t.is(events.at(-1)?.tipo, 'SagaAparcada');
});
