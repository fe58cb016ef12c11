// A real orchestrator process killed with SIGKILL in the middle of a saga, and
// another one started on the same saga log: the saga finishes, and each
// participant effect happens once.
import test from 'ava';
import { derivedUuid } from '../src/saga/ids.js';
import { seedRequest } from './fixtures/requests.js';
import { events, pasos, waitForEstado } from './helpers/sagas.js';
import { startRoleProcess, type RoleProcess } from './helpers/processes.js';
import { useTestEnv } from './helpers/system.js';
import { waitUntil } from './helpers/wait.js';
import { addFault } from './helpers/faults.js';

const env = useTestEnv(test);
const processes: RoleProcess[] = [];
// Each test's processes go with it: a leftover one would hold shards of the next test's sagas.
test.afterEach.always(async () => {
  for (const p of processes.splice(0)) await p.kill('SIGKILL');
});

async function orchestratorProcess(participants: Record<string, string>): Promise<RoleProcess> {
  const p = await startRoleProcess('orchestrator', {
    DATABASE_URL: env.databaseUrl,
    CAMPAIGNS_URL: participants.campaigns!,
    PAGOS_URL: participants.pagos!,
    REPORTING_URL: participants.reporting!,
    SAGA_BACKOFF_SCALE: '0.05',
    // A killed process keeps its leases until they expire: keep that short here.
    SHARD_LEASE_MS: '2000',
    SHARD_RENEW_MS: '400',
    SAGA_SWEEP_MS: '1000',
  });
  processes.push(p);
  return p;
}

// Serial: a new orchestrator process resumes every unfinished saga in the database.
test.serial('killed between the payment and its record, a new process finishes the saga with one payment', async (t) => {
  const participants = (await env.participants()).urls;
  // The payment service makes the payment, then takes 1.5 s to answer: long
  // enough to kill the caller between the effect and its record.
  await addFault(participants.pagos!, { route: 'POST /pagos', delayMs: 1_500, delayPhase: 'response' });
  const first = await orchestratorProcess(participants);
  const res = await fetch(`${first.url}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(seedRequest()),
  });
  t.is(res.status, 200);
  const { saga_id: sagaId } = (await res.json()) as { saga_id: string };

  // Killed once the payment is made, while its answer is held back: the orchestrator never hears of it.
  // (Killed at CAMPAÑA_CREADA instead, it could die before its call left, and no payment would be made.)
  const paymentId = derivedUuid(sagaId, 'PROCESAR_PAGO');
  await waitUntil(async () => (await env.query('select 1 from participantes.pagos where id = $1', [paymentId])).length === 1);
  await first.kill('SIGKILL');
  t.is((await pasos(env, sagaId)).length, 1, 'only the campaign step was recorded');

  const second = await orchestratorProcess(participants);
  t.is(await waitForEstado(env, sagaId), 'COMPLETADA');
  t.true(second.logs.some((l) => l.msg === 'resuming unfinished sagas'));

  const payments = await env.query('select id from participantes.pagos where saga_id = $1', [sagaId]);
  t.is(payments.length, 1, 'the payment was made once');
  const campaigns = await env.query('select id from participantes.campanas where saga_id = $1', [sagaId]);
  t.is(campaigns.length, 1, 'the campaign was created once');
  t.deepEqual((await pasos(env, sagaId)).map((p) => [p.tipo, p.exitoso]), [
    ['CREAR_CAMPANA', true],
    ['PROCESAR_PAGO', true],
    ['GENERAR_REPORTE', true],
  ]);
  const seqs = (await events(env, sagaId)).map((e) => e.secuencia);
  t.deepEqual(seqs, seqs.map((_, i) => i + 1), 'no event lost or repeated');
});

test.serial('a saga whose timeout_minutos expired while no orchestrator ran fails and compensates on restart', async (t) => {
  const participants = (await env.participants()).urls;
  // The payment hangs: the saga waits in CAMPAÑA_CREADA until the process is killed.
  await addFault(participants.pagos!, { route: 'POST /pagos', delayMs: 10_000 });
  const first = await orchestratorProcess(participants);
  const res = await fetch(`${first.url}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // 3 s: room for a freshly started process on a busy machine to create the campaign first.
    body: JSON.stringify({ ...seedRequest(), timeout_minutos: 0.05 }),
  });
  const { saga_id: sagaId } = (await res.json()) as { saga_id: string };
  await waitForEstado(env, sagaId, ['CAMPAÑA_CREADA']);
  await first.kill('SIGKILL');
  // The deadline passes with nobody running.
  await waitUntil(async () => {
    const [row] = await env.query<{ passed: boolean }>('select fecha_limite < now() as passed from saga_log where id = $1', [sagaId]);
    return row?.passed === true;
  });

  await orchestratorProcess(participants);
  t.is(await waitForEstado(env, sagaId), 'COMPENSADA');
  const comps = await pasos(env, sagaId, 'saga_compensaciones');
  t.deepEqual(comps.map((c) => c.tipo), ['REVERTIR_PAGO', 'CANCELAR_CAMPANA']);
  const [campaign] = await env.query<{ estado: string }>('select estado from participantes.campanas where saga_id = $1', [sagaId]);
  t.is(campaign?.estado, 'CANCELADA');
  const tipos = (await events(env, sagaId)).map((e) => e.tipo);
  t.is(tipos.filter((x) => x === 'SagaCompensacionIniciada').length, 1, 'compensated once');
});

