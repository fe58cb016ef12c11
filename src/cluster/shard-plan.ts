// Which shards a process should take and give up, decided from a picture of
// the cluster (pure, so it can be tested alone). Every process aims at a fair
// share of the shards, and shards go where their sagas can run: a shard holding
// running sagas of a definition version this process lacks is handed to a
// live process that has it, and a process takes, beyond its fair share, free
// shards that only it can run.

export interface ShardView {
  shard: number;
  /** Held by a live lease (by anyone). */
  taken: boolean;
  /** `TIPO@version` of its running sagas. */
  needs: readonly string[];
}

export interface NodeView {
  nodeId: string;
  versions: readonly string[];
}

export interface ShardPlan {
  /** Free shards to take, in order of preference. */
  take: number[];
  /** Held shards to give up. */
  release: number[];
}

const canRun = (versions: readonly string[], needs: readonly string[]) => needs.every((n) => versions.includes(n));

export function planShards(me: NodeView, held: readonly number[], shards: readonly ShardView[], liveNodes: readonly NodeView[]): ShardPlan {
  const others = liveNodes.filter((n) => n.nodeId !== me.nodeId);
  const fair = Math.ceil(shards.length / Math.max(1, others.length + 1));
  const byShard = new Map(shards.map((s) => [s.shard, s]));
  const mine = (s: ShardView) => canRun(me.versions, s.needs);
  const othersCan = (s: ShardView) => others.some((n) => canRun(n.versions, s.needs));

  // Held shards whose sagas this process cannot run, and another live process can.
  const release = held.filter((id) => {
    const s = byShard.get(id);
    return s !== undefined && !mine(s) && othersCan(s);
  });
  const keeping = held.filter((id) => !release.includes(id));

  const free = shards.filter((s) => !s.taken && !held.includes(s.shard));
  // Free shards only this process can run: take them whatever the share, or nobody will.
  const onlyMine = free.filter((s) => s.needs.length > 0 && mine(s) && !othersCan(s));
  // The rest, runnable here (or by nobody: someone must hold them for their other sagas), up to the fair share.
  const rest = free.filter((s) => !onlyMine.includes(s) && (mine(s) || !othersCan(s)));
  const room = Math.max(0, fair - keeping.length - onlyMine.length);
  const take = [...onlyMine, ...rest.slice(0, room)].map((s) => s.shard);

  // Above the fair share: give up shards others can run too, never ones only this process can.
  const excess = keeping.length + take.length - fair;
  if (excess > 0 && take.length === 0) {
    const movable = [...keeping]
      .reverse()
      .filter((id) => {
        const s = byShard.get(id);
        return s === undefined || s.needs.length === 0 || othersCan(s);
      })
      .slice(0, excess);
    release.push(...movable);
  }
  return { take, release };
}
