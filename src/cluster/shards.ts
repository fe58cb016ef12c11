/** The shard a saga belongs to: fixed for its whole life, derived from its id. */
export function shardOf(sagaId: string, shardCount: number): number {
  // The last 32 bits are random in both random (v4) and time-ordered (v7) UUIDs.
  return Number.parseInt(sagaId.slice(-8), 16) % shardCount;
}

/** A lease held by this process: the right to write the sagas of one shard. */
export interface ShardLease {
  shard: number;
  owner: string;
  /** Grows at every change of owner; every saga write is checked against it. */
  epoch: number;
}

/** Told of the leases a process takes and loses (its outbox relay follows them: Orchestrator.onShards). */
export interface ShardListener {
  acquired(lease: ShardLease): void;
  lost(shard: number): void;
}
