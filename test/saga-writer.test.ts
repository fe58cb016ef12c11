// The group commit of the saga log: many writes share a transaction, yet each
// keeps its own fence, version check and Idempotency-Key check, and a write
// that is refused or broken never takes the others down with it.
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { NEW_SAGA_CHANNEL, newSagaChannelOf, SAGA_CHANGES_CHANNEL } from '../src/cluster/notifications.js';
import { parseAnnouncement } from '../src/cluster/announcement.js';
import { storedSnapshot } from '../src/persistence/stored-snapshot.js';
import { shardOf, type ShardLease } from '../src/cluster/shards.js';
import { createPool } from '../src/persistence/pool.js';
import { foldCounts } from '../src/persistence/counts.js';
import { SagaStore } from '../src/persistence/saga-store.js';
import { PermanentWriteError, SagaWriter, type NewSagaWrite, type TransitionWrite } from '../src/persistence/saga-writer.js';
import { campaignV1, newCampaignWrite } from './fixtures/sagas.js';
import { decide } from '../src/saga/machine.js';
import { seedDatos } from './fixtures/requests.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);
const def = campaignV1();
let pool: pg.Pool | undefined;

const HELD: ShardLease = { shard: 0, owner: 'node-a', epoch: 7 };
const EXPIRED: ShardLease = { shard: 1, owner: 'node-a', epoch: 3 };

test.before(async () => {
  await env.ready();
  pool = createPool(env.databaseUrl, 2, env.log);
  await env.query(`update saga_shards set owner = 'node-a', epoch = 7, lease_until = now() + interval '1 hour' where shard = 0`);
  await env.query(`update saga_shards set owner = 'node-a', epoch = 3, lease_until = now() - interval '1 second' where shard = 1`);
});
test.after.always(async () => {
  await pool?.end();
});

/** A writer as a BFF's is (it announces each new saga with the saga), unless `opts` says otherwise. */
function writer(opts: { announceSagas?: boolean } = {}): SagaWriter {
  if (!pool) throw new Error('no pool');
  return new SagaWriter(pool, { announceSagas: opts.announceSagas ?? true });
}

/** A saga id whose shard is `shard` (of the migration's 32). */
function idInShard(shard: number): string {
  for (;;) {
    const id = randomUUID();
    if (shardOf(id, 32) === shard) return id;
  }
}

function create(shard: number, idempotencyKey: string | null = null): NewSagaWrite {
  return newCampaignWrite(idInShard(shard), shard, idempotencyKey);
}

/** The saga's first transition (the intent to call its first step, with its event if any). */
function firstTransition(saga: NewSagaWrite, lease: ShardLease, expectedVersion = 1): TransitionWrite {
  const now = new Date();
  const decision = decide(def, seedDatos(), saga.snapshot, { type: 'resume' }, { now, random: () => 0.5, newId: randomUUID });
  return { kind: 'transition', sagaId: saga.id, expectedVersion, decision, now, lease };
}

/** `v` as it reads back from JSON. */
const toJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

const versionOf = async (id: string) =>
  (await env.query<{ version: number }>('select version from saga_log where id = $1', [id]))[0]?.version;

test.serial('writes queued together are committed in one transaction, and each is acknowledged', async (t) => {
  const w = writer();
  const sagas = Array.from({ length: 50 }, () => create(0));
  const results = await Promise.all(sagas.map((s) => w.write(s)));
  t.true(results.every((r) => r.kind === 'committed'));
  t.is(w.stats.transactions, 1);
  const [row] = await env.query<{ n: number }>('select count(*)::int as n from saga_log where id = any($1::uuid[])', [sagas.map((s) => s.id)]);
  t.is(row?.n, 50);
});

/** A client LISTENing on the general channels and on node-a's own, and what it heard on each. */
async function listen(t: ExecutionContext): Promise<Record<string, string[]>> {
  const listener = new pg.Client({ connectionString: env.databaseUrl });
  await listener.connect();
  t.teardown(() => listener.end());
  const channels = [NEW_SAGA_CHANNEL, newSagaChannelOf('node-a'), SAGA_CHANGES_CHANNEL];
  const heard: Record<string, string[]> = Object.fromEntries(channels.map((c) => [c, []]));
  listener.on('notification', (n) => heard[n.channel]?.push(...(n.payload ?? '').split(',')));
  for (const channel of channels) await listener.query(`listen ${channel}`);
  return heard;
}

/** Waits until `ready` holds or `ms` have passed; then a last moment for anything that should not come. */
async function settle(ready: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!ready() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
}

/** `write` with its snapshot moved to `estado`. */
const movedTo = (write: TransitionWrite, estado: string): TransitionWrite => ({
  ...write,
  decision: { ...write.decision, snapshot: { ...write.decision.snapshot, estado } },
});

test.serial('each new saga of a batch is announced once committed, to its shard\'s holder alone, in a few notifications', async (t) => {
  const heard = await listen(t);
  const w = writer();
  // Shard 0 is node-a's; shard 3 has no holder.
  const sagas = Array.from({ length: 320 }, (_, i) => create(i % 2 === 0 ? 0 : 3));
  await Promise.all(sagas.map((s) => w.write(s)));
  const told = (shard: number) => sagas.filter((s) => s.shard === shard).map((s) => `${s.shard}:${s.id}`).sort();
  await settle(() => heard[newSagaChannelOf('node-a')]!.length >= 160 && heard[NEW_SAGA_CHANNEL]!.length >= 160);
  // 160 sagas' snapshots would not fit in one notification: each is told by its id alone, and read.
  t.deepEqual(heard[newSagaChannelOf('node-a')]!.sort(), told(0), "the holder's own channel");
  t.deepEqual(heard[NEW_SAGA_CHANNEL]!.sort(), told(3), 'the general channel, for a shard nobody holds');
});

test.serial("a new saga is announced to its shard's holder with the saga as recorded, under the holder's lease", async (t) => {
  const heard = await listen(t);
  const saga = create(0);
  await writer().write(saga);
  await settle(() => heard[newSagaChannelOf('node-a')]!.length >= 1);
  const [entry] = heard[newSagaChannelOf('node-a')]!;
  t.deepEqual(parseAnnouncement(entry!), {
    shard: 0,
    sagaId: saga.id,
    told: {
      epoch: HELD.epoch,
      saga: { tipo: saga.tipo, estado: saga.snapshot.estado, versionDefinicion: saga.snapshot.version, snapshot: toJson(storedSnapshot(saga.snapshot)), datos: saga.datos, version: 1 },
    },
  });
  const [stored] = await env.query<{ snapshot: unknown }>('select snapshot from saga_log where id = $1', [saga.id]);
  t.deepEqual(parseAnnouncement(entry!)?.told?.saga.snapshot, stored?.snapshot, 'the snapshot a read would give');
});

test.serial("a writer that runs what it records (an orchestrator's) announces a new saga by its id alone", async (t) => {
  const heard = await listen(t);
  const saga = create(0);
  await writer({ announceSagas: false }).write(saga);
  await settle(() => heard[newSagaChannelOf('node-a')]!.length >= 1);
  t.deepEqual(heard[newSagaChannelOf('node-a')], [`0:${saga.id}`]);
});

test.serial('a new saga in a shard nobody holds is announced by its id alone', async (t) => {
  const heard = await listen(t);
  const saga = create(3);
  await writer().write(saga);
  await settle(() => heard[NEW_SAGA_CHANNEL]!.length >= 1);
  t.deepEqual(heard[NEW_SAGA_CHANNEL], [`3:${saga.id}`]);
});

test.serial('the BFFs are told when a saga ends, not of its steps nobody watches', async (t) => {
  const heard = await listen(t);
  const w = writer();
  const saga = create(0);
  await w.write(saga);
  const step = firstTransition(saga, HELD);
  t.is((await w.write(step)).kind, 'committed');
  t.is((await w.write(movedTo(firstTransition(saga, HELD, 2), 'COMPLETADA'))).kind, 'committed');
  await settle(() => heard[SAGA_CHANGES_CHANNEL]!.length >= 1);
  t.deepEqual(heard[SAGA_CHANGES_CHANNEL], [`${saga.id} COMPLETADA`]);
});

test.serial('every change of a saga watched live is told to the BFFs', async (t) => {
  const heard = await listen(t);
  const w = writer();
  const saga = create(0);
  await w.write(saga);
  await env.query(`insert into saga_vigilancias (id, saga_id, hasta) values ($1, $2, now() + interval '1 minute')`, [randomUUID(), saga.id]);
  const step = firstTransition(saga, HELD);
  t.is((await w.write(step)).kind, 'committed');
  await settle(() => heard[SAGA_CHANGES_CHANNEL]!.length >= 1);
  t.deepEqual(heard[SAGA_CHANGES_CHANNEL], [`${saga.id} ${step.decision.snapshot.estado}`]);
});

test.serial('a watch past its time no longer makes the changes of its saga told', async (t) => {
  const heard = await listen(t);
  const w = writer();
  const saga = create(0);
  await w.write(saga);
  await env.query(`insert into saga_vigilancias (id, saga_id, hasta) values ($1, $2, now() - interval '1 second')`, [randomUUID(), saga.id]);
  t.is((await w.write(firstTransition(saga, HELD))).kind, 'committed');
  await settle(() => false, 500);
  t.deepEqual(heard[SAGA_CHANGES_CHANNEL], []);
});

test.serial('with a commit window, writes queued a moment apart share one transaction', async (t) => {
  if (!pool) throw new Error('no pool');
  const w = new SagaWriter(pool, { commitWindowMs: 200 });
  const first = w.write(create(0));
  await new Promise((r) => setTimeout(r, 20));
  const results = await Promise.all([first, w.write(create(0))]);
  t.true(results.every((r) => r.kind === 'committed'));
  t.is(w.stats.transactions, 1);
});

test.serial('without a commit window, a write queued a moment after another goes in a transaction of its own', async (t) => {
  const w = writer();
  const first = w.write(create(0));
  await new Promise((r) => setTimeout(r, 20));
  await Promise.all([first, w.write(create(0))]);
  t.is(w.stats.transactions, 2);
});

test.serial('the sweep reads the unfinished sagas of every shard it is given in one statement, and only theirs', async (t) => {
  if (!pool) throw new Error('no pool');
  const w = writer();
  const [inFive, inSix, elsewhere, ended] = [create(5), create(6), create(7), create(5)];
  for (const saga of [inFive, inSix, elsewhere, ended]) await w.write(saga);
  await env.query(`update saga_log set estado = 'COMPLETADA' where id = $1`, [ended.id]);
  const found = await new SagaStore(pool, w).activeSagas([5, 6]);
  const mine = found.filter((f) => [inFive, inSix, elsewhere, ended].some((s) => s.id === f.sagaId));
  t.deepEqual(mine.sort((a, b) => a.shard - b.shard), [{ shard: 5, sagaId: inFive.id }, { shard: 6, sagaId: inSix.id }]);
});

test.serial('a write retried after a failure whose outcome is unknown is acknowledged if it had committed', async (t) => {
  const w = writer();
  const saga = create(0);
  t.is((await w.write(saga)).kind, 'committed');
  t.is((await w.write(saga)).kind, 'duplicateKey', 'a plain repeat is refused');
  t.is((await w.write({ ...saga, recheck: true })).kind, 'committed', 'a repeat flagged as a retry finds its own row');
  const first = firstTransition(saga, HELD);
  t.is((await w.write(first)).kind, 'committed');
  t.is((await w.write(first)).kind, 'stale');
  t.is((await w.write({ ...first, recheck: true })).kind, 'committed');
  const other = { ...firstTransition(saga, HELD), recheck: true };
  other.decision = { ...other.decision, snapshot: { ...other.decision.snapshot, attempt: 99 } };
  t.is((await w.write(other)).kind, 'stale', 'a different write at that version is still refused');
  t.is(await versionOf(saga.id), 2);
});

test.serial('in one batch, a write whose lease expired is refused and adds nothing; the others commit', async (t) => {
  const w = writer();
  const held = create(0);
  const fenced = create(1);
  await Promise.all([w.write(held), w.write(fenced)]);
  const before = w.stats.transactions;
  const [ok, refused] = await Promise.all([w.write(firstTransition(held, HELD)), w.write(firstTransition(fenced, EXPIRED))]);
  t.is(w.stats.transactions, before + 1, 'both went in the same transaction');
  t.deepEqual([ok.kind, refused.kind], ['committed', 'fenced']);
  t.is(await versionOf(held.id), 2);
  t.is(await versionOf(fenced.id), 1, 'the fenced saga is untouched');
});

test.serial('a lease of an older epoch or another owner is refused', async (t) => {
  const w = writer();
  const saga = create(0);
  await w.write(saga);
  const older = await w.write(firstTransition(saga, { ...HELD, epoch: HELD.epoch - 1 }));
  const other = await w.write(firstTransition(saga, { ...HELD, owner: 'node-b' }));
  t.deepEqual([older.kind, other.kind], ['fenced', 'fenced']);
  t.is(await versionOf(saga.id), 1);
});

test.serial('two writes of one saga in one batch: only the rows of the write that commits are written', async (t) => {
  const w = writer();
  const saga = create(0);
  await w.write(saga);
  const first = firstTransition(saga, HELD);
  await w.write(first);
  const inFlight = first.decision.snapshot;
  const now = new Date();
  const at = { now, random: () => 0.5, newId: randomUUID };
  const call = { phase: 'forward' as const, step: inFlight.step!, attempt: inFlight.attempt };
  // The process that held the shard before (an older epoch) hears the call succeed: a step row and events.
  const stale = decide(def, seedDatos(), inFlight, { type: 'callCompleted', call, outcome: { kind: 'ok', status: 201, resultado: { id: 'c-1' } } }, at);
  // The new owner resumes the same call as interrupted: it schedules a retry, with no row and no event.
  const current = decide(def, seedDatos(), inFlight, { type: 'resume' }, at);
  t.true(stale.events.length > 0 && stale.pasos.length > 0);
  t.true(current.changed && current.events.length === 0 && current.pasos.length === 0);
  const before = w.stats.transactions;
  const [old, now2] = await Promise.all([
    w.write({ kind: 'transition', sagaId: saga.id, expectedVersion: 2, decision: stale, now, lease: { ...HELD, epoch: HELD.epoch - 1 } }),
    w.write({ kind: 'transition', sagaId: saga.id, expectedVersion: 2, decision: current, now, lease: HELD }),
  ]);
  t.is(w.stats.transactions, before + 1, 'both went in the same transaction');
  t.deepEqual([old.kind, now2.kind], ['fenced', 'committed']);
  const events = await env.query<{ secuencia: number }>('select secuencia from saga_events where saga_id = $1 order by secuencia', [saga.id]);
  t.deepEqual(
    events.map((e) => e.secuencia),
    Array.from({ length: current.snapshot.lastEventSeq }, (_, i) => i + 1),
    'the outbox holds the committed snapshot\'s events, not the fenced write\'s',
  );
  t.is((await env.query('select 1 from saga_pasos where saga_id = $1', [saga.id])).length, 0);
});

test.serial('a write from a stale version is refused without failing its batch', async (t) => {
  const w = writer();
  const a = create(0);
  const b = create(0);
  await Promise.all([w.write(a), w.write(b)]);
  await w.write(firstTransition(a, HELD));
  // `a` is at version 2 now: a second writer that saw version 1 must lose.
  const [stale, fine] = await Promise.all([w.write(firstTransition(a, HELD, 1)), w.write(firstTransition(b, HELD))]);
  t.deepEqual([stale.kind, fine.kind], ['stale', 'committed']);
  t.is(await versionOf(a.id), 2);
  t.is(await versionOf(b.id), 2);
});

test.serial('two new sagas with one Idempotency-Key in one batch: one is recorded, the other is told', async (t) => {
  const w = writer();
  const key = `key-${randomUUID()}`;
  const results = await Promise.all([w.write(create(0, key)), w.write(create(0, key))]);
  t.deepEqual(results.map((r) => r.kind).sort(), ['committed', 'duplicateKey']);
  const [row] = await env.query<{ n: number }>('select count(*)::int as n from saga_log where idempotency_key = $1', [key]);
  t.is(row?.n, 1);
});

test.serial('a write that breaks a constraint fails alone; the rest of its batch commits', async (t) => {
  const w = writer();
  const good = create(0);
  const bad = create(0);
  await Promise.all([w.write(good), w.write(bad)]);
  const broken = firstTransition(bad, HELD);
  // An event that repeats SagaIniciada's sequence number violates unique (saga_id, secuencia).
  broken.decision = { ...broken.decision, changed: true, events: [{ ...bad.events[0]! }] };
  const [ok, failed] = await Promise.allSettled([w.write(firstTransition(good, HELD)), w.write(broken)]);
  t.is(ok.status, 'fulfilled');
  t.is(failed.status, 'rejected');
  t.true((failed as PromiseRejectedResult).reason instanceof PermanentWriteError, 'reported as a write that can never commit');
  t.is(((failed as PromiseRejectedResult).reason as PermanentWriteError).sqlState, '23505');
  t.is(await versionOf(good.id), 2);
  t.is(await versionOf(bad.id), 1);
});

test.serial('events of one batch get outbox ids in each saga\'s sequence order', async (t) => {
  const w = writer();
  const sagas = Array.from({ length: 20 }, () => create(0));
  await Promise.all(sagas.map((s) => w.write(s)));
  const firsts = sagas.map((s) => firstTransition(s, HELD));
  await Promise.all(firsts.map((f) => w.write(f)));
  // The deadline passes: each saga writes two events (SagaFallida, SagaCompensacionIniciada) at once.
  const later = new Date(Date.now() + 3_600_000);
  await Promise.all(
    firsts.map((f) =>
      w.write({
        ...f,
        expectedVersion: 2,
        now: later,
        decision: decide(def, seedDatos(), f.decision.snapshot, { type: 'deadlineReached' }, { now: later, random: () => 0.5, newId: randomUUID }),
      }),
    ),
  );
  const rows = await env.query<{ saga_id: string; secuencia: number }>(
    'select saga_id, secuencia from saga_events where saga_id = any($1::uuid[]) order by id',
    [sagas.map((s) => s.id)],
  );
  t.is(rows.length, 60);
  const last = new Map<string, number>();
  for (const r of rows) {
    t.true((last.get(r.saga_id) ?? 0) < r.secuencia, `saga ${r.saga_id}: ${r.secuencia} after ${last.get(r.saga_id)}`);
    last.set(r.saga_id, r.secuencia);
  }
});

test.serial('the per-estado counters the list total reads agree with the log after every kind of write', async (t) => {
  // Everything the tests above wrote (batches, refused writes, a failed batch),
  // plus a direct update and delete as an operator might run.
  const extra = create(0);
  await writer().write(extra);
  await env.query(`update saga_log set estado = 'COMPENSADA' where id = $1`, [extra.id]);
  await env.query('delete from saga_events where saga_id = $1', [extra.id]);
  await env.query('delete from saga_log where id = $1', [extra.id]);
  const counted = await env.query<{ tipo: string; estado: string; n: number }>(
    'select tipo, estado, count(*)::int as n from saga_log group by tipo, estado order by tipo, estado',
  );
  const kept = await env.query<{ tipo: string; estado: string; n: number }>(
    'select tipo, estado, n::int from saga_totals where n <> 0 order by tipo, estado',
  );
  t.true(counted.length > 0);
  t.deepEqual(kept, counted);
});

test.serial('after a fold, the counters alone agree with the log and no delta is left', async (t) => {
  const folded = await foldCounts(pool!);
  t.true(folded > 0, 'the writes above left deltas');
  t.is((await env.query('select 1 from saga_count_deltas')).length, 0);
  const counted = await env.query<{ tipo: string; estado: string; n: number }>(
    'select tipo, estado, count(*)::int as n from saga_log group by tipo, estado order by tipo, estado',
  );
  const kept = await env.query<{ tipo: string; estado: string; n: number }>(
    'select tipo, estado, n::int from saga_counts where n <> 0 order by tipo, estado',
  );
  t.deepEqual(kept, counted);
});

test.serial('two writers whose batches create and move sagas between the same states never deadlock', async (t) => {
  // Two processes' writers, on connections of their own. One commits batches of
  // new sagas with transitions PAGO_PROCESADO -> REPORTE_GENERADO, the other
  // batches of transitions INICIADA -> PAGO_PROCESADO: the counters of the
  // same states change in both, in different statements of each batch.
  const other = createPool(env.databaseUrl, 1, env.log);
  t.teardown(() => other.end());
  const a = writer();
  const b = new SagaWriter(other);
  const prepared = Array.from({ length: 400 }, () => create(0));
  await Promise.all(prepared.map((s) => a.write(s)));
  const intents = prepared.map((s) => firstTransition(s, HELD));
  await Promise.all(intents.map((f) => a.write(f)));
  const move = (f: TransitionWrite, from: number, estado: string): TransitionWrite => ({
    ...f,
    expectedVersion: from,
    decision: { ...f.decision, events: [], pasos: [], snapshot: { ...f.decision.snapshot, estado } },
  });
  // Half of them go to PAGO_PROCESADO first.
  const paid = intents.filter((_, i) => i % 2 === 0);
  const fresh = intents.filter((_, i) => i % 2 === 1);
  await Promise.all(paid.map((f) => a.write(move(f, 2, 'PAGO_PROCESADO'))));
  const deadlocks = async () =>
    Number((await env.query<{ n: string }>('select deadlocks as n from pg_stat_database where datname = current_database()'))[0]!.n);
  const before = await deadlocks();
  for (let round = 0; round < 20; round++) {
    await Promise.all([
      ...paid.slice(round * 10, round * 10 + 10).map((f) => a.write(move(f, 3, 'REPORTE_GENERADO'))),
      ...Array.from({ length: 10 }, () => a.write(create(0))),
      ...fresh.slice(round * 10, round * 10 + 10).map((f) => b.write(move(f, 2, 'PAGO_PROCESADO'))),
    ]);
  }
  await new Promise((r) => setTimeout(r, 1_500)); // statistics reach pg_stat_database within a second
  t.is(await deadlocks(), before, 'no transaction was chosen as a deadlock victim');
  const moved = await env.query<{ estado: string; n: number }>(
    `select estado, count(*)::int as n from saga_log where id = any($1::uuid[]) group by estado order by estado`,
    [intents.map((f) => f.sagaId)],
  );
  t.deepEqual(moved, [{ estado: 'PAGO_PROCESADO', n: 200 }, { estado: 'REPORTE_GENERADO', n: 200 }], 'every transition committed');
});
