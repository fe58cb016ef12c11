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
import { NEW_SAGA_CHANNEL } from '../cluster/notifications.js';

export interface NewSagaWrite {
  kind: 'create';
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

  /** One transaction for `writes`; returns each write's result, in order. */
  private async commit(writes: SagaWrite[]): Promise<WriteResult[]> {
    const results: WriteResult[] = writes.map(() => ({ kind: 'committed' }));
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      const transitions = writes.flatMap((w, i) => (w.kind === 'transition' ? [{ w, i }] : []));
      const creates = writes.flatMap((w, i) => (w.kind === 'create' ? [{ w, i }] : []));

      // The fence, then the version check, for the transitions.
      let applied: { w: TransitionWrite; i: number }[] = [];
      if (transitions.length > 0) {
        const held = await heldLeases(client, transitions.map(({ w }) => w.lease.shard));
        const unfenced = transitions.filter(({ w, i }) => {
          const ok = held.has(leaseKey(w.lease));
          if (!ok) results[i] = { kind: 'fenced' };
          return ok;
        });
        const updated = unfenced.length === 0 ? new Set<string>() : await updateSnapshots(client, unfenced.map(({ w }) => w));
        applied = unfenced.filter(({ w, i }) => {
          const ok = updated.has(w.sagaId);
          if (!ok) results[i] = { kind: 'stale' };
          return ok;
        });
      }

      // New sagas, unless their Idempotency-Key is taken.
      let inserted: { w: NewSagaWrite; i: number }[] = [];
      if (creates.length > 0) {
        const ids = await insertSagas(client, creates.map(({ w }) => w));
        inserted = creates.filter(({ w, i }) => {
          const ok = ids.has(w.id);
          if (!ok) results[i] = { kind: 'duplicateKey' };
          return ok;
        });
      }

      const rows = (pick: (d: Decision) => OutcomeRecord[]) =>
        applied.flatMap(({ w }) => pick(w.decision).map((r) => outcomeRow(w.sagaId, r)));
      await insertOutcomes(client, 'saga_pasos', rows((d) => d.pasos));
      await insertOutcomes(client, 'saga_compensaciones', rows((d) => d.compensaciones));
      await insertEvents(client, [
        ...inserted.flatMap(({ w }) => w.events.map((e) => eventRow(w.id, e, null))),
        ...applied.flatMap(({ w }) => w.decision.events.map((e) => eventRow(w.sagaId, e, w.lease.epoch))),
      ]);
      if (inserted.length > 0) {
        // Delivered on commit to every orchestrator; the one holding the shard runs it.
        await client.query({
          name: 'saga_notify',
          text: 'select pg_notify($1, x) from jsonb_array_elements_text($2::jsonb) x',
          values: [NEW_SAGA_CHANNEL, JSON.stringify(inserted.map(({ w }) => `${w.shard}:${w.id}`))],
        });
      }
      await client.query('commit');
      this.stats.transactions += 1;
      this.stats.writes += writes.length;
      return results;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

const leaseKey = (l: ShardLease) => `${l.shard}/${l.owner}/${l.epoch}`;

/** The leases among `shards` that are unexpired now, locked until commit. */
async function heldLeases(client: pg.PoolClient, shards: number[]): Promise<Set<string>> {
  const { rows } = await client.query<{ shard: number; owner: string; epoch: string }>({
    name: 'saga_fence',
    text: `select shard, owner, epoch::text from saga_shards
           where shard = any($1::int[]) and owner is not null and lease_until > now()
           order by shard for share`,
    values: [[...new Set(shards)]],
  });
  return new Set(rows.map((r) => leaseKey({ shard: r.shard, owner: r.owner, epoch: Number(r.epoch) })));
}

/** Applies each snapshot still at its expected version; returns the ids applied. */
async function updateSnapshots(client: pg.PoolClient, writes: TransitionWrite[]): Promise<Set<string>> {
  const rows = writes
    .map((w) => {
      const s = w.decision.snapshot;
      return {
        id: w.sagaId,
        expected: w.expectedVersion,
        estado: s.estado,
        snapshot: s,
        error_message: s.errorMessage,
        ahora: w.now.toISOString(),
        fecha_fin: s.finishedAt,
      };
    })
    // The same lock order in every transaction.
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const { rows: updated } = await client.query<{ id: string }>({
    name: 'saga_update',
    text: `update saga_log s
           set estado = u.estado, snapshot = u.snapshot, version = u.expected + 1,
               error_message = u.error_message, fecha_actualizacion = u.ahora, fecha_fin = u.fecha_fin
           from jsonb_to_recordset($1::jsonb) as u(id uuid, expected int, estado text, snapshot jsonb,
                error_message text, ahora timestamptz, fecha_fin timestamptz)
           where s.id = u.id and s.version = u.expected
           returning s.id`,
    values: [JSON.stringify(rows)],
  });
  return new Set(updated.map((r) => r.id));
}

/** Inserts the new sagas whose Idempotency-Key is free; returns the ids inserted. */
async function insertSagas(client: pg.PoolClient, writes: NewSagaWrite[]): Promise<Set<string>> {
  const rows = writes.map((w) => ({
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
  }));
  const { rows: inserted } = await client.query<{ id: string }>({
    name: 'saga_insert',
    text: `insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite,
                                 error_message, idempotency_key, request_hash, fecha_inicio, fecha_actualizacion,
                                 fecha_fin, shard)
           select id, tipo, estado, datos, snapshot, 1, timeout_minutos, fecha_limite,
                  null, idempotency_key, request_hash, ahora, ahora, null, shard
           from jsonb_to_recordset($1::jsonb) as u(id uuid, tipo text, estado text, datos jsonb, snapshot jsonb,
                timeout_minutos double precision, fecha_limite timestamptz, idempotency_key text,
                request_hash text, ahora timestamptz, shard int)
           on conflict do nothing
           returning id`,
    values: [JSON.stringify(rows)],
  });
  return new Set(inserted.map((r) => r.id));
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

async function insertOutcomes(
  client: pg.PoolClient,
  table: 'saga_pasos' | 'saga_compensaciones',
  rows: ReturnType<typeof outcomeRow>[],
): Promise<void> {
  if (rows.length === 0) return;
  await client.query({
    name: `${table}_insert`,
    text: `insert into ${table} (id, saga_id, orden, tipo, exitoso, error, resultado, intentos, fecha_ejecucion)
           select id, saga_id, orden, tipo, exitoso, error, resultado, intentos, fecha_ejecucion
           from jsonb_to_recordset($1::jsonb) as u(id uuid, saga_id uuid, orden int, tipo text, exitoso boolean,
                error text, resultado jsonb, intentos int, fecha_ejecucion timestamptz)`,
    values: [JSON.stringify(rows)],
  });
}

function eventRow(sagaId: string, e: EventRecord, epoch: number | null) {
  return { saga_id: sagaId, secuencia: e.secuencia, tipo: e.tipo, estado: e.estado, payload: e.payload, fecha: e.fecha, epoch };
}

async function insertEvents(client: pg.PoolClient, rows: ReturnType<typeof eventRow>[]): Promise<void> {
  if (rows.length === 0) return;
  // Ordered, so the outbox ids of one saga's events follow its sequence.
  await client.query({
    name: 'saga_events_insert',
    text: `insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, publicado_en, epoch)
           select saga_id, secuencia, tipo, estado, payload, fecha, null, epoch
           from jsonb_to_recordset($1::jsonb) as u(saga_id uuid, secuencia int, tipo text, estado text,
                payload jsonb, fecha timestamptz, epoch bigint)
           order by saga_id, secuencia`,
    values: [JSON.stringify(rows)],
  });
}
