// The saga log as the orchestrator sees it. A saga's snapshot, its new step or
// compensation rows, its events and its operator audit rows are committed
// together (by the group-commit SagaWriter), and only if the snapshot is still
// the version the writer last saw: a second writer for the same saga (a stale
// actor, another process) is refused instead of overwriting.
import type pg from 'pg';
import type { NewSaga, SagaWriter } from './saga-writer.js';
import type { Decision } from '../saga/machine.js';
import type { SagaSnapshot } from '../saga/snapshot.js';
import { orderArguments, type OperatorAction, type OperatorOrder, type OrderData } from '../saga/operations.js';
import type { SagaState } from '../saga/states.js';
import type { ShardLease } from '../cluster/shards.js';
import { BatchedLookup } from './batched-lookup.js';
import { byIdsStatement, RUNNING_SQL } from './sql.js';
import { LOADED_SNAPSHOT_SQL, STEP_RESULTS_JOIN } from './stored-snapshot.js';

export class StaleSagaError extends Error {
  constructor(readonly sagaId: string) {
    super(`saga ${sagaId} was changed by another writer`);
  }
}

/** A write was refused: this process no longer holds the lease of the saga's shard. */
export class FencedError extends Error {
  constructor(readonly sagaId: string, readonly lease: ShardLease) {
    super(`lease on shard ${lease.shard} (epoch ${lease.epoch}) is no longer held; write to saga ${sagaId} refused`);
  }
}

export type { NewSaga };

export type CreateResult =
  | { kind: 'created' }
  /** The Idempotency-Key was seen before with the same body: that saga is the answer. */
  | { kind: 'existing'; sagaId: string; estado: SagaState; datos: unknown }
  /** The Idempotency-Key was seen before with a different body. */
  | { kind: 'keyReused' };

export interface StoredSaga {
  snapshot: SagaSnapshot;
  datos: unknown;
  version: number;
}

/** A saga as read, before its snapshot is brought to the current format (which needs its definition). */
export interface LoadedSaga {
  tipo: string;
  estado: string;
  versionDefinicion: number;
  snapshot: unknown;
  datos: unknown;
  version: number;
}

/** What a saga actor needs of the saga log (the simulator provides its own). */
export type SagaLog = Pick<SagaStore, 'load' | 'commit' | 'pendingOrders'>;

export class SagaStore {
  private readonly loads: BatchedLookup<LoadedSaga>;

  /** `batchWindowMs`: how long a load by id may wait for others to share its query (SAGA_BATCH_WINDOW_MS). */
  constructor(
    private readonly pool: pg.Pool,
    private readonly writer: SagaWriter,
    opts: { batchWindowMs?: number } = {},
  ) {
    this.loads = new BatchedLookup<LoadedSaga>((ids) => this.loadMany(ids), { windowMs: opts.batchWindowMs ?? 0 });
  }

  /** Records a new saga (snapshot and first event) durably, unless its Idempotency-Key was seen. */
  async create(saga: NewSaga): Promise<CreateResult> {
    let result;
    try {
      result = await this.writer.write({ kind: 'create', ...saga });
    } catch (err) {
      // The commit's outcome is unknown (the connection broke): ask what is stored.
      result = await this.writer.write({ kind: 'create', ...saga, recheck: true }).catch(() => {
        throw err;
      });
    }
    if (result.kind === 'committed') return { kind: 'created' };
    // The key was taken, by an earlier request or one that raced this one.
    const seen = saga.idempotencyKey === null ? null : await this.byIdempotencyKey(saga.idempotencyKey, saga.requestHash);
    if (seen === null) throw new Error(`saga ${saga.id} was not recorded (${result.kind})`);
    return seen;
  }

  /**
   * A saga as stored. The loads asked for in one turn of the event loop (the
   * actors a burst of notifications spawns) are read in one query.
   */
  load(id: string): Promise<LoadedSaga | null> {
    return this.loads.get(id);
  }

  private async loadMany(ids: string[]): Promise<Map<string, LoadedSaga>> {
    const { rows } = await this.pool.query<{ id: string; tipo: string; estado: string; version_definicion: number; snapshot: unknown; datos: unknown; version: number }>(
      byIdsStatement(
        'saga_load_many_v3',
        (where) => `select l.id, l.tipo, l.estado, l.version_definicion, ${LOADED_SNAPSHOT_SQL} as snapshot, l.datos, l.version
                      from saga_log l ${STEP_RESULTS_JOIN} where ${where('l.id')}`,
        ids,
      ),
    );
    return new Map(
      rows.map((r) => [r.id, { tipo: r.tipo, estado: r.estado, versionDefinicion: r.version_definicion, snapshot: r.snapshot, datos: r.datos, version: r.version }]),
    );
  }

  /**
   * Commits a decision: the new snapshot (if `expectedVersion` is still current),
   * its rows and its events, together, and only while `lease` is held (see
   * SagaWriter for the checks). `recheck`: an earlier attempt failed with an
   * unknown outcome. Returns the new version.
   */
  async commit(
    sagaId: string,
    expectedVersion: number,
    decision: Decision,
    now: Date,
    lease: ShardLease,
    recheck = false,
  ): Promise<number> {
    const result = await this.writer.write({ kind: 'transition', sagaId, expectedVersion, decision, now, lease, recheck });
    switch (result.kind) {
      case 'committed':
        return expectedVersion + 1;
      case 'fenced':
        throw new FencedError(sagaId, lease);
      case 'stale':
      case 'duplicateKey':
        throw new StaleSagaError(sagaId);
    }
  }

  /** Ids of the sagas of `shard` that can move by themselves (not terminal, not parked), oldest first. */
  async activeSagaIds(shard: number): Promise<string[]> {
    return (await this.activeSagas([shard])).map((r) => r.sagaId);
  }

  /** Unfinished, unparked sagas of these shards (one statement for all), oldest first. */
  async activeSagas(shards: number[]): Promise<{ shard: number; sagaId: string }[]> {
    if (shards.length === 0) return [];
    const { rows } = await this.pool.query<{ id: string; shard: number }>(
      `select id, shard from saga_log where shard = any($1::int[]) and ${RUNNING_SQL} and aparcada is null order by fecha_inicio`,
      [shards],
    );
    return rows.map((r) => ({ shard: r.shard, sagaId: r.id }));
  }

  /** Sagas of these shards with operator orders waiting. */
  async sagasWithOrders(shards: number[]): Promise<{ shard: number; sagaId: string }[]> {
    if (shards.length === 0) return [];
    const { rows } = await this.pool.query<{ shard: number; saga_id: string }>(
      'select distinct shard, saga_id from saga_ordenes where shard = any($1::int[])',
      [shards],
    );
    return rows.map((r) => ({ shard: r.shard, sagaId: r.saga_id }));
  }

  /** The orders waiting for one saga, in the order they were asked. */
  async pendingOrders(sagaId: string): Promise<OperatorOrder[]> {
    // An order placed again after its decision (a race with its requester's
    // retry) is not decided twice: it is dropped from the mailbox.
    const { rows } = await this.pool.query<OrderRow>(
      `with decided as (select id from saga_operaciones where saga_id = $1),
            dropped as (delete from saga_ordenes where saga_id = $1 and id in (select id from decided))
       select id, accion, quien, motivo, datos, request_id, lote_id, fecha_solicitud
         from saga_ordenes where saga_id = $1 and id not in (select id from decided)
        order by fecha_solicitud, id`,
      [sagaId],
    );
    return rows.map(toOrder);
  }

  private async byIdempotencyKey(key: string, requestHash: string | null): Promise<CreateResult | null> {
    const { rows } = await this.pool.query<{ id: string; estado: string; datos: unknown; request_hash: string | null }>(
      'select id, estado, datos, request_hash from saga_log where idempotency_key = $1',
      [key],
    );
    const row = rows[0];
    if (row === undefined) return null;
    if (row.request_hash !== requestHash) return { kind: 'keyReused' };
    return { kind: 'existing', sagaId: row.id, estado: row.estado, datos: row.datos };
  }
}

interface OrderRow {
  id: string;
  accion: OperatorAction;
  quien: string;
  motivo: string;
  datos: OrderData;
  request_id: string | null;
  lote_id: string | null;
  fecha_solicitud: Date;
}

function toOrder(r: OrderRow): OperatorOrder {
  return {
    id: r.id,
    accion: r.accion,
    quien: r.quien,
    motivo: r.motivo,
    fecha: r.fecha_solicitud.toISOString(),
    ...orderArguments(r.datos),
    requestId: r.request_id,
    loteId: r.lote_id,
  };
}
