// Where a new saga recorded outside the orchestrators (by a BFF) starts: on the
// newest version of its tipo that a live orchestrator holding shards runs, in
// a shard held by such an orchestrator. A saga placed by its id alone could
// land in a shard whose holder lacks its version and wait there until the
// shard moved; one on a version no orchestrator runs yet would wait for a
// deploy. Only when no holder runs any of the versions this process knows
// (no orchestrator is up, say) does a saga take the newest, in the shard of
// its id, as before.
import type pg from 'pg';
import type { Logger } from '../log.js';
import { versionKey } from '../saga/registry.js';
import { shardOf } from './shards.js';

/** A shard with a live lease, and the `TIPO@version` its holder runs. */
export interface ShardHolder {
  shard: number;
  versions: readonly string[];
}

export interface Placement {
  shard: number;
  version: number;
}

/** Pure: the version and shard of a new saga of `tipo`, given the versions the caller can build. */
export function placeNewSaga(
  sagaId: string,
  tipo: string,
  versions: readonly number[],
  holders: readonly ShardHolder[],
  shardCount: number,
): Placement {
  const newestFirst = [...versions].sort((a, b) => b - a);
  const tail = Number.parseInt(sagaId.slice(-8), 16);
  for (const version of newestFirst) {
    const key = versionKey(tipo, version);
    const shards = holders
      .filter((h) => h.versions.includes(key))
      .map((h) => h.shard)
      .sort((a, b) => a - b);
    if (shards.length > 0) return { version, shard: shards[tail % shards.length]! };
  }
  return { version: newestFirst[0]!, shard: shardOf(sagaId, shardCount) };
}

/**
 * The holders of the shards, read from saga_shards and saga_nodes at most once
 * per `maxAgeMs` (a BFF records many sagas a second; a placement a moment old
 * is corrected by the shard plan, which moves a shard to where its sagas' versions run).
 */
export class ShardDirectory {
  private holders: ShardHolder[] = [];
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly shardCount: number,
    private readonly log: Logger,
    private readonly maxAgeMs = 1_000,
  ) {}

  async place(sagaId: string, tipo: string, versions: readonly number[]): Promise<Placement> {
    if (performance.now() - this.readAt > this.maxAgeMs) await (this.reading ??= this.read().finally(() => (this.reading = undefined)));
    return placeNewSaga(sagaId, tipo, versions, this.holders, this.shardCount);
  }

  private async read(): Promise<void> {
    try {
      const { rows } = await this.pool.query<ShardHolder>(
        `select s.shard, n.definiciones as versions
           from saga_shards s join saga_nodes n on n.node_id = s.owner
          where s.lease_until > now()`,
      );
      this.holders = rows;
    } catch (err) {
      // Keep the last picture; the saga's own write will tell whether the database is there.
      this.log.warn({ err: (err as Error).message }, 'could not read the shard holders; placing new sagas on the last picture');
    }
    this.readAt = performance.now();
  }
}
