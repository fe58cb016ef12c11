// Several orchestrators on one saga log: shards are shared out by leases, sagas
// reach the process that holds their shard, and a process that lost its lease
// can change nothing. The tests run one at a time: each one's orchestrators take
// every shard of the database.
import test from 'ava';
import { Orchestrator } from '../src/orchestrator.js';
import { createPool } from '../src/persistence/pool.js';
import { FencedError, SagaStore } from '../src/persistence/saga-store.js';
import { SagaWriter } from '../src/persistence/saga-writer.js';
import { decide, type SagaSnapshot } from '../src/saga/machine.js';
import { DefinitionRegistry } from '../src/saga/registry.js';
import { SagaIntake } from '../src/saga-intake.js';
import { shardOf } from '../src/cluster/shards.js';
import { seedDatos } from './fixtures/requests.js';
import { campaignType, campaignV1, S as SagaState, TIPO } from './fixtures/sagas.js';
import { ScriptedGateway, transient } from './fakes/participants.js';
import { pasos, waitForEstado } from './helpers/sagas.js';
import { useTestEnv } from './helpers/system.js';
import { waitUntil } from './helpers/wait.js';

const env = useTestEnv(test);
const running = new Set<Orchestrator>();
test.afterEach.always(async () => {
  for (const o of running) await o.stop().catch(() => undefined);
  running.clear();
});

async function orchestrator(gateway: ScriptedGateway, nodeId: string, renewMs = 200): Promise<Orchestrator> {
  const o = new Orchestrator({
    db: env.db,
    gateway,
    types: [campaignType({ backoffScale: 0.01 })],
    log: env.log,
    commitRetryMs: 50,
    cluster: { nodeId, leaseMs: 1_500, renewMs, sweepMs: 500 },
  });
  running.add(o);
  await o.start();
  return o;
}

async function startSaga(o: Orchestrator): Promise<string> {
  const r = await o.startSaga('CREAR_CAMPANA_COMPLETA', seedDatos(), { timeoutMinutos: 30 });
  if (r.kind === 'keyReused') throw new Error('unexpected');
  return r.sagaId;
}

/** The cluster's waits: leases move over several renewal rounds. */
const settled = (cond: () => boolean | Promise<boolean>) => waitUntil(cond, { timeoutMs: 15_000 });

test.serial('two orchestrators share the 32 shards evenly and without overlap', async (t) => {
  const a = await orchestrator(new ScriptedGateway(), 'node-a');
  t.is(a.heldShards().length, 32, 'alone, a process holds every shard');
  const b = await orchestrator(new ScriptedGateway(), 'node-b');
  await settled(() => a.heldShards().length === 16 && b.heldShards().length === 16);
  const all = new Set([...a.heldShards(), ...b.heldShards()]);
  t.is(all.size, 32);
});

test.serial('a saga recorded outside the orchestrators (as the BFF does) runs in the process that holds its shard', async (t) => {
  const ga = new ScriptedGateway();
  const gb = new ScriptedGateway();
  const a = await orchestrator(ga, 'node-a');
  const b = await orchestrator(gb, 'node-b');
  await settled(() => a.heldShards().length === 16 && b.heldShards().length === 16);
  const pool = createPool(env.databaseUrl, 2, env.log);
  t.teardown(() => pool.end());
  const types = [campaignType()];
  const intake = new SagaIntake({
    store: new SagaStore(pool, new SagaWriter(pool, { announceSagas: true })),
    registry: new DefinitionRegistry(types.flatMap((x) => x.versions as never[])),
    types,
    log: env.log,
  });
  const start = async () => {
    const r = await intake.start({ tipo: TIPO, datos: seedDatos(), timeoutMinutos: 30 }, (id) => shardOf(id, 32));
    if (r.kind !== 'started') throw new Error(r.kind);
    return r.sagaId;
  };
  const ids = await Promise.all(Array.from({ length: 12 }, start));
  for (const id of ids) t.is(await waitForEstado(env, id), SagaState.COMPLETADA);
  const ranOnB = new Set(gb.calls.map((c) => c.idempotencyKey.split(':')[0]));
  const shardOfB = new Set(b.heldShards());
  const rows = await env.query<{ id: string; shard: number }>('select id, shard from saga_log where id = any($1)', [ids]);
  for (const r of rows) {
    t.is(ranOnB.has(r.id), shardOfB.has(r.shard), `saga ${r.id} of shard ${r.shard} ran where its shard is held`);
  }
  t.true(ranOnB.size > 0, 'some sagas reached one process through NOTIFY');
  t.true(ranOnB.size < ids.length, 'and some the other');
});

test.serial('a saga started through an orchestrator is placed in a shard it holds, and runs there', async (t) => {
  const ga = new ScriptedGateway();
  const a = await orchestrator(ga, 'node-a');
  const b = await orchestrator(new ScriptedGateway(), 'node-b');
  await settled(() => a.heldShards().length === 16 && b.heldShards().length === 16);
  const ids = await Promise.all(Array.from({ length: 8 }, () => startSaga(a)));
  for (const id of ids) t.is(await waitForEstado(env, id), SagaState.COMPLETADA);
  const rows = await env.query<{ shard: number }>('select shard from saga_log where id = any($1)', [ids]);
  t.true(rows.every((r) => a.heldShards().includes(r.shard)));
  t.is(new Set(ga.calls.map((c) => c.idempotencyKey.split(':')[0])).size, ids.length);
});

test.serial('when a process leaves, another takes its shards and resumes its sagas mid-step', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const first = new ScriptedGateway().on('POST /pagos', async () => {
    await held;
    return transient('the process left');
  });
  const a = await orchestrator(first, 'node-a');
  const sagaId = await startSaga(a);
  await settled(() => first.calls.some((c) => c.path === '/pagos'));
  const second = new ScriptedGateway();
  const b = await orchestrator(second, 'node-b');
  await a.stop(); // gives its leases back
  running.delete(a);
  release();
  t.is(await waitForEstado(env, sagaId), SagaState.COMPLETADA);
  await settled(() => b.heldShards().length === 32); // the rest follow over its next rounds
  t.deepEqual(second.routes(), ['POST /pagos', 'POST /reporting'], 'the campaign is not created again');
  t.is(second.calls[0]?.idempotencyKey, `${sagaId}:PROCESAR_PAGO:accion`, 'same key as the unanswered call');
});

test.serial('a process whose lease expired has its late write refused, stops, and the new owner finishes', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const first = new ScriptedGateway().on('POST /pagos', async () => {
    await held;
    return { kind: 'ok', status: 201, resultado: { id: 'p', estado: 'PROCESADO' } };
  });
  // node-a renews once a minute: after its first round it is as good as paused.
  const a = await orchestrator(first, 'node-a', 60_000);
  const sagaId = await startSaga(a);
  await settled(() => first.calls.some((c) => c.path === '/pagos'));
  // node-a is "paused": its leases run out without it noticing, and node-b takes over.
  await env.query(`update saga_shards set lease_until = now() - interval '1 second' where owner = 'node-a'`);
  await env.query(`delete from saga_nodes where node_id = 'node-a'`);
  const second = new ScriptedGateway();
  await orchestrator(second, 'node-b');
  const [shard] = await env.query<{ owner: string; epoch: string }>(
    'select owner, epoch from saga_shards where shard = (select shard from saga_log where id = $1)',
    [sagaId],
  );
  t.is(shard?.owner, 'node-b');
  t.is(await waitForEstado(env, sagaId), SagaState.COMPLETADA);
  const stepsBefore = await pasos(env, sagaId);
  // node-a wakes up with the payment's answer in hand: its commit must be refused.
  release();
  await settled(async () => !a.heldShards().includes(Number((await env.query<{ shard: number }>('select shard from saga_log where id = $1', [sagaId]))[0]?.shard)));
  t.deepEqual(await pasos(env, sagaId), stepsBefore, 'nothing node-a did after losing its lease was written');
  t.false(first.calls.some((c) => c.path === '/reporting'), 'node-a called nothing more for that saga');
});

test.serial('a commit carrying a stale epoch or an expired lease is refused', async (t) => {
  const hanging = new ScriptedGateway().on('POST /api/campaigns', () => new Promise(() => undefined));
  // No renewal round during the test: node-a must not take the shard back once its lease is expired below.
  const a = await orchestrator(hanging, 'node-a', 60_000);
  const sagaId = await startSaga(a);
  await settled(() => hanging.calls.length === 1); // the intent is committed; nothing moves after it
  const pool = createPool(env.databaseUrl, 1, env.log);
  t.teardown(() => pool.end());
  const store = new SagaStore(pool, new SagaWriter(pool));
  const stored = (await store.load(sagaId))!;
  const snapshot = stored.snapshot as SagaSnapshot;
  const [row] = await env.query<{ shard: number; epoch: string }>(
    'select s.shard, s.epoch from saga_shards s join saga_log l on l.shard = s.shard where l.id = $1',
    [sagaId],
  );
  const lease = { shard: row!.shard, owner: 'node-a', epoch: Number(row!.epoch) };
  const decision = decide(campaignV1(), seedDatos(), snapshot, { type: 'deadlineReached' }, {
    now: new Date(Date.now() + 3_600_000),
    random: () => 0.5,
    newId: () => '00000000-0000-4000-8000-00000000000a',
  });
  await t.throwsAsync(store.commit(sagaId, stored.version, decision, new Date(), { ...lease, epoch: lease.epoch - 1 }), {
    instanceOf: FencedError,
  });
  await t.throwsAsync(store.commit(sagaId, stored.version, decision, new Date(), { ...lease, owner: 'node-z' }), {
    instanceOf: FencedError,
  });
  await env.query('update saga_shards set lease_until = now() - interval \'1 second\' where shard = $1', [lease.shard]);
  await t.throwsAsync(store.commit(sagaId, stored.version, decision, new Date(), lease), { instanceOf: FencedError });
  const after = (await store.load(sagaId))!;
  t.is(after.version, stored.version, 'the snapshot is untouched');
  t.is((await env.query('select 1 from saga_events where saga_id = $1', [sagaId])).length, 1, 'only SagaIniciada');
  // Let the saga be finished by whoever holds the shard next, for the tests after this one.
  await env.query(`update saga_log set estado = 'COMPENSADA' where id = $1`, [sagaId]);
});
