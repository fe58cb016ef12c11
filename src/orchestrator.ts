// The orchestrator as a library: start sagas, run the sagas of the shards this
// process holds, stop. The HTTP API (src/http/orchestrator-api.ts) uses it.
//
// Several processes share the saga log: each holds leases on some shards
// (src/cluster/lease-manager.ts) and runs one supervisor per shard it holds. A
// new saga reaches its shard's process through a NOTIFY, and a periodic sweep
// catches anything a notification missed.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from './log.js';
import { createMetrics, type SagaMetrics } from './metrics.js';
import type { ParticipantGateway } from './gateway/participant-gateway.js';
import { uuidv7 } from './saga/ids.js';
import { DefinitionRegistry, versionKey } from './saga/registry.js';
import type { AnySagaType } from './saga/saga-type.js';
import { SagaStore, type LoadedSaga, type StoredSaga } from './persistence/saga-store.js';
import { registerDefinitions } from './persistence/definitions.js';
import { foldCounts } from './persistence/counts.js';
import { SagaWriter, type SagaWriterOptions } from './persistence/saga-writer.js';
import type { Database } from './persistence/database.js';
import { createPool } from './persistence/pool.js';
import { sagaLogGaugeReads } from './persistence/saga-log-gauges.js';
import { ask, startActorSystem, stopActor, tell, type ActorRef, type ActorSystem } from './actors/nact.js';
import { spawnSupervisor, type SupervisorMessage } from './actors/supervisor.js';
import { LeaseManager } from './cluster/lease-manager.js';
import { NEW_SAGA_CHANNEL, newSagaChannelOf, NotificationListener, SAGA_LOTE_CHANNEL, SAGA_ORDER_CHANNEL } from './cluster/notifications.js';
import { shardOf, type ShardLease, type ShardListener } from './cluster/shards.js';
import { announcedUnder, parseAnnouncement } from './cluster/announcement.js';
import { SagaIntake, type StartRequest, type StartResult } from './saga-intake.js';
import { machineRules, NO_FAULTS, writerHooks, type Faults } from './faults.js';
import type { MachineRules } from './saga/rules.js';

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
  /** The saga types this process runs, each with every version it can run. */
  types: readonly AnySagaType[];
  log: Logger;
  now?: () => Date;
  /** Delay before retrying a commit that failed because the database was unreachable. */
  commitRetryMs?: number;
  cluster?: ClusterOptions;
  /** Group commit of the saga log: batch size and transactions in flight. */
  writer?: SagaWriterOptions;
  /** Bugs switched on for the chaos suite (src/faults.ts); none unless SAGA_FAULTS names them. */
  faults?: Faults;
}

export type { StartResult } from './saga-intake.js';

export class Orchestrator {
  readonly nodeId: string;
  readonly metrics: SagaMetrics;
  readonly registry: DefinitionRegistry;
  private readonly store: SagaStore;
  private readonly intake: SagaIntake;
  private readonly system: ActorSystem;
  private readonly supervisors = new Map<number, ActorRef<SupervisorMessage>>();
  private readonly now: () => Date;
  private readonly doneListeners = new Set<(sagaId: string) => void>();
  private readonly shardListeners = new Set<ShardListener>();
  private readonly pool: pg.Pool;
  private readonly writePool: pg.Pool;
  private readonly leases: LeaseManager;
  private readonly listener: NotificationListener;
  private readonly sweepMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly loteListeners: (() => void)[] = [];
  private foldTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Sagas being recorded by this process: their own NOTIFY is not news here. */
  private readonly startingHere = new Set<string>();
  /** Sagas this process must leave alone: their definition version is not here (a process never gains one). */
  private readonly leftAlone = new Set<string>();
  private shardCount = 0;
  private readonly rules: MachineRules;

  constructor(private readonly deps: OrchestratorDeps) {
    const cluster = deps.cluster ?? {};
    this.nodeId = cluster.nodeId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.registry = new DefinitionRegistry(deps.types.flatMap((t) => t.versions as never[]));
    this.now = deps.now ?? (() => new Date());
    this.metrics = createMetrics(sagaLogGaugeReads(deps.db));
    this.system = startActorSystem(`saga-orchestrator-${randomUUID()}`);
    const url = deps.db.config.get('clientUrl');
    if (url === undefined) throw new Error('the database has no clientUrl');
    this.pool = createPool(url, 4, deps.log);
    // The saga log's writes: one connection per group-commit transaction in flight.
    this.writePool = createPool(url, deps.writer?.concurrency ?? 1, deps.log);
    const faults = deps.faults ?? NO_FAULTS;
    this.rules = machineRules(faults);
    this.store = new SagaStore(this.pool, new SagaWriter(this.writePool, { ...deps.writer, hooks: writerHooks(faults) }), {
      batchWindowMs: deps.writer?.commitWindowMs ?? 0,
    });
    this.intake = new SagaIntake({ store: this.store, registry: this.registry, types: deps.types, log: deps.log, now: this.now, faults });
    const leaseMs = cluster.leaseMs ?? 10_000;
    this.leases = new LeaseManager({
      pool: this.pool,
      owner: this.nodeId,
      log: deps.log.child({ node: this.nodeId }),
      leaseMs,
      renewMs: cluster.renewMs ?? Math.floor(leaseMs / 3),
      versions: this.registry.keys(),
      onAcquired: (lease) => this.shardAcquired(lease),
      onLost: (shard) => this.shardLost(shard),
      faults,
    });
    this.listener = new NotificationListener(
      [NEW_SAGA_CHANNEL, newSagaChannelOf(this.nodeId), SAGA_ORDER_CHANNEL, SAGA_LOTE_CHANNEL],
      url,
      deps.log,
      (payload, channel) => this.notified(payload, channel),
      () => void this.sweep(),
    );
    this.sweepMs = cluster.sweepMs ?? 5_000;
  }

  /** Joins the cluster: takes a share of the shards and resumes their unfinished sagas. */
  async start(): Promise<void> {
    const [row] = await this.pool.query<{ n: number }>('select count(*)::int as n from saga_shards').then((r) => r.rows);
    this.shardCount = row?.n ?? 0;
    if (this.shardCount === 0) throw new Error('saga_shards is empty: are the migrations applied?');
    await registerDefinitions(this.pool, this.registry);
    await this.listener.start();
    await this.leases.start();
    const sweepLater = () => {
      if (this.stopped) return;
      this.sweepTimer = setTimeout(() => void this.sweep().finally(sweepLater), this.sweepMs);
    };
    sweepLater();
    // The list's counters: the writers append deltas, and the holder of shard 0 folds them
    // (saga_counts_fold lets one process at a time; one is enough, whatever the cluster's size).
    const foldLater = () => {
      if (this.stopped) return;
      this.foldTimer = setTimeout(() => {
        const fold = this.leases.shards().includes(0) ? foldCounts(this.pool, this.deps.log) : Promise.resolve(0);
        void fold.finally(foldLater);
      }, 1_000);
    };
    foldLater();
  }

  /**
   * Records a new saga durably (snapshot and SagaIniciada event in one
   * transaction) in a shard this process holds, and runs it from the snapshot
   * in hand; returns once recorded.
   */
  async startSaga(tipo: string, datos: unknown, opts: { timeoutMinutos: number; idempotencyKey?: string }): Promise<StartResult> {
    if (this.shardCount === 0) throw new Error('the orchestrator is not started');
    const request: StartRequest = {
      tipo,
      datos,
      timeoutMinutos: opts.timeoutMinutos,
      ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }),
    };
    let placed: string | undefined;
    const result = await this.intake
      .start(request, (sagaId) => {
        placed = sagaId;
        this.startingHere.add(sagaId);
        return this.shardFor(sagaId);
      })
      .finally(() => placed !== undefined && this.startingHere.delete(placed));
    // Held here: run it now, from the snapshot in hand, rather than wait for our own notification.
    if (result.kind === 'started') this.run(result.shard, result.sagaId, { saga: result.saga, fresh: true });
    return result;
  }

  /** Hands every unfinished saga of the held shards, and every saga with orders waiting, to its supervisor. */
  async sweep(): Promise<number> {
    let count = 0;
    // One statement for every held shard: a process's sweep costs the same whatever its share of the shards.
    const shards = this.leases.shards();
    try {
      const active = await this.store.activeSagas(shards);
      // A shard lost meanwhile has no supervisor any more: run() leaves its sagas alone.
      for (const { shard, sagaId } of active) if (!this.leftAlone.has(sagaId)) this.run(shard, sagaId);
      count = active.length;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message, shards }, 'sweep failed');
    }
    try {
      // Orders are looked at even for sagas left alone: one of them may migrate the saga to a version this process has.
      for (const { shard, sagaId } of await this.store.sagasWithOrders(this.leases.shards())) this.run(shard, sagaId, { orders: true });
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'sweep of operator orders failed');
    }
    return count;
  }

  /** The shards this process holds now. */
  heldShards(): number[] {
    return this.leases.shards();
  }

  /**
   * Tells `listener` of each lease held now, then of every lease taken and every shard lost or
   * given up (the outbox relays follow this); returns a function that ends the calls.
   */
  onShards(listener: ShardListener): () => void {
    this.shardListeners.add(listener);
    for (const shard of this.leases.shards()) {
      const lease = this.leases.lease(shard);
      if (lease !== undefined) listener.acquired(lease);
    }
    return () => this.shardListeners.delete(listener);
  }

  /** A write fenced outside the saga actors (an outbox relay's): the lease is lost, unless it was taken anew since. */
  leaseFenced(lease: ShardLease): void {
    if (this.leases.lease(lease.shard)?.epoch === lease.epoch) void this.leases.lost(lease.shard);
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
    clearTimeout(this.foldTimer);
    await this.listener.stop();
    await this.leases.stop();
    stopActor(this.system);
    await this.pool.end();
    await this.writePool.end();
  }

  /** A new saga goes to a shard held here (so it runs without a read), or by its id if none is. */
  private shardFor(sagaId: string): number {
    const held = this.leases.shards();
    const tail = Number.parseInt(sagaId.slice(-8), 16);
    return held.length === 0 ? shardOf(sagaId, this.shardCount) : held[tail % held.length]!;
  }

  private run(shard: number, sagaId: string, opts: { saga?: StoredSaga; announced?: LoadedSaga | undefined; fresh?: boolean; orders?: boolean } = {}): void {
    const supervisor = this.supervisors.get(shard);
    if (supervisor !== undefined) tell(supervisor, { type: 'run', sagaId, ...opts });
  }

  /** Called when an operator records a lote (SAGA_LOTE_CHANNEL): the lote worker wakes. */
  onLoteRecorded(listener: () => void): void {
    this.loteListeners.push(listener);
  }

  private notified(payload: string, channel: string): void {
    if (channel === SAGA_LOTE_CHANNEL) {
      for (const listener of this.loteListeners) listener();
      return;
    }
    for (const entry of payload.split(',')) {
      const heard = parseAnnouncement(entry);
      if (heard === null) continue;
      if (channel === SAGA_ORDER_CHANNEL) this.run(heard.shard, heard.sagaId, { orders: true });
      // A saga recorded here is run from the snapshot in hand once its write
      // returns; its notification can arrive first, and would cost a read.
      // One recorded elsewhere is run from what its announcement carries, if
      // it was announced to the lease held now (src/cluster/announcement.ts).
      else if (!this.startingHere.has(heard.sagaId)) {
        this.run(heard.shard, heard.sagaId, { fresh: true, announced: announcedUnder(heard, this.leases.lease(heard.shard)?.epoch) });
      }
    }
  }

  private async shardAcquired(lease: ShardLease): Promise<void> {
    const supervisor = spawnSupervisor(
      this.system,
      `shard-${lease.shard}-${lease.epoch}`,
      {
        store: this.store,
        gateway: this.deps.gateway,
        registry: this.registry,
        log: this.deps.log,
        now: this.now,
        random: Math.random,
        newId: uuidv7,
        faults: this.deps.faults,
        rules: this.rules,
        commitRetryMs: this.deps.commitRetryMs ?? 1_000,
        metrics: this.metrics,
        lease,
        onFenced: (shard) => void this.leases.lost(shard),
        onMissingVersion: (sagaId, tipo, version) => {
          if (!this.leftAlone.has(sagaId)) {
            this.deps.log.warn(
              { saga_id: sagaId, version: versionKey(tipo, version), shard: lease.shard },
              'saga waits for a process with its definition version; left alone here',
            );
          }
          this.leftAlone.add(sagaId);
        },
        // Not left alone: the next sweep runs it again, and parks it once the database takes the write.
        onUnparkable: (sagaId) => {
          if (this.deps.faults?.has('skip-left-alone') === true) this.leftAlone.add(sagaId);
        },
      },
      (sagaId) => this.doneListeners.forEach((l) => l(sagaId)),
    );
    this.supervisors.set(lease.shard, supervisor);
    for (const listener of this.shardListeners) listener.acquired(lease);
    const ids = await this.store.activeSagaIds(lease.shard).catch(() => []);
    if (this.deps.faults?.has('no-takeover-resume') === true) {
      // The fault: what was unfinished here is neither resumed nor swept.
      for (const sagaId of ids) this.leftAlone.add(sagaId);
      return;
    }
    for (const sagaId of ids) if (!this.leftAlone.has(sagaId)) tell(supervisor, { type: 'run', sagaId });
    const withOrders = await this.store.sagasWithOrders([lease.shard]).catch(() => []);
    for (const { sagaId } of withOrders) tell(supervisor, { type: 'run', sagaId, orders: true });
    if (ids.length > 0) this.deps.log.info({ shard: lease.shard, count: ids.length }, 'resuming unfinished sagas');
  }

  private async shardLost(shard: number): Promise<void> {
    for (const listener of this.shardListeners) listener.lost(shard);
    const supervisor = this.supervisors.get(shard);
    if (supervisor === undefined) return;
    this.supervisors.delete(shard);
    await ask<SupervisorMessage, number>(supervisor, (replyTo) => ({ type: 'stopAll', replyTo }), 5_000).catch(
      () => undefined,
    );
    stopActor(supervisor);
  }
}
