// Shard leases taken by hand, for tests (and scripts) that run an outbox relay without
// an orchestrator: the relay publishes a shard only while saga_shards says it holds it.
import type { ShardLease } from '../../src/cluster/shards.js';
import type { Queryable } from '../../src/persistence/sql.js';

/** Takes `shard` for `owner` (whoever held it), with a new epoch, for `ms`; returns the lease. */
export async function takeLease(db: Queryable, shard: number, owner: string, ms = 3_600_000): Promise<ShardLease> {
  const { rows } = await db.query<{ epoch: string }>(
    `update saga_shards set owner = $2, epoch = epoch + 1, lease_until = now() + $3 * interval '1 millisecond'
      where shard = $1 returning epoch`,
    [shard, owner, ms],
  );
  const epoch = rows[0]?.epoch;
  if (epoch === undefined) throw new Error(`no shard ${shard} in saga_shards`);
  return { shard, owner, epoch: Number(epoch) };
}

/** Gives every shard back (no owner), as after a clean stop of every process. */
export async function releaseAllLeases(db: Queryable): Promise<void> {
  await db.query('update saga_shards set owner = null, lease_until = null');
}
