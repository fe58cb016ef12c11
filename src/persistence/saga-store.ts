// Every write the orchestrator makes to the saga log. A saga's snapshot, its new
// step or compensation rows and its events are committed together, and only if
// the snapshot is still the version the writer last saw: a second writer for the
// same saga (a stale actor, another process) is refused instead of overwriting.
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Database, EntityManager } from './database.js';
import {
  SagaCompensacionSchema,
  SagaEventSchema,
  SagaLogSchema,
  SagaPasoSchema,
  type SagaOutcomeRow,
} from './entities/index.js';
import type { Decision, EventRecord, OutcomeRecord, SagaSnapshot } from '../saga/machine.js';
import { TERMINAL_STATES, type SagaState } from '../saga/states.js';
import type { ShardLease } from '../cluster/shards.js';
import { NEW_SAGA_CHANNEL } from '../cluster/notifications.js';

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
  constructor(private readonly db: Database) {}

  async create(saga: NewSaga): Promise<CreateResult> {
    if (saga.idempotencyKey !== null) {
      const seen = await this.byIdempotencyKey(saga.idempotencyKey, saga.requestHash);
      if (seen) return seen;
    }
    try {
      await this.db.em.fork().transactional(async (em) => {
        await em.insert(SagaLogSchema, {
          id: saga.id,
          tipo: saga.tipo,
          estado: saga.snapshot.estado,
          datos: saga.datos,
          snapshot: saga.snapshot,
          version: 1,
          timeoutMinutos: saga.snapshot.timeoutMinutos,
          fechaLimite: new Date(saga.snapshot.deadline),
          errorMessage: null,
          idempotencyKey: saga.idempotencyKey,
          requestHash: saga.requestHash,
          fechaInicio: saga.now,
          fechaActualizacion: saga.now,
          fechaFin: null,
          shard: saga.shard,
        });
        await insertEvents(em, saga.id, saga.events, null);
        // Delivered on commit to every orchestrator; the one holding the shard runs it.
        await em.execute('select pg_notify(?, ?)', [NEW_SAGA_CHANNEL, `${saga.shard}:${saga.id}`]);
      });
      return { kind: 'created' };
    } catch (err) {
      // Two requests with one key raced: the loser answers with the winner's saga.
      if (err instanceof UniqueConstraintViolationException && saga.idempotencyKey !== null) {
        const seen = await this.byIdempotencyKey(saga.idempotencyKey, saga.requestHash);
        if (seen) return seen;
      }
      throw err;
    }
  }

  async load(id: string): Promise<StoredSaga | null> {
    const row = await this.db.em.fork().findOne(SagaLogSchema, { id });
    return row ? { snapshot: row.snapshot, datos: row.datos, version: row.version } : null;
  }

  /**
   * Commits a decision: the new snapshot (if `expectedVersion` is still current),
   * its rows and its events, in one transaction, and only while `lease` is
   * held. Returns the new version.
   */
  async commit(sagaId: string, expectedVersion: number, decision: Decision, now: Date, lease: ShardLease): Promise<number> {
    const s = decision.snapshot;
    await this.db.em.fork().transactional(async (em) => {
      // The fence. FOR SHARE holds the shard row until commit: a take-over (an
      // UPDATE of that row) waits for this write, and this write, if it comes
      // after a take-over, finds the new owner and epoch and is refused.
      const held = await em.execute(
        `select 1 from saga_shards
         where shard = ? and owner = ? and epoch = ? and lease_until > now() for share`,
        [lease.shard, lease.owner, lease.epoch],
      );
      if (held.length === 0) throw new FencedError(sagaId, lease);
      const updated = await em.nativeUpdate(
        SagaLogSchema,
        { id: sagaId, version: expectedVersion },
        {
          estado: s.estado,
          snapshot: s,
          version: expectedVersion + 1,
          errorMessage: s.errorMessage,
          fechaActualizacion: now,
          fechaFin: s.finishedAt === null ? null : new Date(s.finishedAt),
        },
      );
      if (updated !== 1) throw new StaleSagaError(sagaId);
      await insertOutcomes(em, SagaPasoSchema, sagaId, decision.pasos);
      await insertOutcomes(em, SagaCompensacionSchema, sagaId, decision.compensaciones);
      await insertEvents(em, sagaId, decision.events, lease.epoch);
    });
    return expectedVersion + 1;
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

async function insertOutcomes(
  em: EntityManager,
  schema: typeof SagaPasoSchema,
  sagaId: string,
  records: OutcomeRecord[],
): Promise<void> {
  if (records.length === 0) return;
  const rows: SagaOutcomeRow[] = records.map((r) => ({
    id: r.id,
    sagaId,
    orden: r.orden,
    tipo: r.tipo,
    exitoso: r.exitoso,
    error: r.error,
    resultado: r.resultado,
    intentos: r.intentos,
    fechaEjecucion: new Date(r.fechaEjecucion),
  }));
  await em.insertMany(schema, rows);
}

async function insertEvents(em: EntityManager, sagaId: string, events: EventRecord[], epoch: number | null): Promise<void> {
  if (events.length === 0) return;
  await em.insertMany(
    SagaEventSchema,
    events.map((e) => ({
      sagaId,
      secuencia: e.secuencia,
      tipo: e.tipo,
      estado: e.estado,
      payload: e.payload,
      fecha: new Date(e.fecha),
      publicadoEn: null,
      epoch,
    })),
  );
}
