// Saga definitions as versioned data: a deploy of a new version never moves a
// saga in flight onto other steps, a process leaves alone the sagas of versions
// it does not have (and one that has them finishes them), and an operator may
// move a saga to another version at a step boundary.
import test from 'ava';
import { createToken } from '../src/operator/tokens.js';
import { derivedUuid } from '../src/saga/ids.js';
import { createPool } from '../src/persistence/pool.js';
import type { Role } from '../src/roles.js';
import { seedRequest } from './fixtures/requests.js';
import { campaignTypeWith } from './fixtures/campaign-v2.js';
import { startResourceService, type ResourceService } from './fakes/resource-service.js';
import { pasos, waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';
import { addFault, clearFaults, type FaultRuleRequest } from './helpers/faults.js';
import { waitUntil } from './helpers/wait.js';

const env = useTestEnv(test);
const POLICIES = { backoffScale: 0.05, stepBudgetMs: 20_000, compensationBudgetMs: 20_000 };
let participantEnv: Record<string, string> = {};
let app = '';
let medios: ResourceService;
let operador = '';

test.before(async () => {
  const participants = await env.participants();
  app = participants.urls.pagos!;
  medios = await startResourceService({ basePath: '/medios', compensation: 'liberar' });
  participantEnv = { ...participants.participantEnv, MEDIOS_URL: medios.url };
  const pool = createPool(env.databaseUrl, 1, env.log);
  operador = await createToken(pool, 'ana', 'operador');
  await pool.end();
});
test.after.always(async () => {
  await medios?.close();
});

/** A build that runs `versions` of the campaign saga: an orchestrator and a BFF. */
async function build(versions: (1 | 2)[], backoffScale = 0.05): Promise<{ orchestrator: Role; bff: string }> {
  const types = [campaignTypeWith(versions, { ...POLICIES, backoffScale })];
  const orchestrator = await env.orchestrator({ types, participantEnv, config: { SAGA_BACKOFF_SCALE: String(backoffScale) } });
  const bff = (await env.bff({ types })).urls.bff!;
  return { orchestrator, bff };
}

async function post(bff: string, body: unknown): Promise<string> {
  const res = await fetch(`${bff}/saga/crear-campana-completa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as { saga_id: string };
  if (res.status !== 200) throw new Error(`POST ${res.status}: ${JSON.stringify(json)}`);
  return json.saga_id;
}

const fault = (route: string, rule: Omit<FaultRuleRequest, 'route'>) => addFault(app, { route, ...rule });

const refusedReport = () => {
  const body = seedRequest();
  body.reporte.tipo_reporte = 'inexistente';
  return body;
};

const versionOf = async (id: string) =>
  (await env.query<{ v: number }>('select version_definicion as v from saga_log where id = $1', [id]))[0]?.v;

async function live(table: string, sagaId: string): Promise<string | undefined> {
  return (await env.query<{ estado: string }>(`select estado from participantes.${table} where saga_id = $1`, [sagaId]))[0]?.estado;
}

test.serial('a deploy of version 2 mid-flight: v1 sagas end on v1 steps, new sagas run v2, a failing v2 saga releases its media', async (t) => {
  const old = await build([1]);
  // Three v1 sagas wait for a slow payment when the new version is deployed.
  await fault('POST /pagos', { delayMs: 2_500, times: 3 });
  const v1 = [await post(old.bff, seedRequest()), await post(old.bff, seedRequest()), await post(old.bff, refusedReport())];
  for (const id of v1) await waitForEstado(env, id, ['CAMPAÑA_CREADA']);
  // The deploy: the old build leaves, the new one (v1 and v2) arrives.
  await old.orchestrator.stop();
  const fresh = await build([1, 2]);
  const v2 = [await post(fresh.bff, seedRequest()), await post(fresh.bff, refusedReport())];
  for (const id of [...v1, ...v2]) await waitForEstado(env, id, ['COMPLETADA', 'COMPENSADA'], 30_000);

  for (const id of v1) {
    t.is(await versionOf(id), 1);
    t.false((await pasos(env, id)).some((p) => p.tipo === 'RESERVAR_MEDIOS'), 'a v1 saga never runs a v2 step');
    t.false(medios.effects.some(([resource]) => resource === derivedUuid(id, 'RESERVAR_MEDIOS')), 'nor calls its participant');
  }
  t.is(await live('campanas', v1[0]!), 'ACTIVA');
  t.is(await live('pagos', v1[0]!), 'PROCESADO');
  t.is(await live('reportes', v1[0]!), 'GENERADO');
  const failedV1 = await pasos(env, v1[2]!, 'saga_compensaciones');
  t.deepEqual(failedV1.map((c) => c.tipo), ['REVERTIR_PAGO', 'CANCELAR_CAMPANA'], 'v1 undoes only v1 steps');
  t.is(await live('pagos', v1[2]!), 'REVERTIDO');
  t.is(await live('campanas', v1[2]!), 'CANCELADA');

  for (const id of v2) t.is(await versionOf(id), 2);
  t.deepEqual((await pasos(env, v2[0]!)).map((p) => p.tipo), ['CREAR_CAMPANA', 'PROCESAR_PAGO', 'RESERVAR_MEDIOS', 'GENERAR_REPORTE']);
  t.deepEqual((await pasos(env, v2[1]!, 'saga_compensaciones')).map((c) => c.tipo), ['LIBERAR_MEDIOS', 'REVERTIR_PAGO', 'CANCELAR_CAMPANA']);
  t.deepEqual(medios.live(), [derivedUuid(v2[0]!, 'RESERVAR_MEDIOS')], 'the completed v2 saga keeps its media; the failed one released them');

  const defs = (await (await fetch(`${fresh.bff}/definiciones`)).json()) as { definiciones: { version: number; vigente: boolean; en_curso: number; pasos: { tipo: string }[] }[] };
  t.deepEqual(defs.definiciones.map((d) => [d.version, d.vigente, d.en_curso]), [[1, false, 0], [2, true, 0]], 'version 1 is drained');
  t.deepEqual(defs.definiciones[1]!.pasos.map((p) => p.tipo), ['CREAR_CAMPANA', 'PROCESAR_PAGO', 'RESERVAR_MEDIOS', 'GENERAR_REPORTE']);
  await fresh.orchestrator.stop();
});

test.serial('a process without v1 leaves a v1 saga alone and visible; a process with v1 finishes it', async (t) => {
  const old = await build([1]);
  await fault('POST /pagos', { delayMs: 1_500, times: 1 });
  const sagaId = await post(old.bff, seedRequest());
  await waitForEstado(env, sagaId, ['CAMPAÑA_CREADA']);
  await old.orchestrator.stop();
  const [{ version: before }] = await env.query<{ version: number }>('select version from saga_log where id = $1', [sagaId]) as [{ version: number }];

  const v2only = await build([2]);
  await new Promise((r) => setTimeout(r, 2_500));
  const [row] = await env.query<{ version: number; estado: string }>('select version, estado from saga_log where id = $1', [sagaId]);
  t.is(row?.version, before, 'not written by a process without its version');
  t.is(row?.estado, 'CAMPAÑA_CREADA');
  const status = (await (await fetch(`${v2only.bff}/saga/${sagaId}/status`)).json()) as { esperando_version: boolean; atascada: boolean };
  t.true(status.esperando_version);
  t.true(status.atascada);
  const stuck = (await (await fetch(`${v2only.bff}/saga/?atascadas=true`)).json()) as { sagas: { saga_id: string }[] };
  t.true(stuck.sagas.some((s) => s.saga_id === sagaId), 'listed among the stuck sagas');
  const metrics = await (await fetch(`${v2only.orchestrator.urls.orchestrator!}/metrics`)).text();
  t.regex(metrics, /^saga_stuck\{tipo="CREAR_CAMPANA_COMPLETA",motivo="esperando_version"\} 1$/m);

  const both = await build([1, 2]);
  t.is(await waitForEstado(env, sagaId, ['COMPLETADA'], 30_000), 'COMPLETADA');
  t.is(await versionOf(sagaId), 1);
  t.false((await pasos(env, sagaId)).some((p) => p.tipo === 'RESERVAR_MEDIOS'));
  await v2only.orchestrator.stop();
  await both.orchestrator.stop();
});

test.serial('an operator moves a saga to version 2 at a step boundary; it then runs the v2 steps', async (t) => {
  const built = await build([1, 2]);
  // A v1 saga (started by a v1-only BFF) whose payment answers 503 for a while: it waits between attempts.
  const v1Bff = (await env.bff({ types: [campaignTypeWith([1], POLICIES)] })).urls.bff!;
  await fault('POST /pagos', { status: 503, times: 30 });
  const sagaId = await post(v1Bff, seedRequest());
  await waitForEstado(env, sagaId, ['CAMPAÑA_CREADA']);
  let res: Response | undefined;
  for (let i = 0; i < 20; i++) {
    res = await fetch(`${built.bff}/saga/${sagaId}/migrar`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${operador}` },
      body: JSON.stringify({ version: 2, motivo: 'reservar medios también' }),
    });
    if (res.status === 200) break; // 409 while a payment attempt is in flight: not a step boundary
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(res?.status, 200);
  await clearFaults(app);
  t.is(await waitForEstado(env, sagaId, ['COMPLETADA'], 30_000), 'COMPLETADA');
  t.is(await versionOf(sagaId), 2);
  t.deepEqual((await pasos(env, sagaId)).map((p) => p.tipo), ['CREAR_CAMPANA', 'PROCESAR_PAGO', 'RESERVAR_MEDIOS', 'GENERAR_REPORTE']);
  await built.orchestrator.stop();
});

test.serial('migrar moves a saga whose version no live process has to a version one has; it then finishes there', async (t) => {
  // A v1 saga waiting between two payment attempts, and no process with v1 any more.
  // Retries seconds apart, and stopped while none is in flight: a stop during an attempt would leave the
  // attempt's outcome unknown, and migrar waits for a step boundary that no process could then reach.
  const old = await build([1], 1);
  await fault('POST /pagos', { status: 503, times: 1_000 });
  const sagaId = await post(old.bff, seedRequest());
  await waitForEstado(env, sagaId, ['CAMPAÑA_CREADA']);
  const betweenAttempts = async () => {
    const [row] = await env.query<{ snapshot: { inFlight: boolean; retryAt: string | null } }>('select snapshot from saga_log where id = $1', [sagaId]);
    const retryAt = row?.snapshot.retryAt;
    return row?.snapshot.inFlight === false && retryAt != null && Date.parse(retryAt) - Date.now() > 500;
  };
  const until = Date.now() + 20_000;
  while (!(await betweenAttempts()) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await old.orchestrator.stop();
  const v2only = await build([2]);
  let res: Response | undefined;
  for (let i = 0; i < 40; i++) {
    res = await fetch(`${v2only.bff}/saga/${sagaId}/migrar`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${operador}` },
      body: JSON.stringify({ version: 2, motivo: 'v1 ya no se despliega' }),
    });
    if (res.status !== 409) break; // 409 while a payment attempt is in flight: not a step boundary
    await new Promise((r) => setTimeout(r, 100));
  }
  t.is(res?.status, 200, 'decided by the process that has only the target version');
  await clearFaults(app);
  t.is(await waitForEstado(env, sagaId, ['COMPLETADA'], 30_000), 'COMPLETADA');
  t.is(await versionOf(sagaId), 2);
  await v2only.orchestrator.stop();
});

test.serial('a BFF built with version 2 starts sagas on version 1 while no orchestrator runs version 2, and they finish', async (t) => {
  const v1only = await env.orchestrator({ types: [campaignTypeWith([1], POLICIES)], participantEnv, config: { SAGA_BACKOFF_SCALE: '0.05' } });
  t.teardown(() => v1only.stop());
  const bff = (await env.bff({ types: [campaignTypeWith([1, 2], POLICIES)] })).urls.bff!;
  const ids = [await post(bff, seedRequest()), await post(bff, seedRequest())];
  for (const id of ids) {
    t.is(await versionOf(id), 1, 'the newest version an orchestrator runs, not one nobody runs');
    t.is(await waitForEstado(env, id, ['COMPLETADA'], 15_000), 'COMPLETADA');
  }
});

test.serial('with one orchestrator on v1 and another on v1 and v2, a new saga starts on v2 in a shard of the one that runs v2', async (t) => {
  const config = { SAGA_BACKOFF_SCALE: '0.05' };
  const old = await env.orchestrator({ types: [campaignTypeWith([1], POLICIES)], participantEnv, config });
  const both = await env.orchestrator({ types: [campaignTypeWith([1, 2], POLICIES)], participantEnv, config });
  t.teardown(async () => {
    await old.stop();
    await both.stop();
  });
  const deadline = Date.now() + 15_000;
  while (!(old.orchestrator.heldShards().length === 16 && both.orchestrator.heldShards().length === 16) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(both.orchestrator.heldShards().length, 16, 'the two share the shards');
  const bff = (await env.bff({ types: [campaignTypeWith([1, 2], POLICIES)] })).urls.bff!;
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const id = await post(bff, seedRequest());
    ids.push(id);
    const [row] = await env.query<{ owner: string; v: number }>(
      `select s.owner, l.version_definicion as v from saga_log l join saga_shards s on s.shard = l.shard where l.id = $1`,
      [id],
    );
    t.is(row?.v, 2);
    t.is(row?.owner, both.orchestrator.nodeId, `saga ${i} is placed where v2 runs`);
  }
  for (const id of ids) t.is(await waitForEstado(env, id, ['COMPLETADA'], 30_000), 'COMPLETADA');
});

test.serial('a shard holding v1 and v2 sagas with no process running both waits visibly on its holder, and moves to a process that runs both when one comes', async (t) => {
  const config = { SAGA_BACKOFF_SCALE: '0.05' };
  const start = (versions: (1 | 2)[]) => env.orchestrator({ types: [campaignTypeWith(versions, POLICIES)], participantEnv, config });
  const first = await start([1, 2]);
  // A v1 saga (from a BFF of the old build) and a v2 saga, both left waiting on a slow payment.
  await fault('POST /pagos', { delayMs: 1_500, times: 2 });
  const v1 = await post((await env.bff({ types: [campaignTypeWith([1], POLICIES)] })).urls.bff!, seedRequest());
  const v2 = await post((await env.bff({ types: [campaignTypeWith([1, 2], POLICIES)] })).urls.bff!, seedRequest());
  for (const id of [v1, v2]) await waitForEstado(env, id, ['CAMPAÑA_CREADA']);
  await first.stop();
  // Both in one shard, as two BFFs can place them in a shard whose holder runs both versions.
  await env.query('update saga_log set shard = (select shard from saga_log where id = $1) where id = $2', [v1, v2]);
  const [{ shard }] = (await env.query<{ shard: number }>('select shard from saga_log where id = $1', [v1])) as [{ shard: number }];
  // The holder's own saga stays in its payment a while, so its shard keeps needing both versions.
  await fault('POST /pagos', { delayMs: 6_000, times: 1 });

  const onlyV1 = await start([1]);
  const onlyV2 = await start([2]);
  const roles = [onlyV1, onlyV2];
  t.teardown(async () => {
    for (const role of roles) await role.stop();
  });
  const holder = async () =>
    (await env.query<{ owner: string }>('select owner from saga_shards where shard = $1 and lease_until > now()', [shard]))[0]?.owner;
  await waitUntil(async () => (await holder()) !== undefined, { what: `a holder for shard ${shard}` });
  const owner = await holder();
  t.true(owner === onlyV1.orchestrator.nodeId || owner === onlyV2.orchestrator.nodeId, 'one of them holds it, to run what it can');
  const [waitingOn, missing] = owner === onlyV1.orchestrator.nodeId ? [onlyV1, 'CREAR_CAMPANA_COMPLETA@2'] : [onlyV2, 'CREAR_CAMPANA_COMPLETA@1'];
  const metrics = await (await fetch(`${waitingOn.urls.orchestrator!}/metrics`)).text();
  t.regex(metrics, new RegExp(`^saga_shard_version_missing\\{shard="${shard}",version="${missing}"\\} 1$`, 'm'), 'its waiting saga is counted, with shard and version');

  const both = await start([1, 2]);
  roles.push(both);
  await waitUntil(async () => (await holder()) === both.orchestrator.nodeId, { what: 'the shard to reach the process with both versions', timeoutMs: 5_000 });
  for (const id of [v1, v2]) t.is(await waitForEstado(env, id, ['COMPLETADA'], 30_000), 'COMPLETADA');
});
