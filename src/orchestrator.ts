// The orchestrator as a library: start sagas, run the sagas of the shards this
// process holds, stop. The HTTP API (src/http/orchestrator-api.ts) uses it.
//
// Several processes share the saga log: each holds leases on some shards
// (src/cluster/lease-manager.ts) and runs one supervisor per shard it holds. A
// new saga reaches its shard's process through a NOTIFY, and a periodic sweep
// catches anything a notification missed.
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from './log.js';
import { createMetrics, type SagaMetrics } from './metrics.js';
import type { ParticipantGateway } from './participants/gateway.js';
import type { AnySagaDefinition } from './saga/definition.js';
import { acceptSaga } from './saga/machine.js';
import { uuidv7 } from './saga/ids.js';
import type { SagaState } from './saga/states.js';
import { SagaStore, type StoredSaga } from './persistence/saga-store.js';
import { SagaWriter, type SagaWriterOptions } from './persistence/saga-writer.js';
import type { Database } from './persistence/database.js';
import { createPool } from './persistence/pool.js';
import { ask, startActorSystem, stopActor, tell, type ActorRef, type ActorSystem } from './actors/nact.js';
import { spawnSupervisor, type SupervisorMessage } from './actors/supervisor.js';
import { LeaseManager } from './cluster/lease-manager.js';
import { NEW_SAGA_CHANNEL, NotificationListener } from './cluster/notifications.js';
import { shardOf, type ShardLease } from './cluster/shards.js';

export interface ClusterOptions {
  /** How long a shard lease lasts without renewal (default 10 s). */
  leaseMs?: number;
  /** How often leases are renewed and shards rebalanced (default a third of leaseMs). */
  renewMs?: number;
  /** How often each held shard is scanned for sagas without an actor (default 5 s). */
  sweepMs?: number;
  /** This process's name in saga_shards.owner (default host-pid-random). */
  nodeId?: string;
}

export interface OrchestratorDeps {
  db: Database;
  gateway: ParticipantGateway;
  definitions: AnySagaDefinition[];
  log: Logger;
  now?: () => Date;
  /** Delay before retrying a commit that failed because the database was unreachable. */
  commitRetryMs?: number;
  cluster?: ClusterOptions;
  /** Group commit of the saga log: batch size and transactions in flight. */
  writer?: SagaWriterOptions;
}

export type StartResult =
  | { kind: 'started' | 'existing'; sagaId: string; estado: SagaState; datos: unknown }
  | { kind: 'keyReused' };

export class Orchestrator {
  readonly nodeId: string;
  readonly metrics: SagaMetrics;
  private readonly store: SagaStore;
  private readonly system: ActorSystem;
  private readonly supervisors = new Map<number, ActorRef<SupervisorMessage>>();
  private readonly definitions: Map<string, AnySagaDefinition>;
  private readonly now: () => Date;
  private readonly doneListeners = new Set<(sagaId: string) => void>();
  private readonly pool: pg.Pool;
  private readonly writePool: pg.Pool;
  private readonly leases: LeaseManager;
  private readonly listener: NotificationListener;
  private readonly sweepMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Sagas being recorded by this process: their own NOTIFY is not news here. */
  private readonly startingHere = new Set<string>();
  private shardCount = 0;

  constructor(private readonly deps: OrchestratorDeps) {
    const cluster = deps.cluster ?? {};
    this.nodeId = cluster.nodeId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.definitions = new Map(deps.definitions.map((d) => [d.tipo, d]));
    this.now = deps.now ?? (() => new Date());
    this.metrics = createMetrics(deps.db);
    this.system = startActorSystem(`saga-orchestrator-${randomUUID()}`);
    const url = deps.db.config.get('clientUrl');
    if (url === undefined) throw new Error('the database has no clientUrl');
    this.pool = createPool(url, 3, deps.log);
    // The saga log's writes: one connection per group-commit transaction in flight.
    this.writePool = createPool(url, deps.writer?.concurrency ?? 1, deps.log);
    this.store = new SagaStore(deps.db, new SagaWriter(this.writePool, deps.writer));
    const leaseMs = cluster.leaseMs ?? 10_000;
    this.leases = new LeaseManager({
      pool: this.pool,
      owner: this.nodeId,
      log: deps.log.child({ node: this.nodeId }),
      leaseMs,
      renewMs: cluster.renewMs ?? Math.floor(leaseMs / 3),
      onAcquired: (lease) => this.shardAcquired(lease),
      onLost: (shard) => this.shardLost(shard),
    });
    this.listener = new NotificationListener(
      NEW_SAGA_CHANNEL,
      url,
      deps.log,
      (payload) => this.notified(payload),
      () => void this.sweep(),
    );
    this.sweepMs = cluster.sweepMs ?? 5_000;
  }

  /** Joins the cluster: takes a share of the shards and resumes their unfinished sagas. */
  async start(): Promise<void> {
    const [row] = await this.pool.query<{ n: number }>('select count(*)::int as n from saga_shards').then((r) => r.rows);
    this.shardCount = row?.n ?? 0;
    if (this.shardCount === 0) throw new Error('saga_shards is empty: are the migrations applied?');
    await this.listener.start();
    await this.leases.start();
    const sweepLater = () => {
      if (this.stopped) return;
      this.sweepTimer = setTimeout(() => void this.sweep().finally(sweepLater), this.sweepMs);
    };
    sweepLater();
  }

  /**
   * Records a new saga durably (snapshot and SagaIniciada event in one
   * transaction) and hands it to its shard's supervisor; returns once recorded.
   */
  async startSaga(tipo: string, datos: unknown, opts: { timeoutMinutos: number; idempotencyKey?: string }): Promise<StartResult> {
    const definition = this.definitions.get(tipo);
    if (definition === undefined) throw new Error(`unknown saga tipo ${tipo}`);
    if (this.shardCount === 0) throw new Error('the orchestrator is not started');
    const sagaId = uuidv7();
    const shard = shardOf(sagaId, this.shardCount);
    const now = this.now();
    const { snapshot, events } = acceptSaga(definition, datos as never, { sagaId, timeoutMinutos: opts.timeoutMinutos, now }, {
      now,
      random: Math.random,
      newId: uuidv7,
    });
    const key = opts.idempotencyKey ?? null;
    this.startingHere.add(sagaId);
    const created = await this.store
      .create({
        id: sagaId,
        shard,
        tipo,
        datos,
        snapshot,
        events,
        idempotencyKey: key,
        requestHash: key === null ? null : requestHash(tipo, datos),
        now,
      })
      .finally(() => this.startingHere.delete(sagaId));
    if (created.kind === 'keyReused') return created;
    if (created.kind === 'existing') {
      return { kind: 'existing', sagaId: created.sagaId, estado: created.estado, datos: created.datos };
    }
    this.deps.log.info({ saga_id: sagaId, tipo, shard }, `SAGA ${sagaId} iniciada: ${tipo}`);
    // Held here: run it now, from the snapshot in hand, rather than wait for our own notification.
    this.run(shard, sagaId, { snapshot, datos, version: 1 });
    return { kind: 'started', sagaId, estado: snapshot.estado, datos };
  }

  /** Hands every unfinished saga of the held shards to its supervisor; returns how many. */
  async sweep(): Promise<number> {
    let count = 0;
    for (const shard of this.leases.shards()) {
      try {
        const ids = await this.store.activeSagaIds(shard);
        for (const sagaId of ids) this.run(shard, sagaId);
        count += ids.length;
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message, shard }, 'sweep failed');
      }
    }
    return count;
  }

  /** The shards this process holds now. */
  heldShards(): number[] {
    return this.leases.shards();
  }

  /** How many saga actors are alive in this process. */
  async activeActors(): Promise<number> {
    let total = 0;
    for (const supervisor of this.supervisors.values()) {
      total += await ask<SupervisorMessage, number>(supervisor, (replyTo) => ({ type: 'countActive', replyTo }), 5_000);
    }
    return total;
  }

  /** Calls `listener` with the id of each saga whose actor finished here (tests). */
  onSagaDone(listener: (sagaId: string) => void): () => void {
    this.doneListeners.add(listener);
    return () => this.doneListeners.delete(listener);
  }

  /**
   * Leaves the cluster: stops every actor and gives the leases back, so another
   * process resumes the unfinished sagas at once instead of after lease expiry.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.sweepTimer);
    await this.listener.stop();
    await this.leases.stop();
    stopActor(this.system);
    await this.pool.end();
    await this.writePool.end();
  }

  private run(shard: number, sagaId: string, saga?: StoredSaga): void {
    const supervisor = this.supervisors.get(shard);
    if (supervisor !== undefined) tell(supervisor, saga === undefined ? { type: 'run', sagaId } : { type: 'run', sagaId, saga });
  }

  private notified(payload: string): void {
    const [shard, sagaId] = payload.split(':');
    // A saga recorded here is run from the snapshot in hand once its write
    // returns; its notification can arrive first, and would cost a read.
    if (shard !== undefined && sagaId !== undefined && !this.startingHere.has(sagaId)) this.run(Number(shard), sagaId);
  }

  private async shardAcquired(lease: ShardLease): Promise<void> {
    const supervisor = spawnSupervisor(
      this.system,
      `shard-${lease.shard}-${lease.epoch}`,
      {
        store: this.store,
        gateway: this.deps.gateway,
        definitions: this.definitions,
        log: this.deps.log,
        now: this.now,
        random: Math.random,
        newId: uuidv7,
        commitRetryMs: this.deps.commitRetryMs ?? 1_000,
        metrics: this.metrics,
        lease,
        onFenced: (shard) => void this.leases.lost(shard),
      },
      (sagaId) => this.doneListeners.forEach((l) => l(sagaId)),
    );
    this.supervisors.set(lease.shard, supervisor);
    const ids = await this.store.activeSagaIds(lease.shard).catch(() => []);
    for (const sagaId of ids) tell(supervisor, { type: 'run', sagaId });
    if (ids.length > 0) this.deps.log.info({ shard: lease.shard, count: ids.length }, 'resuming unfinished sagas');
  }

  private async shardLost(shard: number): Promise<void> {
    const supervisor = this.supervisors.get(shard);
    if (supervisor === undefined) return;
    this.supervisors.delete(shard);
    await ask<SupervisorMessage, number>(supervisor, (replyTo) => ({ type: 'stopAll', replyTo }), 5_000).catch(
      () => undefined,
    );
    stopActor(supervisor);
  }
}

/** Same tipo and body give the same hash, whatever the key order of the JSON. */
function requestHash(tipo: string, datos: unknown): string {
  return createHash('sha256').update(tipo).update(canonicalJson(datos)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
