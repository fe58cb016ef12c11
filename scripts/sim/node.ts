// One simulated orchestrator process. Its saga actors are the real actor code
// (handleMessage in src/actors/saga-actor.ts, which runs the real machine),
// each with a mailbox that takes one message at a time as nact's does. Around
// them, this file keeps the contract of the parts that speak to nact and to
// PostgreSQL, in simulated time: the shard supervisor (one actor per saga;
// orders to a live actor; stop on done), the lease manager (renew, lose, take
// with the real planShards, a higher epoch on each take), the sweep, and the
// notifications. A crash drops everything in memory; a restart is a new
// process with a new owner name.
import pino from 'pino';
import { actorStopped, handleMessage, newActorState, type ActorIO, type SagaActorMessage, type SagaActorState, type SagaRuntime } from '../../src/actors/saga-actor.js';
import { planShards } from '../../src/cluster/shard-plan.js';
import type { ShardLease } from '../../src/cluster/shards.js';
import type { SagaMetrics } from '../../src/metrics.js';
import { DEFAULT_ANSWER_LIMITS, httpGateway } from '../../src/gateway/participant-gateway.js';
import type { LoadedSaga, StoredSaga } from '../../src/persistence/saga-store.js';
import { announcedUnder, parseAnnouncement } from '../../src/cluster/announcement.js';
import { DefinitionRegistry } from '../../src/saga/registry.js';
import type { AnySagaDefinition } from '../../src/saga/definition.js';
import { machineRules, type Faults } from '../../src/faults.js';
import type { Kernel } from './kernel.js';
import type { SimStore, Violation } from './store.js';
import type { Participants } from './participants.js';

const silent = pino({ level: 'silent' });
const noop = () => undefined;
const metrics = new Proxy({}, { get: () => noop }) as unknown as SagaMetrics;

export const LEASE_MS = 3_000;
export const RENEW_MS = 1_000;
export const SWEEP_MS = 5_000;

interface SimActor {
  id: number;
  sagaId: string;
  state: SagaActorState;
  queue: SagaActorMessage[];
  busy: boolean;
  io: ActorIO;
  /** Calls of this actor still unanswered, by Idempotency-Key. */
  calling: Set<string>;
}

interface Supervisor {
  lease: ShardLease;
  actors: Map<string, SimActor>;
}

export interface WorldLinks {
  k: Kernel;
  store: SimStore;
  participants: Participants;
  violations: Violation[];
  faults: Faults;
  nodes: () => SimNode[];
}

let actorIds = 0;

export class SimNode {
  alive = true;
  incarnation = 0;
  owner: string;
  /** Lease renewals stall until then (a process frozen, or cut off from the database). */
  stalledUntil = 0;
  private readonly supervisors = new Map<number, Supervisor>();
  private readonly leftAlone = new Set<string>();
  readonly registry: DefinitionRegistry;
  private readonly versionKeys: string[];
  private ids = 0;

  constructor(
    readonly name: string,
    readonly definitions: readonly AnySagaDefinition[],
    private readonly w: WorldLinks,
  ) {
    this.owner = `${name}.0`;
    this.registry = new DefinitionRegistry(definitions);
    this.versionKeys = this.registry.keys();
  }

  versions(): string[] {
    return this.versionKeys;
  }

  start(): void {
    const inc = this.incarnation;
    const tick = () => {
      if (!this.alive || this.incarnation !== inc) return;
      this.leaseTick();
      this.w.k.at(RENEW_MS, tick);
    };
    const sweep = () => {
      if (!this.alive || this.incarnation !== inc) return;
      this.sweep();
      this.w.k.at(SWEEP_MS, sweep);
    };
    tick();
    this.w.k.at(SWEEP_MS, sweep);
  }

  crash(): void {
    this.w.k.trace(`${this.owner} crashes`);
    this.alive = false;
    for (const sup of this.supervisors.values()) for (const a of sup.actors.values()) this.stopActor(a);
    this.supervisors.clear();
    this.leftAlone.clear();
  }

  restart(): void {
    this.incarnation += 1;
    this.owner = `${this.name}.${this.incarnation}`;
    this.alive = true;
    this.stalledUntil = 0;
    this.w.k.trace(`${this.owner} starts`);
    this.start();
  }

  held(): number[] {
    return [...this.supervisors.keys()].sort((a, b) => a - b);
  }

  /** The lease manager's tick: renew what is still ours, drop what is not, rebalance. */
  private leaseTick(): void {
    const { k, store } = this.w;
    if (k.now < this.stalledUntil) return;
    for (const [shard, sup] of this.supervisors) {
      const row = store.shards[shard]!;
      if (row.owner === this.owner && row.epoch === sup.lease.epoch && row.leaseUntil > k.now) row.leaseUntil = k.now + LEASE_MS;
      else this.lose(shard, 'lease lost');
    }
    const live = this.w.nodes().filter((n) => n.alive && k.now >= n.stalledUntil);
    const needs = store.needsByShard();
    const views = store.shards.map((row, shard) => ({
      shard,
      owner: row.leaseUntil > k.now ? row.owner : null,
      needs: needs[shard]!,
    }));
    const plan = planShards(
      { nodeId: this.owner, versions: this.versions() },
      this.held(),
      views,
      live.map((n) => ({ nodeId: n.owner, versions: n.versions() })),
    );
    for (const shard of plan.release) {
      store.shards[shard]!.owner = null;
      store.shards[shard]!.leaseUntil = 0;
      this.lose(shard, 'released');
    }
    for (const shard of plan.take) {
      const row = store.shards[shard]!;
      if (row.owner !== null && row.leaseUntil > k.now) continue;
      row.owner = this.owner;
      row.epoch += 1;
      row.leaseUntil = k.now + LEASE_MS;
      this.acquired({ shard, owner: this.owner, epoch: row.epoch });
    }
  }

  private acquired(lease: ShardLease): void {
    this.w.k.trace(`${this.owner} takes shard ${lease.shard} epoch ${lease.epoch}`);
    this.supervisors.set(lease.shard, { lease, actors: new Map() });
    this.runUnfinished([lease.shard]);
  }

  /** Called when a write was fenced, or at a tick: stop the shard's actors. */
  lose(shard: number, why: string): void {
    const sup = this.supervisors.get(shard);
    if (sup === undefined) return;
    this.w.k.trace(`${this.owner} loses shard ${shard} (${why})`);
    this.supervisors.delete(shard);
    for (const a of sup.actors.values()) this.stopActor(a);
  }

  /** The sweep: every held shard's unfinished sagas and sagas with orders waiting. */
  private sweep(): void {
    this.runUnfinished(this.held());
  }

  /** Runs the unfinished sagas of `shards` (those not left alone) and those with orders waiting: at a take and at each sweep. */
  private runUnfinished(shards: number[]): void {
    const inc = this.incarnation;
    void this.w.store
      .read(this.owner, () => this.alive && this.incarnation === inc, () => ({
        ids: shards.map((shard) => ({ shard, ids: this.w.store.activeSagaIds(shard) })),
        orders: this.w.store.sagasWithOrders(shards),
      }))
      .then(({ ids, orders }) => {
        for (const { shard, ids: list } of ids) for (const id of list) if (!this.leftAlone.has(id)) this.run(shard, id, {});
        for (const o of orders) this.run(o.shard, o.sagaId, { orders: true });
      }, noop);
  }

  /**
   * A NOTIFY reached this process: an entry as the writer makes it (parsed by the real
   * parseAnnouncement). A new saga announced to the lease this process holds (its own view)
   * is run from what the entry carries, as src/orchestrator.ts does.
   */
  notified(entry: string, kind: 'new' | 'order'): void {
    if (!this.alive) return;
    const heard = parseAnnouncement(entry);
    if (heard === null) return;
    if (kind === 'order') return this.run(heard.shard, heard.sagaId, { orders: true });
    this.run(heard.shard, heard.sagaId, { fresh: true, announced: announcedUnder(heard, this.supervisors.get(heard.shard)?.lease.epoch) });
  }

  /** The supervisor's 'run'. */
  run(shard: number, sagaId: string, opts: { saga?: StoredSaga; announced?: LoadedSaga | undefined; fresh?: boolean; orders?: boolean }): void {
    const sup = this.supervisors.get(shard);
    if (sup === undefined || !this.alive) return;
    const existing = sup.actors.get(sagaId);
    if (existing !== undefined) {
      if (opts.orders === true) this.tell(existing, { type: 'ordersWaiting' });
      return;
    }
    const actor = this.spawn(sup, sagaId, opts.saga ?? null, opts.announced);
    this.tell(actor, { type: 'resume', fresh: opts.fresh === true, orders: opts.orders === true });
  }

  private spawn(sup: Supervisor, sagaId: string, saga: StoredSaga | null, announced?: LoadedSaga): SimActor {
    const { k } = this.w;
    const inc = this.incarnation;
    const node = this.owner;
    const actor: SimActor = {
      id: ++actorIds,
      sagaId,
      state: newActorState(saga, announced),
      queue: [],
      busy: false,
      calling: new Set(),
      io: {
        name: sagaId,
        tell: (m) => this.tell(actor, m),
        setTimer: (ms, fn) => k.at(ms, fn),
        clearTimer: (t) => k.cancel(t),
      },
    };
    const alive = () => this.alive && this.incarnation === inc;
    const client = this.w.participants.client(node, () => alive() && !actor.state.stopped);
    const gateway = httpGateway({ campaigns: 'http://campaigns', pagos: 'http://pagos', reporting: 'http://reporting' }, this.w.faults, DEFAULT_ANSWER_LIMITS, client);
    const rt: SagaRuntime = {
      store: this.w.store.port(node, alive),
      gateway: {
        // The `once` invariant, at the edge of this actor: no second call of one key while its first is unanswered.
        call: async (command, opts) => {
          if (actor.calling.has(opts.idempotencyKey)) {
            this.w.violations.push({ invariant: 'once', detail: `actor ${actor.id} of ${sagaId} on ${node} called ${opts.idempotencyKey} again while its call was unanswered` });
          }
          actor.calling.add(opts.idempotencyKey);
          try {
            return await gateway.call(command, opts);
          } finally {
            actor.calling.delete(opts.idempotencyKey);
          }
        },
      },
      registry: this.registry,
      log: silent,
      now: () => k.date(),
      random: () => k.choices.next(),
      newId: () => `${node}-${(++this.ids).toString(16)}`,
      metrics,
      commitRetryMs: 500,
      faults: this.w.faults,
      rules: machineRules(this.w.faults),
      lease: sup.lease,
      onFenced: (shard) => this.lose(shard, 'fenced'),
      onMissingVersion: (id) => this.leftAlone.add(id),
      onUnparkable: (id) => {
        if (this.w.faults.has('skip-left-alone')) this.leftAlone.add(id);
      },
      onOrdersAfterDone: (id) => k.at(0, () => this.run(sup.lease.shard, id, { orders: true })),
      onDone: (id) =>
        k.at(0, () => {
          const a = sup.actors.get(id);
          if (a !== undefined && a.id === actor.id) {
            sup.actors.delete(id);
            this.stopActor(a);
          }
        }),
    };
    (actor as SimActor & { rt: SagaRuntime }).rt = rt;
    sup.actors.set(sagaId, actor);
    return actor;
  }

  private tell(actor: SimActor, msg: SagaActorMessage): void {
    if (actor.state.stopped) return; // nact drops messages to a stopped actor
    actor.queue.push(msg);
    if (!actor.busy) void this.drain(actor);
  }

  private async drain(actor: SimActor): Promise<void> {
    actor.busy = true;
    const rt = (actor as SimActor & { rt: SagaRuntime }).rt;
    while (actor.queue.length > 0 && !actor.state.stopped) {
      const msg = actor.queue.shift()!;
      this.checkAnswerTaken(actor, msg);
      this.w.k.trace(`${this.owner} ${actor.sagaId} <- ${describe(msg)}`);
      await handleMessage(rt, actor.state, msg, actor.io);
    }
    actor.busy = false;
  }

  /** The `once` invariant: the answer to the call an actor is waiting on is never dropped. */
  private checkAnswerTaken(actor: SimActor, msg: SagaActorMessage): void {
    if (msg.type !== 'callCompleted') return;
    const s = actor.state.saga?.snapshot;
    if (s === undefined || actor.state.done) return;
    const current = s.phase === msg.call.phase && s.step === msg.call.step && s.attempt === msg.call.attempt;
    if (current && !s.inFlight) {
      this.w.violations.push({
        invariant: 'once',
        detail: `actor ${actor.id} of ${actor.sagaId} dropped the answer to its own call ${msg.call.phase}/${msg.call.step}#${msg.call.attempt}`,
      });
    }
  }

  private stopActor(actor: SimActor): void {
    if (actor.state.stopped) return;
    actorStopped(actor.state, actor.io);
  }
}

function describe(msg: SagaActorMessage): string {
  switch (msg.type) {
    case 'callCompleted':
      return `answer ${msg.call.phase}/${msg.call.step}#${msg.call.attempt} ${msg.outcome.kind}`;
    case 'retryDue':
      return `retry ${msg.call.step}#${msg.call.attempt}`;
    case 'operator':
      return `order ${msg.order.accion} ${msg.order.id}`;
    case 'resume':
      return `resume${msg.fresh === true ? ' fresh' : ''}${msg.orders === true ? ' orders' : ''}`;
    default:
      return msg.type;
  }
}
