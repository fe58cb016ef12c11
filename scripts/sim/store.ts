// The simulated saga log: a model of what the real store promises its actors
// (src/persistence/saga-store.ts over the group commit in saga-writer.ts), with
// its faults placed by the seed. A commit lands at one instant, checked as the
// group commit checks it: the shard's lease (owner, epoch, unexpired: the
// fence), the snapshot's version, and, on a recheck, whether an earlier attempt
// with an unknown outcome did land. Rows, events and audit rows land with it;
// an order decided leaves the mailbox. Faults: a write refused for good
// (SQLSTATE 22…), refused for a while (not written), or written with its
// answer lost (an unknown outcome).
import { isDeepStrictEqual } from 'node:util';
import type { Decision, EventRecord } from '../../src/saga/machine.js';
import type { SagaSnapshot } from '../../src/saga/snapshot.js';
import type { OperatorOrder, OperationRecord } from '../../src/saga/operations.js';
import type { ShardLease } from '../../src/cluster/shards.js';
import { TERMINAL_STATES } from '../../src/saga/states.js';
import { FencedError, StaleSagaError, type LoadedSaga, type SagaLog } from '../../src/persistence/saga-store.js';
import { PermanentWriteError } from '../../src/persistence/saga-writer.js';
import type { Kernel } from './kernel.js';

export interface SimSaga {
  id: string;
  shard: number;
  tipo: string;
  datos: unknown;
  snapshot: SagaSnapshot;
  version: number;
  events: EventRecord[];
}

export interface ShardRow {
  owner: string | null;
  epoch: number;
  leaseUntil: number;
}

export interface StoredOrder extends OperatorOrder {
  sagaId: string;
  shard: number;
}

export interface Violation {
  invariant: string;
  detail: string;
}

export class SimStore {
  readonly sagas = new Map<string, SimSaga>();
  readonly shards: ShardRow[];
  readonly mailbox = new Map<string, StoredOrder>();
  readonly audit = new Map<string, OperationRecord & { sagaId: string }>();
  /** Every decision of each order id, in commit order (the audit keeps the first; events show them all). */
  readonly decisions = new Map<string, string[]>();
  readonly violations: Violation[] = [];
  /** Faults are drawn only while this is on (the storm). */
  faulty = false;
  /** The `no-fence` fault: the commit's lease check is left out, as the injection leaves it out of the SQL. */
  unfenced = false;
  /** Called with each saga whose snapshot changed (the BFFs' NOTIFY). */
  onChange: (saga: SimSaga) => void = () => undefined;

  constructor(
    private readonly k: Kernel,
    shardCount: number,
    private readonly p: { writeFault: number; readFault: number },
  ) {
    this.shards = Array.from({ length: shardCount }, () => ({ owner: null, epoch: 0, leaseUntil: 0 }));
  }

  leaseHeld(l: ShardLease): boolean {
    const row = this.shards[l.shard]!;
    return row.owner === l.owner && row.epoch === l.epoch && row.leaseUntil > this.k.now;
  }

  /** The port the real actor code uses (SagaLog), for one process. `alive` says whether that process still runs. */
  port(node: string, alive: () => boolean): SagaLog {
    return {
      load: (id) => this.read(node, alive, () => this.loaded(id)),
      pendingOrders: (id) => this.read(node, alive, () => this.pending(id)),
      commit: (sagaId, expectedVersion, decision, now, lease, recheck) =>
        this.commit(node, alive, sagaId, expectedVersion, decision, lease, recheck === true),
    };
  }

  /** A read: a little later, failing now and then during the storm. */
  read<T>(node: string, alive: () => boolean, fn: () => T): Promise<T> {
    const fails = this.faulty && this.k.choices.chance(this.p.readFault);
    const delay = this.k.choices.int(1, 8);
    return new Promise<T>((resolve, reject) => {
      this.k.at(delay, () => {
        if (!alive()) return; // the process is gone: nobody waits for this answer
        if (fails) {
          this.k.trace(`${node} read failed`);
          reject(new Error('simulated: connection terminated'));
        } else resolve(fn());
      });
    });
  }

  private loaded(id: string): LoadedSaga | null {
    const s = this.sagas.get(id);
    if (s === undefined) return null;
    return {
      tipo: s.tipo,
      estado: s.snapshot.estado,
      versionDefinicion: s.snapshot.version,
      snapshot: structuredClone(s.snapshot),
      datos: s.datos,
      version: s.version,
    };
  }

  private pending(sagaId: string): OperatorOrder[] {
    return [...this.mailbox.values()]
      .filter((o) => o.sagaId === sagaId && !this.audit.has(o.id))
      .sort((a, b) => (a.fecha < b.fecha ? -1 : a.fecha > b.fecha ? 1 : a.id < b.id ? -1 : 1))
      .map(({ sagaId: _s, shard: _h, ...order }) => order);
  }

  private commit(
    node: string,
    alive: () => boolean,
    sagaId: string,
    expectedVersion: number,
    decision: Decision,
    lease: ShardLease,
    recheck: boolean,
  ): Promise<number> {
    const c = this.k.choices;
    const fault = this.faulty && c.chance(this.p.writeFault) ? c.pick(['permanent', 'refused', 'unknown'] as const) : 'none';
    const delay = c.int(1, 12);
    return new Promise<number>((resolve, reject) => {
      this.k.at(delay, () => {
        if (fault === 'permanent') {
          this.k.trace(`${node} commit ${sagaId} refused for good`);
          if (alive()) reject(new PermanentWriteError('22P05', new Error('simulated: unsupported Unicode escape sequence')));
          return;
        }
        if (fault === 'refused') {
          this.k.trace(`${node} commit ${sagaId} failed`);
          if (alive()) reject(new Error('simulated: connection terminated before commit'));
          return;
        }
        const result = this.apply(node, sagaId, expectedVersion, decision, lease, recheck);
        if (!alive()) return;
        if (fault === 'unknown') {
          this.k.trace(`${node} commit ${sagaId} ${result} answer lost`);
          reject(new Error('simulated: connection terminated during commit'));
          return;
        }
        if (result === 'committed') resolve(expectedVersion + 1);
        else if (result === 'fenced') reject(new FencedError(sagaId, lease));
        else reject(new StaleSagaError(sagaId));
      });
    });
  }

  /** The group commit's checks and writes for one transition, at this instant. */
  private apply(node: string, sagaId: string, expected: number, d: Decision, lease: ShardLease, recheck: boolean): 'committed' | 'fenced' | 'stale' {
    const saga = this.sagas.get(sagaId);
    if (saga === undefined) return 'stale';
    const held = this.leaseHeld(lease);
    if (!held && !this.unfenced) return 'fenced';
    if (saga.version !== expected) {
      if (recheck && saga.version === expected + 1 && isDeepStrictEqual(saga.snapshot, d.snapshot)) return 'committed';
      return 'stale';
    }
    if (!held) {
      const row = this.shards[lease.shard]!;
      this.violations.push({
        invariant: 'fence',
        detail: `${node} committed saga ${sagaId} under epoch ${lease.epoch} of shard ${lease.shard}, whose lease is ${row.owner ?? 'free'}@${row.epoch}`,
      });
    }
    saga.snapshot = structuredClone(d.snapshot);
    saga.version = expected + 1;
    saga.events.push(...d.events);
    for (const o of d.operaciones) {
      if (!this.audit.has(o.id)) this.audit.set(o.id, { ...o, sagaId });
      const list = this.decisions.get(o.id) ?? [];
      list.push(o.resultado);
      this.decisions.set(o.id, list);
      this.mailbox.delete(o.id);
    }
    this.k.trace(`${node} commit ${sagaId} v${saga.version} ${saga.snapshot.estado}${d.events.map((e) => ` ${e.tipo}`).join('')}`);
    this.onChange(saga);
    return 'committed';
  }

  /** `TIPO@version` of each shard's sagas that can still move or have orders waiting (as the lease manager reads them). */
  needsByShard(): string[][] {
    const out: string[][] = this.shards.map(() => []);
    const withOrders = new Set([...this.mailbox.values()].map((o) => o.sagaId));
    for (const s of this.sagas.values()) {
      if (TERMINAL_STATES.includes(s.snapshot.estado) && !withOrders.has(s.id)) continue;
      const key = `${s.tipo}@${s.snapshot.version}`;
      const list = out[s.shard]!;
      if (!list.includes(key)) list.push(key);
    }
    return out;
  }

  activeSagaIds(shard: number): string[] {
    return [...this.sagas.values()]
      .filter((s) => s.shard === shard && !TERMINAL_STATES.includes(s.snapshot.estado) && s.snapshot.parked === null)
      .map((s) => s.id);
  }

  sagasWithOrders(shards: readonly number[]): { shard: number; sagaId: string }[] {
    const seen = new Set<string>();
    const out: { shard: number; sagaId: string }[] = [];
    for (const o of this.mailbox.values()) {
      if (shards.includes(o.shard) && !seen.has(o.sagaId)) {
        seen.add(o.sagaId);
        out.push({ shard: o.shard, sagaId: o.sagaId });
      }
    }
    return out;
  }
}
