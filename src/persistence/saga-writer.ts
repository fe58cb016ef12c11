// Group commit for the saga log. Every saga actor's write (a new saga, or a
// transition: snapshot, step or compensation rows, events) is queued here, and
// the writes that pile up while one transaction is in flight go together in
// the next: one durable commit for many sagas. Nothing is acknowledged before
// the transaction that holds it has committed, and each write keeps its own
// checks inside the shared transaction:
//  - the fence: the shard rows are read FOR SHARE with owner, epoch and an
//    unexpired lease, so a take-over waits for this commit, and a write whose
//    lease is gone is refused (and only that write);
//  - the version: a snapshot changes only if it is still the version its actor
//    last saw, so a second writer of one saga is refused;
//  - the Idempotency-Key: a new saga whose key exists is not inserted.
// Writes that were refused add nothing else (no rows, no events).
//
// This is the orchestrator's hot path, so it speaks SQL to pg directly: a few
// set-based statements per batch, whatever its size, with the rows passed as
// one JSON document each. MikroORM keeps the schema (migrations) and the reads.
import type pg from 'pg';
import type { Decision, EventRecord, OutcomeRecord, SagaSnapshot } from '../saga/machine.js';
import type { ShardLease } from '../cluster/shards.js';
import { NEW_SAGA_CHANNEL, SAGA_FINISHED_CHANNEL } from '../cluster/notifications.js';
import { TERMINAL_STATES } from '../saga/states.js';

/** A saga just accepted: its first snapshot and event(s), to be inserted. */
export interface NewSaga {
  id: string;
  shard: number;
  tipo: string;
  datos: unknown;
  snapshot: SagaSnapshot;
  events: EventRecord[];
  idempotencyKey: string | null;
  requestHash: string | null;
  now: Date;
}

export type NewSagaWrite = NewSaga & { kind: 'create' };

export interface TransitionWrite {
  kind: 'transition';
  sagaId: string;
  expectedVersion: number;
  decision: Decision;
  now: Date;
  lease: ShardLease;
}

export type SagaWrite = NewSagaWrite | TransitionWrite;

export type WriteResult =
  | { kind: 'committed' }
  /** The lease of the saga's shard is no longer this writer's. */
  | { kind: 'fenced' }
  /** The snapshot is no longer the version the writer saw. */
  | { kind: 'stale' }
  /** A new saga whose Idempotency-Key is already taken. */
  | { kind: 'duplicateKey' };

export interface SagaWriterOptions {
  /** Most writes in one transaction. */
  maxBatch?: number;
  /** Transactions in flight at once. */
  concurrency?: number;
}

interface Pending {
  write: SagaWrite;
  resolve: (r: WriteResult) => void;
  reject: (err: unknown) => void;
}

export interface WriterStats {
  transactions: number;
  writes: number;
}

export class SagaWriter {
  readonly stats: WriterStats = { transactions: 0, writes: 0 };
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly concurrency: number;

  constructor(
    private readonly pool: pg.Pool,
    opts: SagaWriterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.concurrency = opts.concurrency ?? 1;
  }

  /** Queues a write; resolves once it is committed (or refused), rejects if its transaction failed. */
  write(write: SagaWrite): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.concurrency || this.queue.length === 0) return;
    this.scheduled = true;
    // Wait for the rest of this turn of the event loop: the actors woken by the
    // same batch of I/O all get their writes into one transaction.
    setImmediate(() => {
      this.scheduled = false;
      if (this.inFlight >= this.concurrency || this.queue.length === 0) return;
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        this.schedule();
      });
    });
  }

  private async run(batch: Pending[]): Promise<void> {
    try {
      const results = await this.commit(batch.map((p) => p.write));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // One bad write must not fail the others: each goes again on its own.
      for (const p of batch) {
        try {
          const [result] = await this.commit([p.write]);
          p.resolve(result!);
        } catch (e) {
          p.reject(e);
        }
      }
    }
  }

  /**
   * One transaction for `writes`, as one SQL statement (so one round trip: a
   * single statement is its own transaction); returns each write's result, in order.
   */
  private async commit(writes: SagaWrite[]): Promise<WriteResult[]> {
    const transitions = writes.filter((w): w is TransitionWrite => w.kind === 'transition');
    const creates = writes.filter((w): w is NewSagaWrite => w.kind === 'create');
    const rowsOf = (pick: (d: Decision) => OutcomeRecord[]) =>
      transitions.flatMap((w) => pick(w.decision).map((r) => outcomeRow(w.sagaId, r)));
    const { rows } = await this.pool.query<{ k: 'held' | 'updated' | 'inserted' | 'notified'; v: string }>({
      name: 'saga_group_commit',
      text: GROUP_COMMIT_SQL,
      values: [
        JSON.stringify(transitions.map(transitionRow)),
        JSON.stringify(creates.map(createRow)),
        JSON.stringify(rowsOf((d) => d.pasos)),
        JSON.stringify(rowsOf((d) => d.compensaciones)),
        JSON.stringify([
          ...creates.flatMap((w) => w.events.map((e) => eventRow(w.id, e, null))),
          ...transitions.flatMap((w) => w.decision.events.map((e) => eventRow(w.sagaId, e, w.lease.epoch))),
        ]),
        NEW_SAGA_CHANNEL,
        SAGA_FINISHED_CHANNEL,
        TERMINAL_STATES,
      ],
    });
    const held = new Set<string>();
    const done = new Set<string>();
    for (const r of rows) {
      if (r.k === 'held') held.add(r.v);
      else if (r.k !== 'notified') done.add(r.v);
    }
    this.stats.transactions += 1;
    this.stats.writes += writes.length;
    return writes.map((w): WriteResult => {
      if (w.kind === 'create') return done.has(w.id) ? { kind: 'committed' } : { kind: 'duplicateKey' };
      if (!held.has(leaseKey(w.lease))) return { kind: 'fenced' };
      return done.has(w.sagaId) ? { kind: 'committed' } : { kind: 'stale' };
    });
  }
}

const leaseKey = (l: ShardLease) => `${l.shard}/${l.owner}/${l.epoch}`;

/**
 * The whole batch. Parameters, each a JSON array: $1 transitions, $2 new sagas,
 * $3 step rows, $4 compensation rows, $5 events; $6 the new-saga channel,
 * $7 the finished-saga channel, $8 the terminal states.
 *  - held: the leases of the transitions' shards that are unexpired now, read
 *    FOR SHARE so a take-over waits for this commit;
 *  - updated: snapshots whose lease is held and whose version is the expected one;
 *  - inserted: new sagas whose Idempotency-Key is free;
 *  - rows and events are written only for sagas in updated or inserted; events
 *    in each saga's sequence order, so their outbox ids follow it;
 *  - a NOTIFY per new saga, delivered on commit to every orchestrator, and one
 *    per saga that reached a terminal state (BFFs answer their waiting clients).
 * Data-modifying CTEs run once each, whether or not the final select reads them;
 * the plain select that notifies runs only as far as it is read, hence its count.
 */
/** Step or compensation rows from parameter $n, for the sagas just updated. */
const insertOutcomes = (table: 'saga_pasos' | 'saga_compensaciones', n: number) => `
  insert into ${table} (id, saga_id, orden, tipo, exitoso, error, resultado, intentos, fecha_ejecucion)
  select id, saga_id, orden, tipo, exitoso, error, resultado, intentos, fecha_ejecucion
  from jsonb_to_recordset($${n}::jsonb) as p(id uuid, saga_id uuid, orden int, tipo text, exitoso boolean,
    error text, resultado jsonb, intentos int, fecha_ejecucion timestamptz)
  where saga_id in (select id from updated)`;

const GROUP_COMMIT_SQL = `
with t as (
  select * from jsonb_to_recordset($1::jsonb) as t(id uuid, expected int, estado text, snapshot jsonb,
    error_message text, ahora timestamptz, fecha_fin timestamptz, shard int, owner text, epoch bigint)
),
held as (
  select shard, owner, epoch from saga_shards
  where shard in (select shard from t) and owner is not null and lease_until > now()
  order by shard
  for share
),
updated as (
  update saga_log s
  set estado = t.estado, snapshot = t.snapshot, version = t.expected + 1, error_message = t.error_message,
      fecha_actualizacion = t.ahora, fecha_fin = t.fecha_fin
  from t
  where s.id = t.id and s.version = t.expected
    and exists (select 1 from held h where h.shard = t.shard and h.owner = t.owner and h.epoch = t.epoch)
  returning s.id, s.estado
),
inserted as (
  insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, error_message,
                        idempotency_key, request_hash, fecha_inicio, fecha_actualizacion, fecha_fin, shard)
  select id, tipo, estado, datos, snapshot, 1, timeout_minutos, fecha_limite, null,
         idempotency_key, request_hash, ahora, ahora, null, shard
  from jsonb_to_recordset($2::jsonb) as c(id uuid, tipo text, estado text, datos jsonb, snapshot jsonb,
    timeout_minutos double precision, fecha_limite timestamptz, idempotency_key text, request_hash text,
    ahora timestamptz, shard int)
  on conflict do nothing
  returning id, shard
),
pasos as (${insertOutcomes('saga_pasos', 3)}),
compensaciones as (${insertOutcomes('saga_compensaciones', 4)}),
events as (
  insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, publicado_en, epoch)
  select saga_id, secuencia, tipo, estado, payload, fecha, null, epoch
  from jsonb_to_recordset($5::jsonb) as e(saga_id uuid, secuencia int, tipo text, estado text, payload jsonb,
    fecha timestamptz, epoch bigint)
  where saga_id in (select id from updated union all select id from inserted)
  order by saga_id, secuencia
),
notified as (
  select pg_notify($6::text, shard || ':' || id) from inserted
  union all
  select pg_notify($7::text, id::text) from updated where estado = any($8::text[])
)
select 'held' as k, shard || '/' || owner || '/' || epoch as v from held
union all select 'updated', id::text from updated
union all select 'inserted', id::text from inserted
union all select 'notified', count(*)::text from notified`;

function transitionRow(w: TransitionWrite) {
  const s = w.decision.snapshot;
  return {
    id: w.sagaId,
    expected: w.expectedVersion,
    estado: s.estado,
    snapshot: s,
    error_message: s.errorMessage,
    ahora: w.now.toISOString(),
    fecha_fin: s.finishedAt,
    shard: w.lease.shard,
    owner: w.lease.owner,
    epoch: w.lease.epoch,
  };
}

function createRow(w: NewSagaWrite) {
  return {
    id: w.id,
    tipo: w.tipo,
    estado: w.snapshot.estado,
    datos: w.datos,
    snapshot: w.snapshot,
    timeout_minutos: w.snapshot.timeoutMinutos,
    fecha_limite: w.snapshot.deadline,
    idempotency_key: w.idempotencyKey,
    request_hash: w.requestHash,
    ahora: w.now.toISOString(),
    shard: w.shard,
  };
}

function outcomeRow(sagaId: string, r: OutcomeRecord) {
  return {
    id: r.id,
    saga_id: sagaId,
    orden: r.orden,
    tipo: r.tipo,
    exitoso: r.exitoso,
    error: r.error,
    resultado: r.resultado,
    intentos: r.intentos,
    fecha_ejecucion: r.fechaEjecucion,
  };
}

function eventRow(sagaId: string, e: EventRecord, epoch: number | null) {
  return { saga_id: sagaId, secuencia: e.secuencia, tipo: e.tipo, estado: e.estado, payload: e.payload, fecha: e.fecha, epoch };
}
