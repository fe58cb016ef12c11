// How a saga's row is stored, step after step: each step's result once (in its
// saga_pasos row, not again in every later snapshot), and a step's update of
// the row as a heap-only tuple (no index entry written).
import test from 'ava';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { shardOf, type ShardLease } from '../src/cluster/shards.js';
import { createPool } from '../src/persistence/pool.js';
import { SagaStore } from '../src/persistence/saga-store.js';
import { SagaWriter } from '../src/persistence/saga-writer.js';
import { decide, type Decision } from '../src/saga/machine.js';
import type { Effect, SagaMessage } from '../src/saga/decision.js';
import type { CallOutcome } from '../src/saga/definition.js';
import type { SagaSnapshot } from '../src/saga/snapshot.js';
import { campaignV1, newCampaignWrite, S } from './fixtures/sagas.js';
import { seedDatos } from './fixtures/requests.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
const def = campaignV1();
const LEASE: ShardLease = { shard: 0, owner: 'node-a', epoch: 1 };
let pool: pg.Pool | undefined;

test.before(async () => {
  await env.ready();
  pool = createPool(env.databaseUrl, 2, env.log);
  await env.query(`update saga_shards set owner = 'node-a', epoch = 1, lease_until = now() + interval '1 hour' where shard = 0`);
});
test.after.always(async () => {
  await pool?.end();
});

/** A store on `on` (the file's pool unless given). */
function store(on = pool): SagaStore {
  if (!on) throw new Error('no pool');
  return new SagaStore(on, new SagaWriter(on));
}

/** A new campaign saga recorded in shard 0, and its snapshot. */
async function recorded(s: SagaStore): Promise<{ id: string; snapshot: SagaSnapshot }> {
  let id: string;
  do id = randomUUID();
  while (shardOf(id, 32) !== 0);
  const write = newCampaignWrite(id, 0);
  await s.create(write);
  return { id, snapshot: write.snapshot };
}

const callOf = (d: Decision) => d.effects.find((e): e is Extract<Effect, { type: 'call' }> => e.type === 'call');

/** Commits the saga's decisions for `msg` and then each outcome in turn, as its actor would. */
async function run(s: SagaStore, id: string, snapshot: SagaSnapshot, outcomes: CallOutcome[]): Promise<SagaSnapshot> {
  const env = { now: new Date(), random: () => 0.5, newId: randomUUID };
  let version = 1;
  let d = decide(def, seedDatos(), snapshot, { type: 'resume', fresh: true } satisfies SagaMessage, env);
  version = await s.commit(id, version, d, env.now, LEASE);
  for (const outcome of outcomes) {
    const call = callOf(d);
    if (call === undefined) throw new Error('no call in flight');
    d = decide(def, seedDatos(), d.snapshot, { type: 'callCompleted', call: call.call, outcome }, env);
    version = await s.commit(id, version, d, env.now, LEASE);
  }
  return d.snapshot;
}

const CAMPANA = { id: 'campana-1', estado: 'ACTIVA' };
const PAGO = { id: 'pago-1', estado: 'PROCESADO' };
const ok = (resultado: Record<string, string>): CallOutcome => ({ kind: 'ok', status: 201, resultado });

/** saga_log's updates and HOT updates, as PostgreSQL's statistics count them. */
async function updateCounts(): Promise<{ upd: number; hot: number }> {
  const [r] = await env.query<{ upd: string; hot: string }>(
    `select n_tup_upd as upd, n_tup_hot_upd as hot from pg_stat_user_tables where relname = 'saga_log'`,
  );
  return { upd: Number(r?.upd ?? 0), hot: Number(r?.hot ?? 0) };
}

/** The counts once `upd` updates are counted (the backends that made them report as they exit), or after 5 s. */
async function countedAtLeast(upd: number): Promise<{ upd: number; hot: number }> {
  let counts = await updateCounts();
  for (let tries = 0; counts.upd < upd && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    counts = await updateCounts();
  }
  return counts;
}

test.serial("a step's update of the saga row writes no index entry: it is a heap-only tuple update", async (t) => {
  // A pool of its own: a backend reports its counts as it exits.
  const own = createPool(env.databaseUrl, 1, env.log);
  const s = store(own);
  const before = await updateCounts();
  const saga = await recorded(s);
  // Three updates while the saga runs: the first call's intent, then two steps.
  await run(s, saga.id, saga.snapshot, [ok(CAMPANA), ok(PAGO)]);
  await own.end();
  const after = await countedAtLeast(before.upd + 3);
  t.is(after.upd - before.upd, 3);
  t.is(after.hot - before.hot, 3, 'every update of a running saga is HOT');
});

test.serial('with the pages full of sagas, the steps of running sagas still update in place, nine in ten', async (t) => {
  const own = createPool(env.databaseUrl, 1, env.log);
  const s = store(own);
  const before = await updateCounts();
  const sagas = [];
  for (let i = 0; i < 40; i++) sagas.push(await recorded(s));
  await Promise.all(sagas.map((g) => run(s, g.id, g.snapshot, [ok(CAMPANA), ok(PAGO)])));
  await own.end();
  const after = await countedAtLeast(before.upd + 120);
  t.is(after.upd - before.upd, 120);
  // The room a page keeps (the table's fillfactor) takes each row's next version: 108 of 120 here, 4 without it.
  t.true(after.hot - before.hot >= 96, `${after.hot - before.hot} of 120 updates were HOT`);
});

test.serial("each step's result is stored once, in saga_pasos, and a load puts it back in the snapshot", async (t) => {
  const s = store();
  const saga = await recorded(s);
  const inMemory = await run(s, saga.id, saga.snapshot, [ok(CAMPANA), ok(PAGO)]);
  t.deepEqual(inMemory.results, { CREAR_CAMPANA: CAMPANA, PROCESAR_PAGO: PAGO });

  const [row] = await env.query<{ results: unknown; estado: string }>(`select snapshot->'results' as results, estado from saga_log where id = $1`, [saga.id]);
  t.is(row?.estado, S.PAGO_PROCESADO);
  t.deepEqual(row?.results, {}, 'the stored snapshot does not repeat the results');
  const loaded = await s.load(saga.id);
  t.deepEqual((loaded?.snapshot as SagaSnapshot).results, inMemory.results);
});

test.serial('a snapshot stored with its results, as before, keeps them on load', async (t) => {
  const s = store();
  const saga = await recorded(s);
  await run(s, saga.id, saga.snapshot, [ok(CAMPANA)]);
  await env.query(`update saga_log set snapshot = jsonb_set(snapshot, '{results}', $2::jsonb) where id = $1`, [
    saga.id,
    JSON.stringify({ CREAR_CAMPANA: CAMPANA, OTRO: { id: 'x' } }),
  ]);
  const loaded = await s.load(saga.id);
  t.deepEqual((loaded?.snapshot as SagaSnapshot).results, { CREAR_CAMPANA: CAMPANA, OTRO: { id: 'x' } });
});
