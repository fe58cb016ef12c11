// Group commit for the saga log. Every saga actor's write (a new saga, or a
// transition: snapshot, step or compensation rows, events, operator audit rows)
// is queued here, and the writes that pile up while one transaction is in
// flight go together in the next: one durable commit for many sagas. Nothing
// is acknowledged before the transaction that holds it has committed, and each
// write keeps its own checks inside the shared transaction:
//  - the fence: the shard rows are read FOR SHARE with owner, epoch and an
//    unexpired lease, so a take-over waits for this commit, and a write whose
//    lease is gone is refused (and only that write);
//  - the version: a snapshot changes only if it is still the version its actor
//    last saw, so a second writer of one saga is refused;
//  - the Idempotency-Key: a new saga whose key exists is not inserted.
// Writes that were refused add nothing else (no rows, no events).
//
// A batch that fails is retried write by write, so one bad write fails alone.
// A write retried after a failure whose outcome is unknown (the connection
// broke during the commit) is checked against what is stored: if it did
// commit, it is acknowledged, not refused. A write PostgreSQL refuses for good
// (a data or constraint error, SQLSTATE class 22, 23 or 54) is reported as
// such, so its saga can be parked instead of retried for ever.
//
// This is the orchestrator's hot path, so it speaks SQL to pg directly: one
// statement per batch, whatever its size, with the rows passed as one JSON
// document each. MikroORM keeps the schema (migrations) and other reads.
import type pg from 'pg';
import type { Decision, EventRecord, OutcomeRecord } from '../saga/machine.js';
import type { SagaSnapshot } from '../saga/snapshot.js';
import { orderData, type OperationRecord } from '../saga/operations.js';
import { TERMINAL_STATES } from '../saga/states.js';
import type { ShardLease } from '../cluster/shards.js';
import { NEW_SAGA_CHANNEL, SAGA_CHANGES_CHANNEL } from '../cluster/notifications.js';
import { ANNOUNCED_ENTRY_MAX, encodeAnnouncement } from '../cluster/announcement.js';
import { storableJson } from './storable.js';
import { storedSnapshot } from './stored-snapshot.js';

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
  /** Business data to search it by. */
  claves: Record<string, string>;
  now: Date;
}

export type NewSagaWrite = NewSaga & { kind: 'create'; recheck?: boolean };

export interface TransitionWrite {
  kind: 'transition';
  sagaId: string;
  expectedVersion: number;
  decision: Decision;
  now: Date;
  lease: ShardLease;
  /** An earlier attempt of this same write failed with an unknown outcome: it may be committed already. */
  recheck?: boolean;
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

/** PostgreSQL refuses this write whatever we do: its data breaks a rule of the schema. */
export class PermanentWriteError extends Error {
  constructor(
    readonly sqlState: string,
    cause: unknown,
  ) {
    super(`PostgreSQL refused the write (SQLSTATE ${sqlState}): ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** Data exceptions, integrity violations, program limits: retrying the same write cannot help. */
export function isPermanent(err: unknown): string | null {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23|54)/.test(code) ? code : null;
}

export interface SagaWriterOptions {
  /** Most writes in one transaction. */
  maxBatch?: number;
  /** Transactions in flight at once. */
  concurrency?: number;
  /**
   * How long the first write of a batch may wait for others to join it (0: the
   * batch leaves at the end of the event loop's turn). Fewer commits per saga
   * when each process is lightly loaded, at the cost of this much latency per step.
   */
  commitWindowMs?: number;
  /**
   * Announce each new saga to its shard's holder with the saga itself (src/cluster/announcement.ts), so
   * that the holder need not read it back: for a writer whose new sagas another process runs (a BFF's).
   * An orchestrator runs what it records from the snapshot in hand, and its announcements name ids only.
   */
  announceSagas?: boolean;
  /** Changes made at start by the fault catalogue (src/faults.ts, writerHooks); none in production. */
  hooks?: WriterHooks;
}

/** An event row as the group commit writes it. */
export type EventRow = ReturnType<typeof eventRow>;

/**
 * Where the fault catalogue may change the writer: the statement (a check
 * left out), and the events (written outside the commit). Production sets none.
 */
export interface WriterHooks {
  statement?: { name: string; rewrite: (sql: string) => string };
  /** Given the events of the committed writes, instead of writing them in the commit. */
  eventsOutside?: (pool: pg.Pool, events: EventRow[]) => void;
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
  private readonly windowMs: number;
  private readonly announceSagas: boolean;
  /** When the oldest queued write arrived (performance.now()), for the commit window. */
  private oldestQueuedAt = 0;
  private readonly hooks: WriterHooks;
  private readonly statement: { name: string; text: string };

  constructor(
    private readonly pool: pg.Pool,
    opts: SagaWriterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.concurrency = opts.concurrency ?? 1;
    this.windowMs = opts.commitWindowMs ?? 0;
    this.announceSagas = opts.announceSagas ?? false;
    this.hooks = opts.hooks ?? {};
    const variant = this.hooks.statement;
    this.statement = variant === undefined ? { name: 'saga_group_commit', text: GROUP_COMMIT_SQL } : { name: variant.name, text: variant.rewrite(GROUP_COMMIT_SQL) };
  }

  /** Queues a write; resolves once it is committed (or refused), rejects if its transaction failed. */
  write(write: SagaWrite): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      if (this.queue.length === 0) this.oldestQueuedAt = performance.now();
      this.queue.push({ write, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.concurrency || this.queue.length === 0) return;
    this.scheduled = true;
    // Wait for the rest of this turn of the event loop (the actors woken by the
    // same batch of I/O all get their writes into one transaction), and for what
    // is left of the commit window unless the batch is already full.
    const left = this.queue.length >= this.maxBatch ? 0 : this.oldestQueuedAt + this.windowMs - performance.now();
    const go = () => {
      this.scheduled = false;
      if (this.inFlight >= this.concurrency || this.queue.length === 0) return;
      const batch = this.queue.splice(0, this.maxBatch);
      if (this.queue.length > 0) this.oldestQueuedAt = performance.now();
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        this.schedule();
      });
    };
    if (left > 0) setTimeout(go, left);
    else setImmediate(go);
  }

  private async run(batch: Pending[]): Promise<void> {
    try {
      const results = await this.commit(batch.map((p) => p.write));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(asWriteError(err));
        return;
      }
      // One bad write must not fail the others: each goes again on its own,
      // checked against what may have committed before the failure.
      for (const p of batch) {
        try {
          const [result] = await this.commit([{ ...p.write, recheck: true }]);
          p.resolve(result!);
        } catch (e) {
          p.reject(asWriteError(e));
        }
      }
    }
  }

  /**
   * One transaction for `writes`, as one SQL statement (so one round trip: a
   * single statement is its own transaction); returns each write's result, in order.
   */
  private async commit(writes: SagaWrite[]): Promise<WriteResult[]> {
    // Every row carries the index of its write in the batch: a write's rows are written only if its own
    // snapshot is, even when another write of the same saga (a fenced actor's, say) shares the batch.
    const indexed = writes.map((write, w) => ({ write, w }));
    const transitions = indexed.filter((x): x is { write: TransitionWrite; w: number } => x.write.kind === 'transition');
    const creates = indexed.filter((x): x is { write: NewSagaWrite; w: number } => x.write.kind === 'create');
    const rowsOf = (pick: (d: Decision) => OutcomeRecord[]) =>
      transitions.flatMap(({ write, w }) => pick(write.decision).map((r) => outcomeRow(w, write.sagaId, r)));
    const events = [
      ...creates.flatMap(({ write, w }) => write.events.map((e) => eventRow(w, write.id, e, null, write.shard))),
      ...transitions.flatMap(({ write, w }) =>
        write.decision.events.map((e) => eventRow(w, write.sagaId, e, write.lease.epoch, write.lease.shard)),
      ),
    ];
    const eventsOutside = this.hooks.eventsOutside;
    const { rows } = await this.pool.query<{ k: 'held' | 'done' | 'notified'; v: string }>({
      name: this.statement.name,
      text: this.statement.text,
      values: [
        storableJson(transitions.map(({ write, w }) => transitionRow(w, write))),
        storableJson(creates.map(({ write, w }) => ({ ...createRow(w, write), aviso: this.announceSagas ? announcement(write) : null }))),
        storableJson(rowsOf((d) => d.pasos)),
        storableJson(rowsOf((d) => d.compensaciones)),
        storableJson(eventsOutside === undefined ? events : []),
        storableJson(creates.flatMap(({ write }) => claveRows(write))),
        storableJson(transitions.flatMap(({ write, w }) => write.decision.operaciones.map((o) => operationRow(w, write.sagaId, o)))),
        NEW_SAGA_CHANNEL,
        SAGA_CHANGES_CHANNEL,
        TERMINAL_STATES,
      ],
    });
    const held = new Set<string>();
    const done = new Set<number>();
    for (const r of rows) {
      if (r.k === 'held') held.add(r.v);
      else if (r.k === 'done') done.add(Number(r.v));
    }
    this.stats.transactions += 1;
    this.stats.writes += writes.length;
    eventsOutside?.(this.pool, events.filter((e) => done.has(e.w)));
    return writes.map((write, w): WriteResult => {
      if (write.kind === 'create') return done.has(w) ? { kind: 'committed' } : { kind: 'duplicateKey' };
      if (done.has(w)) return { kind: 'committed' };
      return held.has(leaseKey(write.lease)) ? { kind: 'stale' } : { kind: 'fenced' };
    });
  }
}

function asWriteError(err: unknown): unknown {
  const code = isPermanent(err);
  return code === null ? err : new PermanentWriteError(code, err);
}

const leaseKey = (l: ShardLease) => `${l.shard}/${l.owner}/${l.epoch}`;

/** Step or compensation rows from parameter $n, of the writes whose snapshot was just updated. */
const insertOutcomes = (table: 'saga_pasos' | 'saga_compensaciones', n: number) => `
  insert into ${table} (id, saga_id, orden, tipo, exitoso, error, resultado, intentos, manual, fecha_ejecucion)
  select id, saga_id, orden, tipo, exitoso, error, resultado, intentos, manual, fecha_ejecucion
  from jsonb_to_recordset($${n}::jsonb) as p(w int, id uuid, saga_id uuid, orden int, tipo text, exitoso boolean,
    error text, resultado jsonb, intentos int, manual boolean, fecha_ejecucion timestamptz)
  where w in (select w from updated)`;

/**
 * Outbox rows from parameter $n, those of the writes `written` (a condition on w), in each saga's sequence order,
 * each with its saga's shard (whose lease holder publishes it).
 */
export const insertEvents = (n: number, written: string) => `
  insert into saga_events (saga_id, secuencia, tipo, estado, payload, fecha, publicado_en, epoch, shard)
  select saga_id, secuencia, tipo, estado, payload, fecha, null, epoch, shard
  from jsonb_to_recordset($${n}::jsonb) as e(w int, saga_id uuid, secuencia int, tipo text, estado text, payload jsonb,
    fecha timestamptz, epoch bigint, shard int)
  where ${written}
  order by saga_id, secuencia`;

/** `pg_notify` of `entries` (columns ch, e) on each one's channel, in payloads of at most `per` entries (a payload holds 8000 bytes). */
const notifyChunks = (entries: string, per: number) => `
  select pg_notify(ch, string_agg(e, ',')) from (
    select ch, e, (row_number() over (partition by ch)) / ${per} as g from (${entries}) x
  ) chunks group by ch, g`;

/**
 * The whole batch. Parameters, each a JSON array: $1 transitions, $2 new sagas,
 * $3 step rows, $4 compensation rows, $5 events, $6 search keys of new sagas,
 * $7 operator audit rows; $8 the new-saga channel, $9 the changes channel, $10 the final states.
 *  - held: the leases of the transitions' shards that are unexpired now, read
 *    FOR SHARE so a take-over waits for this commit;
 *  - updated: snapshots whose lease is held and whose version is the expected one;
 *  - inserted: new sagas whose Idempotency-Key is free;
 *  - recommitted / recreated: writes flagged `recheck` that an earlier,
 *    failed-looking attempt did commit (same id, same snapshot);
 *  - rows, events and audit rows are written only for the writes (by their
 *    index w in the batch, not their saga id) in updated or inserted: a fenced
 *    write of a saga that another write of the batch moves adds nothing; events
 *    in each saga's sequence order, so their outbox ids follow it; an order
 *    decided here leaves the mailbox (saga_ordenes);
 *  - NOTIFYs, delivered on commit, a few per batch: new sagas (shard:id) to the
 *    holder of their shard (its own channel: newSagaChannelOf; the general
 *    channel $8 when none holds it), each with the saga and the holder's lease
 *    epoch (shard:id:saga:epoch, src/cluster/announcement.ts) when all of the
 *    holder's fit in one notification; and to the BFFs (id estado) what they wait on: a saga that
 *    ended ($10, the final states), an operator order decided, and every change
 *    of a saga watched live (saga_vigilancias). Every NOTIFY wakes every
 *    listening backend and process, so a change nobody waits on is not told.
 * Data-modifying CTEs run once each, whether or not the final select reads them;
 * the plain selects that notify run only as far as they are read, hence their count.
 */
const GROUP_COMMIT_SQL = `
with t as (
  select * from jsonb_to_recordset($1::jsonb) as t(w int, id uuid, expected int, estado text, snapshot jsonb,
    error_message text, ahora timestamptz, fecha_fin timestamptz, shard int, owner text, epoch bigint,
    version_definicion int, pausada boolean, aparcada text, esperado_antes timestamptz, recheck boolean)
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
      fecha_actualizacion = t.ahora, fecha_fin = t.fecha_fin, version_definicion = t.version_definicion,
      pausada = t.pausada, aparcada = t.aparcada, esperado_antes = t.esperado_antes, epoch = t.epoch
  from t
  where s.id = t.id and s.version = t.expected
    and exists (select 1 from held h where h.shard = t.shard and h.owner = t.owner and h.epoch = t.epoch)
  returning s.id, s.estado, t.w
),
recommitted as (
  select t.w from saga_log s join t on s.id = t.id
  where t.recheck and s.version = t.expected + 1 and s.snapshot = t.snapshot
),
c as (
  select * from jsonb_to_recordset($2::jsonb) as c(w int, id uuid, tipo text, estado text, datos jsonb, snapshot jsonb,
    timeout_minutos double precision, fecha_limite timestamptz, idempotency_key text, request_hash text,
    ahora timestamptz, shard int, version_definicion int, esperado_antes timestamptz, recheck boolean, aviso text)
),
inserted as (
  insert into saga_log (id, tipo, estado, datos, snapshot, version, timeout_minutos, fecha_limite, error_message,
                        idempotency_key, request_hash, fecha_inicio, fecha_actualizacion, fecha_fin, shard,
                        version_definicion, esperado_antes)
  select id, tipo, estado, datos, snapshot, 1, timeout_minutos, fecha_limite, null,
         idempotency_key, request_hash, ahora, ahora, null, shard, version_definicion, esperado_antes
  from c
  on conflict do nothing
  returning id, shard, estado
),
inserted_w as (
  select c.w from c join inserted i on i.id = c.id
),
recreated as (
  select c.w from saga_log s join c on s.id = c.id where c.recheck
),
claves as (
  insert into saga_claves (clave, valor, fecha_inicio, saga_id)
  select clave, valor, fecha_inicio, saga_id
  from jsonb_to_recordset($6::jsonb) as k(clave text, valor text, fecha_inicio timestamptz, saga_id uuid)
  where saga_id in (select id from inserted)
),
pasos as (${insertOutcomes('saga_pasos', 3)}),
compensaciones as (${insertOutcomes('saga_compensaciones', 4)}),
events as (${insertEvents(5, 'w in (select w from updated union all select w from inserted_w)')}),
o as (
  select * from jsonb_to_recordset($7::jsonb) as o(w int, id text, saga_id uuid, accion text, quien text, motivo text,
    datos jsonb, request_id text, lote_id uuid, fecha_solicitud timestamptz, fecha timestamptz, resultado text,
    detalle text)
  where w in (select w from updated)
),
decided as (
  insert into saga_operaciones (id, saga_id, accion, quien, motivo, datos, request_id, lote_id, fecha_solicitud,
                                fecha, resultado, detalle)
  select id, saga_id, accion, quien, motivo, datos, request_id, lote_id, fecha_solicitud, fecha, resultado, detalle
  from o
  on conflict (id) do nothing
),
delivered as (
  delete from saga_ordenes where id in (select id from o)
),
announced as (${notifyChunks(
  `select ch, case when sum(length(rich) + 1) over (partition by ch) <= ${ANNOUNCED_ENTRY_MAX} then rich else plain end as e
     from (
       select coalesce($8 || '_' || left(md5(h.owner), 16), $8) as ch, i.shard || ':' || i.id as plain,
              i.shard || ':' || i.id || coalesce(':' || c.aviso || ':' || h.epoch, '') as rich
       from inserted i join c on c.id = i.id
       left join saga_shards h on h.shard = i.shard and h.owner is not null and h.lease_until > now()
     ) a`,
  150,
)}),
changed as (${notifyChunks(
  `select $9::text as ch, u.id || ' ' || u.estado as e from updated u
    where u.estado = any($10::text[]) or u.w in (select w from o)
       or exists (select 1 from saga_vigilancias v where v.saga_id = u.id and v.hasta > now())
   union all select $9::text, id || ' ' || estado from inserted where estado = any($10::text[])`,
  100,
)})
select 'held' as k, shard || '/' || owner || '/' || epoch as v from held
union all select 'done', w::text from updated
union all select 'done', w::text from recommitted
union all select 'done', w::text from inserted_w
union all select 'done', w::text from recreated
union all select 'notified', count(*)::text from (select 1 from announced union all select 1 from changed) n`;

function transitionRow(index: number, w: TransitionWrite) {
  const s = w.decision.snapshot;
  return {
    w: index,
    id: w.sagaId,
    expected: w.expectedVersion,
    estado: s.estado,
    snapshot: storedSnapshot(s),
    error_message: s.errorMessage,
    ahora: w.now.toISOString(),
    fecha_fin: s.finishedAt,
    shard: w.lease.shard,
    owner: w.lease.owner,
    epoch: w.lease.epoch,
    version_definicion: s.version,
    pausada: s.paused !== null,
    aparcada: s.parked?.motivo ?? null,
    esperado_antes: s.expectBy,
    recheck: w.recheck === true,
  };
}

function createRow(index: number, w: NewSagaWrite) {
  return {
    w: index,
    id: w.id,
    tipo: w.tipo,
    estado: w.snapshot.estado,
    datos: w.datos,
    snapshot: storedSnapshot(w.snapshot),
    timeout_minutos: w.snapshot.timeoutMinutos,
    fecha_limite: w.snapshot.deadline,
    idempotency_key: w.idempotencyKey,
    request_hash: w.requestHash,
    ahora: w.now.toISOString(),
    shard: w.shard,
    version_definicion: w.snapshot.version,
    esperado_antes: w.snapshot.expectBy,
    recheck: w.recheck === true,
  };
}

/** The saga for its announcement's entry, or null if the entry would be too long. */
function announcement(w: NewSagaWrite): string | null {
  return encodeAnnouncement(
    { tipo: w.tipo, versionDefinicion: w.snapshot.version, snapshot: storedSnapshot(w.snapshot), datos: w.datos },
    `${w.shard}:${w.id}`.length,
  );
}

function claveRows(w: NewSagaWrite) {
  return Object.entries(w.claves).map(([clave, valor]) => ({ clave, valor, fecha_inicio: w.now.toISOString(), saga_id: w.id }));
}

function outcomeRow(w: number, sagaId: string, r: OutcomeRecord) {
  return {
    w,
    id: r.id,
    saga_id: sagaId,
    orden: r.orden,
    tipo: r.tipo,
    exitoso: r.exitoso,
    error: r.error,
    resultado: r.resultado,
    intentos: r.intentos,
    manual: r.manual,
    fecha_ejecucion: r.fechaEjecucion,
  };
}

function eventRow(w: number, sagaId: string, e: EventRecord, epoch: number | null, shard: number) {
  return { w, saga_id: sagaId, secuencia: e.secuencia, tipo: e.tipo, estado: e.estado, payload: e.payload, fecha: e.fecha, epoch, shard };
}

function operationRow(w: number, sagaId: string, o: OperationRecord) {
  return {
    w,
    id: o.id,
    saga_id: sagaId,
    accion: o.accion,
    quien: o.quien,
    motivo: o.motivo,
    datos: orderData(o),
    request_id: o.requestId ?? null,
    lote_id: o.loteId ?? null,
    fecha_solicitud: o.fecha,
    fecha: o.decididaEn,
    resultado: o.resultado,
    detalle: o.detalle,
  };
}
