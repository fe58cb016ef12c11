// The saga log as the orchestrator sees it. A saga's snapshot, its new step or
// compensation rows and its events are committed together (by the group-commit
// SagaWriter), and only if the snapshot is still the version the writer last
// saw: a second writer for the same saga (a stale actor, another process) is
// refused instead of overwriting. Reads go through MikroORM.
import type { Database } from './database.js';
import { SagaLogSchema } from './entities/index.js';
import type { NewSaga, SagaWriter } from './saga-writer.js';
import type { Decision, SagaSnapshot } from '../saga/machine.js';
import { TERMINAL_STATES, type SagaState } from '../saga/states.js';
import type { ShardLease } from '../cluster/shards.js';

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

export class SagaStore {
  constructor(
    private readonly db: Database,
    private readonly writer: SagaWriter,
  ) {}

  /** Records a new saga (snapshot and first event) durably, unless its Idempotency-Key was seen. */
  async create(saga: NewSaga): Promise<CreateResult> {
    const result = await this.writer.write({ kind: 'create', ...saga });
    if (result.kind === 'committed') return { kind: 'created' };
    // The key was taken, by an earlier request or one that raced this one.
    const seen = saga.idempotencyKey === null ? null : await this.byIdempotencyKey(saga.idempotencyKey, saga.requestHash);
    if (seen === null) throw new Error(`saga ${saga.id} was not recorded (${result.kind})`);
    return seen;
  }

  async load(id: string): Promise<StoredSaga | null> {
    const row = await this.db.em.fork().findOne(SagaLogSchema, { id });
    return row ? { snapshot: row.snapshot, datos: row.datos, version: row.version } : null;
  }

  /**
   * Commits a decision: the new snapshot (if `expectedVersion` is still current),
   * its rows and its events, together, and only while `lease` is held (see
   * SagaWriter for the checks). Returns the new version.
   */
  async commit(sagaId: string, expectedVersion: number, decision: Decision, now: Date, lease: ShardLease): Promise<number> {
    const result = await this.writer.write({ kind: 'transition', sagaId, expectedVersion, decision, now, lease });
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

  /** Ids of the sagas of `shard` that have not reached a terminal state, oldest first. */
  async activeSagaIds(shard: number): Promise<string[]> {
    const rows = await this.db.em
      .fork()
      .find(
        SagaLogSchema,
        { shard, estado: { $nin: [...TERMINAL_STATES] } },
        { fields: ['id'], orderBy: { fechaInicio: 'asc' } },
      );
    return rows.map((r) => r.id);
  }

  private async byIdempotencyKey(key: string, requestHash: string | null): Promise<CreateResult | null> {
    const row = await this.db.em.fork().findOne(SagaLogSchema, { idempotencyKey: key });
    if (!row) return null;
    if (row.requestHash !== requestHash) return { kind: 'keyReused' };
    return { kind: 'existing', sagaId: row.id, estado: row.estado as SagaState, datos: row.datos };
  }
}
