// The reads every client makes (a saga's status, its estado) are batched: those
// asked for in one turn of the event loop go to PostgreSQL as one query, and
// each caller still gets its own saga (or null). A read of one saga keeps one plan per
// connection rather than being planned again at every read.
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { BatchedLookup } from '../src/persistence/batched-lookup.js';
import { createPool } from '../src/persistence/pool.js';
import { SagaQueries } from '../src/persistence/saga-queries.js';
import { SagaStore } from '../src/persistence/saga-store.js';
import { SagaWriter } from '../src/persistence/saga-writer.js';
import { newCampaignWrite } from './fixtures/sagas.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
let pool: pg.Pool | undefined;
const ids: string[] = [];

test.before(async () => {
  await env.ready();
  pool = createPool(env.databaseUrl, 4, env.log);
  const writer = new SagaWriter(pool);
  for (let i = 0; i < 5; i++) {
    const id = randomUUID();
    await writer.write(newCampaignWrite(id, 0));
    ids.push(id);
  }
});
test.after.always(async () => {
  await pool?.end();
});

/** SagaQueries over the test pool, counting the queries it sends. */
function countingQueries(): { queries: SagaQueries; sent: () => number } {
  if (!pool) throw new Error('no pool');
  const real = pool;
  let sent = 0;
  const counting = {
    query: ((...args: Parameters<pg.Pool['query']>) => {
      sent += 1;
      return (real.query as (...a: unknown[]) => unknown)(...args);
    }) as pg.Pool['query'],
  };
  return { queries: new SagaQueries(env.db, counting), sent: () => sent };
}

test('status reads asked for together share one query, and each gets its own saga', async (t) => {
  const { queries, sent } = countingQueries();
  const unknown = randomUUID();
  const views = await Promise.all([...ids, unknown].map((id) => queries.status(id)));
  t.deepEqual(
    views.map((v) => v?.saga_id ?? null),
    [...ids, null],
  );
  t.is(sent(), 1);
});

test('estado reads asked for together share one query', async (t) => {
  const { queries, sent } = countingQueries();
  const estados = await Promise.all([...ids, randomUUID()].map((id) => queries.estado(id)));
  t.deepEqual(estados, [...ids.map(() => 'INICIADA'), null]);
  t.is(sent(), 1);
});

test('a saga id in capitals finds its saga', async (t) => {
  const { queries } = countingQueries();
  const view = await queries.status(ids[0]!.toUpperCase());
  t.is(view?.saga_id, ids[0]);
});

test('reads asked for in different turns are separate queries', async (t) => {
  const { queries, sent } = countingQueries();
  await queries.estado(ids[0]!);
  await queries.estado(ids[1]!);
  t.is(sent(), 2);
});

// BatchedLookup alone: what its callers see when the query fails or the batch is large.

test('a failed query fails every read of its batch, and the next batch is read again', async (t) => {
  let calls = 0;
  const lookup = new BatchedLookup<string>((wanted) => {
    calls += 1;
    if (calls === 1) return Promise.reject(new Error('connection lost'));
    return Promise.resolve(new Map(wanted.map((id) => [id, `row ${id}`])));
  });
  const first = await Promise.allSettled([lookup.get('a'), lookup.get('b')]);
  t.deepEqual(
    first.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  t.is(await lookup.get('a'), 'row a');
});

test('more reads than a batch holds go in several queries, each id once', async (t) => {
  const asked: string[][] = [];
  const lookup = new BatchedLookup<string>((wanted) => {
    asked.push(wanted);
    return Promise.resolve(new Map(wanted.map((id) => [id, id])));
  }, { maxBatch: 2 });
  const rows = await Promise.all(['a', 'b', 'c', 'c', 'd'].map((id) => lookup.get(id)));
  t.deepEqual(rows, ['a', 'b', 'c', 'c', 'd']);
  t.deepEqual(asked, [['a', 'b'], ['c'], ['d']]);
});

test('with a batch window, reads asked for a moment apart share one query', async (t) => {
  const asked: string[][] = [];
  const lookup = new BatchedLookup<string>((wanted) => {
    asked.push(wanted);
    return Promise.resolve(new Map(wanted.map((id) => [id, id])));
  }, { windowMs: 200 });
  const first = lookup.get('a');
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(await Promise.all([first, lookup.get('b')]), ['a', 'b']);
  t.deepEqual(asked, [['a', 'b']]);
});

/** How often each of the connection's prepared statements was planned for its parameters (custom) or once for all (generic). */
async function plansOf(db: pg.Pool): Promise<Record<string, { generic: number; custom: number }>> {
  const { rows } = await db.query<{ name: string; generic_plans: string; custom_plans: string }>(
    'select name, generic_plans, custom_plans from pg_prepared_statements',
  );
  return Object.fromEntries(rows.map((r) => [r.name, { generic: Number(r.generic_plans), custom: Number(r.custom_plans) }]));
}

/** A pool of one connection, so that the statements read back are the ones the reads prepared. */
function oneConnection(t: ExecutionContext): pg.Pool {
  const one = createPool(env.databaseUrl, 1, env.log);
  t.teardown(() => one.end());
  return one;
}

test('a read of one saga is not planned again at every read: after five, its statement keeps one plan', async (t) => {
  const one = oneConnection(t);
  const queries = new SagaQueries(env.db, one);
  for (let i = 0; i < 12; i++) {
    await queries.status(ids[0]!);
    await queries.estado(ids[0]!);
  }
  const plans = Object.values(await plansOf(one));
  t.is(plans.length, 2);
  for (const p of plans) t.deepEqual(p, { generic: 7, custom: 5 });
});

test("an orchestrator's load of one saga is not planned again at every load either", async (t) => {
  const one = oneConnection(t);
  const store = new SagaStore(one, new SagaWriter(one));
  for (let i = 0; i < 12; i++) await store.load(ids[0]!);
  t.deepEqual(await plansOf(one), { saga_load_many_v3_one: { generic: 7, custom: 5 } });
});
