// Leases on shards, kept in PostgreSQL on the database's clock. Each process
// heartbeats, renews what it holds, and takes or gives up shards so that the
// live processes hold about the same number. A lease that is not renewed in
// time is lost: another process may take it (with a higher epoch), and the old
// owner's writes are refused from then on (see SagaStore.commit).
import type pg from 'pg';
import type { Logger } from '../log.js';
import type { ShardLease } from './shards.js';
import { planShards, type NodeView, type ShardView, type ShardWait } from './shard-plan.js';
import { RUNNING_SQL } from '../persistence/sql.js';
import type { Faults } from '../faults.js';

export interface LeaseOptions {
  pool: pg.Pool;
  owner: string;
  log: Logger;
  /** How long a lease lasts without renewal. */
  leaseMs: number;
  /** How often leases are renewed and shards rebalanced (a third of leaseMs or less). */
  renewMs: number;
  /** `TIPO@version` of every definition this process can run, advertised in saga_nodes. */
  versions: readonly string[];
  /** A shard was taken: start running its sagas. */
  onAcquired: (lease: ShardLease) => Promise<void>;
  /** A shard was lost or is being given up: stop its actors (resolves once stopped). */
  onLost: (shard: number) => Promise<void>;
  /** Bugs switched on for the chaos suite (src/faults.ts): with no-fence, a lease that could not be renewed is kept. */
  faults?: Faults;
}

export class LeaseManager {
  private readonly held = new Map<number, ShardLease>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  /** Held shards with sagas of versions this process lacks and no live process can run with the rest of the shard. */
  private waitingNow: ShardWait[] = [];

  constructor(private readonly opts: LeaseOptions) {}

  /** Takes a first share of the shards, then keeps the leases up to date. */
  async start(): Promise<void> {
    await this.tick();
    this.schedule();
  }

  lease(shard: number): ShardLease | undefined {
    return this.held.get(shard);
  }

  shards(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** Shards held here whose sagas of some versions wait for a process that has them (as of the last round). */
  waiting(): ShardWait[] {
    return this.waitingNow;
  }

  /** Stops renewing and gives every shard back, so others need not wait for expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    const released = this.shards();
    for (const shard of released) await this.release(shard);
    if (released.length > 0) this.opts.log.info({ shards: shardRanges(released) }, `${released.length} shard leases released`);
    await this.opts.pool
      .query('delete from saga_nodes where node_id = $1', [this.opts.owner])
      .catch((err: unknown) => this.opts.log.warn({ err }, 'could not remove node row'));
  }

  /** A write was refused for this shard: the lease is gone, stop its actors now. */
  async lost(shard: number): Promise<void> {
    if (!this.held.delete(shard)) return;
    this.opts.log.warn({ shard }, 'lease lost');
    await this.opts.onLost(shard);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => this.schedule());
    }, this.opts.renewMs);
  }

  /** One round: heartbeat, renew, then take or give up shards towards a fair share. */
  async tick(): Promise<void> {
    try {
      await this.heartbeat();
      await this.renew();
      await this.rebalance();
    } catch (err) {
      // The database is unreachable: nothing can be renewed, and nothing can be
      // written either. Leases will have expired by the time it is back.
      this.opts.log.warn({ err: (err as Error).message }, 'lease round failed');
    }
  }

  private async heartbeat(): Promise<void> {
    await this.opts.pool.query(
      `insert into saga_nodes (node_id, last_seen, definiciones) values ($1, now(), $2)
       on conflict (node_id) do update set last_seen = now(), definiciones = excluded.definiciones`,
      [this.opts.owner, this.opts.versions],
    );
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    const { rows } = await this.opts.pool.query<{ shard: number }>(
      `update saga_shards set lease_until = now() + $2 * interval '1 millisecond'
       where owner = $1 and lease_until > now()
         and (shard, epoch) in (select * from unnest($3::int[], $4::bigint[]))
       returning shard`,
      [this.opts.owner, this.opts.leaseMs, [...this.held.keys()], [...this.held.values()].map((l) => l.epoch)],
    );
    const renewed = new Set(rows.map((r) => r.shard));
    if (this.opts.faults?.has('no-fence') === true) return;
    for (const shard of this.shards()) if (!renewed.has(shard)) await this.lost(shard);
  }

  /**
   * Takes and gives up shards as the cluster's plan says (src/cluster/shard-plan.ts): balanced, and where their
   * sagas' versions are: those of the sagas that can still move (parked ones too: an operator may retry them) and
   * of those with orders waiting.
   */
  private async rebalance(): Promise<void> {
    const { rows: shards } = await this.opts.pool.query<ShardView>(
      `select s.shard, case when s.lease_until > now() then s.owner end as owner, coalesce(a.needs, '{}') as needs
         from saga_shards s
         left join (select shard, array_agg(distinct tipo || '@' || version_definicion) as needs
                      from saga_log l
                     where ${RUNNING_SQL}
                        or exists (select 1 from saga_ordenes o where o.saga_id = l.id)
                     group by shard) a
           on a.shard = s.shard
        order by s.shard`,
    );
    const { rows: nodes } = await this.opts.pool.query<NodeView>(
      `select node_id as "nodeId", definiciones as versions from saga_nodes
        where last_seen > now() - $1 * interval '1 millisecond'`,
      [this.opts.leaseMs],
    );
    const plan = planShards({ nodeId: this.opts.owner, versions: this.opts.versions }, this.shards(), shards, nodes);
    for (const shard of plan.release) await this.release(shard);
    if (plan.release.length > 0) {
      this.opts.log.info({ shards: shardRanges(plan.release), held: this.held.size }, `${plan.release.length} shard leases given up to rebalance`);
    }
    if (plan.take.length > 0) await this.acquire(plan.take);
    this.reportWaiting(plan.waiting.filter((w) => this.held.has(w.shard)));
  }

  /** Says once, not every round, which held shard waits for which versions, and when it no longer does. */
  private reportWaiting(waiting: ShardWait[]): void {
    const text = (w: ShardWait) => `${w.shard}:${w.missing.join('+')}`;
    const before = new Set(this.waitingNow.map(text));
    const now = new Set(waiting.map(text));
    for (const w of waiting) {
      if (!before.has(text(w))) {
        this.opts.log.warn(
          { shard: w.shard, missing: w.missing },
          `shard ${w.shard} holds sagas of ${w.missing.join(', ')}, which no live process that can hold the shard has: those sagas wait`,
        );
      }
    }
    for (const w of this.waitingNow) {
      if (!now.has(text(w))) this.opts.log.info({ shard: w.shard }, `shard ${w.shard} no longer waits for ${w.missing.join(', ')} here`);
    }
    this.waitingNow = waiting;
  }

  private async acquire(wanted: number[]): Promise<void> {
    const { rows } = await this.opts.pool.query<{ shard: number; epoch: string }>(
      `update saga_shards set owner = $1, epoch = epoch + 1, lease_until = now() + $2 * interval '1 millisecond'
       where shard in (
         select shard from saga_shards
         where shard = any($3::int[]) and (owner is null or lease_until is null or lease_until <= now())
         order by shard
         for update skip locked)
       returning shard, epoch`,
      [this.opts.owner, this.opts.leaseMs, wanted],
    );
    for (const r of rows) {
      const lease: ShardLease = { shard: r.shard, owner: this.opts.owner, epoch: Number(r.epoch) };
      this.held.set(r.shard, lease);
      this.opts.log.debug({ shard: r.shard, epoch: lease.epoch }, 'lease acquired');
      await this.opts.onAcquired(lease);
    }
    // One line per round, not one per shard: a start takes all 32 at once.
    if (rows.length > 0) {
      this.opts.log.info({ shards: shardRanges(rows.map((r) => r.shard)), held: this.held.size }, `${rows.length} shard leases acquired`);
    }
  }

  private async release(shard: number): Promise<void> {
    const lease = this.held.get(shard);
    if (lease === undefined) return;
    this.held.delete(shard);
    // Actors stop first: a write in flight holds the shard row, so the release waits for it.
    await this.opts.onLost(shard);
    await this.opts.pool
      .query('update saga_shards set owner = null, lease_until = null where shard = $1 and owner = $2 and epoch = $3', [
        shard,
        lease.owner,
        lease.epoch,
      ])
      .catch((err: unknown) => this.opts.log.warn({ err, shard }, 'could not release lease; it will expire'));
    this.opts.log.debug({ shard }, 'lease released');
  }
}

/** `[0,1,2,3,7]` as `0-3,7`: a short line for a log. */
export function shardRanges(shards: readonly number[]): string {
  const sorted = [...shards].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
