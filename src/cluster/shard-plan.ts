// Which shards a process should take and give up, decided from a picture of
// the cluster (pure, so it can be tested alone).
//
// Every live process computes the same assignment of every shard from the same
// picture (the shards' live owners and the running sagas' versions, and the
// live processes with the versions each can run), then takes the free shards
// assigned to it and gives up those assigned to another. The assignment:
//  - a shard goes only to a process that can run every `TIPO@version` its
//    running sagas need. When no live process can run all of them, it goes to
//    one that runs the most of them, and the sagas of the missing versions wait,
//    reported in `waiting` (the lease manager logs it; the metric
//    saga_shard_version_missing counts them);
//  - balance: each process is given ⌊S/N⌋ or ⌈S/N⌉ of the S shards (the ⌈⌉ to
//    the processes that already hold the most, then by node id), unless the
//    versions force more onto the few processes that can run them;
//  - few moves: a shard stays with its live owner while that owner can run it
//    and is within its share.
// Once every process has applied its part, recomputing gives the same
// assignment: the plan is stable (test/shard-plan.test.ts proves balance and
// stability for 1 to 32 processes from several starting points).

export interface ShardView {
  shard: number;
  /** The owner of its live lease, or null when it is free (no lease, or an expired one). */
  owner: string | null;
  /** `TIPO@version` of its running sagas. */
  needs: readonly string[];
}

export interface NodeView {
  nodeId: string;
  versions: readonly string[];
}

/** A shard whose holder lacks some versions its running sagas need: those sagas wait for a process that has them. */
export interface ShardWait {
  shard: number;
  /** Who is given the shard (it runs the sagas of the versions it has). */
  owner: string;
  /** `TIPO@version` that no live process able to hold the whole shard has. */
  missing: string[];
}

export interface ShardPlan {
  /** Free shards to take. */
  take: number[];
  /** Held shards to give up. */
  release: number[];
  /** Shards given to this process whose sagas of some version it cannot run (see ShardWait). */
  waiting: ShardWait[];
}

export interface Assignment {
  /** The process each shard goes to. */
  owners: Map<number, string>;
  waiting: ShardWait[];
}

const canRun = (versions: readonly string[], needs: readonly string[]) => needs.every((n) => versions.includes(n));
const byId = (a: NodeView, b: NodeView) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);

/** Where every shard goes, given the live processes (deterministic: every process computes the same). */
export function assignShards(shards: readonly ShardView[], liveNodes: readonly NodeView[]): Assignment {
  const nodes = [...new Map(liveNodes.map((n) => [n.nodeId, n])).values()].sort(byId);
  const owners = new Map<number, string>();
  if (nodes.length === 0) return { owners, waiting: [] };

  // Who may hold each shard: the processes that can run all of it, or else those that run the most of it.
  const eligible = new Map<number, NodeView[]>();
  const partial = new Set<number>();
  for (const s of shards) {
    const full = nodes.filter((n) => canRun(n.versions, s.needs));
    if (full.length > 0) {
      eligible.set(s.shard, full);
      continue;
    }
    partial.add(s.shard);
    const covered = (n: NodeView) => s.needs.filter((v) => n.versions.includes(v)).length;
    const most = Math.max(...nodes.map(covered));
    eligible.set(s.shard, nodes.filter((n) => covered(n) === most));
  }
  const choices = (shard: number) => eligible.get(shard)!;

  // What each live owner keeps, where it may hold the shard at all.
  const kept = new Map<string, number[]>(nodes.map((n) => [n.nodeId, []]));
  for (const s of shards) {
    if (s.owner !== null && choices(s.shard).some((n) => n.nodeId === s.owner)) kept.get(s.owner)!.push(s.shard);
  }

  // Shares. A process that alone can run more shards than a fair share gets
  // exactly those; the others share the rest, ⌊S/N⌋ each and one more for
  // S mod N of them: those that hold the most already (fewer moves), then by id.
  const forced = new Map<string, number>(nodes.map((n) => [n.nodeId, 0]));
  for (const s of shards) {
    const only = choices(s.shard);
    if (only.length === 1) forced.set(only[0]!.nodeId, forced.get(only[0]!.nodeId)! + 1);
  }
  const quota = new Map<string, number>();
  let sharing = nodes;
  let left = shards.length;
  for (;;) {
    const fair = Math.ceil(left / sharing.length);
    const over = sharing.filter((n) => forced.get(n.nodeId)! > fair);
    if (over.length === 0 || over.length === sharing.length) break;
    for (const n of over) {
      quota.set(n.nodeId, forced.get(n.nodeId)!);
      left -= forced.get(n.nodeId)!;
    }
    sharing = sharing.filter((n) => !over.includes(n));
  }
  const floor = Math.floor(left / sharing.length);
  const extra = left % sharing.length;
  const ranked = [...sharing].sort((a, b) => kept.get(b.nodeId)!.length - kept.get(a.nodeId)!.length || byId(a, b));
  ranked.forEach((n, i) => quota.set(n.nodeId, floor + (i < extra ? 1 : 0)));

  // Above its share, a process gives up first the shards the most others could take.
  const load = new Map<string, number>();
  for (const n of nodes) {
    const mine = kept.get(n.nodeId)!;
    const keep = [...mine]
      .sort((a, b) => choices(a).length - choices(b).length || a - b)
      .slice(0, quota.get(n.nodeId));
    for (const shard of keep) owners.set(shard, n.nodeId);
    load.set(n.nodeId, keep.length);
  }

  // The rest, the most constrained first, each to the process furthest below its share.
  const current = new Map(shards.map((s) => [s.shard, s.owner]));
  const open = shards
    .filter((s) => !owners.has(s.shard))
    .sort((a, b) => choices(a.shard).length - choices(b.shard).length || a.shard - b.shard);
  for (const s of open) {
    const room = (n: NodeView) => load.get(n.nodeId)! - quota.get(n.nodeId)!;
    const best = choices(s.shard).reduce((a, b) => {
      const d = room(b) - room(a);
      if (d !== 0) return d < 0 ? b : a;
      if (current.get(s.shard) === b.nodeId) return b;
      return a;
    });
    owners.set(s.shard, best.nodeId);
    load.set(best.nodeId, load.get(best.nodeId)! + 1);
  }

  const versionsOf = new Map(nodes.map((n) => [n.nodeId, n.versions]));
  const waiting: ShardWait[] = shards
    .filter((s) => partial.has(s.shard))
    .map((s) => {
      const owner = owners.get(s.shard)!;
      return { shard: s.shard, owner, missing: s.needs.filter((v) => !versionsOf.get(owner)!.includes(v)) };
    });
  return { owners, waiting };
}

/**
 * This process's part of the assignment: the free shards to take, the held
 * ones to give up. A shard assigned here but still held by another live
 * process is taken once that process has given it up.
 */
export function planShards(me: NodeView, held: readonly number[], shards: readonly ShardView[], liveNodes: readonly NodeView[]): ShardPlan {
  const mineHeld = new Set(held);
  // What this process holds is its own: the picture may be a moment older than its leases.
  const picture = shards.map((s) => (mineHeld.has(s.shard) ? { ...s, owner: me.nodeId } : s.owner === me.nodeId ? { ...s, owner: null } : s));
  const nodes = liveNodes.some((n) => n.nodeId === me.nodeId) ? liveNodes : [...liveNodes, me];
  const { owners, waiting } = assignShards(picture, nodes);
  return {
    take: picture.filter((s) => s.owner === null && owners.get(s.shard) === me.nodeId).map((s) => s.shard),
    release: held.filter((shard) => owners.has(shard) && owners.get(shard) !== me.nodeId),
    waiting: waiting.filter((w) => w.owner === me.nodeId),
  };
}
