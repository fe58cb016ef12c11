// The shard plan (src/cluster/shard-plan.ts), applied by simulated processes in
// rounds as the lease manager applies it: each process reads the picture,
// gives up what the plan says, and takes what is free and planned for it (a
// shard taken by an earlier process in the same round is no longer free). Once
// a whole round changes nothing, the cluster is stable.
import test from 'ava';
import { planShards, type NodeView, type ShardView } from '../src/cluster/shard-plan.js';

const SHARDS = 32;
const V1 = 'CREAR_CAMPANA_COMPLETA@1';
const V2 = 'CREAR_CAMPANA_COMPLETA@2';
const OTHER = 'OTRA_SAGA@1';

interface Cluster {
  nodes: NodeView[];
  /** shard → owner (null: free) */
  owners: (string | null)[];
  /** shard → `TIPO@version` of its running sagas */
  needs: string[][];
}

type Order = 'forward' | 'reverse' | 'shuffled';
/** sequential: each process reads the picture its predecessors left; together: all read one picture per round, then act in order. */
type Timing = 'sequential' | 'together';

const nodes = (n: number, versions: readonly string[] = [V1]): NodeView[] =>
  Array.from({ length: n }, (_, i) => ({ nodeId: `node-${String(i).padStart(2, '0')}`, versions }));

const picture = (c: Cluster): ShardView[] => c.owners.map((owner, shard) => ({ shard, owner, needs: c.needs[shard] ?? [] }));

/** A small deterministic shuffle (no Math.random: a failure replays). */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = seed + 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** One round; true when anything changed. */
function round(c: Cluster, order: Order, timing: Timing, seed: number): boolean {
  const actors = order === 'forward' ? c.nodes : order === 'reverse' ? [...c.nodes].reverse() : shuffled(c.nodes, seed);
  const shared = picture(c);
  let changed = false;
  for (const me of actors) {
    const held = c.owners.flatMap((o, shard) => (o === me.nodeId ? [shard] : []));
    const plan = planShards(me, held, timing === 'together' ? shared : picture(c), c.nodes);
    for (const shard of plan.release) {
      if (c.owners[shard] === me.nodeId) {
        c.owners[shard] = null;
        changed = true;
      }
    }
    for (const shard of plan.take) {
      // As the lease manager's acquire: only a free lease can be taken.
      if (c.owners[shard] === null) {
        c.owners[shard] = me.nodeId;
        changed = true;
      }
    }
  }
  return changed;
}

/** Rounds until one changes nothing; the number of rounds it took (throws past `limit`). */
function settle(c: Cluster, order: Order, timing: Timing, limit = 20): number {
  for (let i = 1; i <= limit; i++) if (!round(c, order, timing, i)) return i;
  throw new Error(`not stable after ${limit} rounds: ${JSON.stringify(counts(c))}`);
}

const counts = (c: Cluster) => Object.fromEntries(c.nodes.map((n) => [n.nodeId, c.owners.filter((o) => o === n.nodeId).length]));

const fresh = (n: number, needs: string[][] = []): Cluster => ({ nodes: nodes(n), owners: Array<string | null>(SHARDS).fill(null), needs });

/** Every start the plan must settle from, for `n` processes. */
function starts(n: number): { name: string; run: (order: Order, timing: Timing) => Cluster }[] {
  return [
    {
      name: 'all shards free',
      run: (order, timing) => {
        const c = fresh(n);
        settle(c, order, timing);
        return c;
      },
    },
    {
      name: 'one process holding every shard',
      run: (order, timing) => {
        const c = fresh(n);
        c.owners.fill(c.nodes[n - 1]!.nodeId);
        settle(c, order, timing);
        return c;
      },
    },
    {
      name: 'processes joining one by one',
      run: (order, timing) => {
        const c = fresh(n);
        const all = c.nodes;
        for (let k = 1; k <= n; k++) {
          c.nodes = all.slice(0, k);
          settle(c, order, timing);
        }
        return c;
      },
    },
    {
      name: 'one more process than needed, which then leaves',
      run: (order, timing) => {
        const c = fresh(n + 1);
        settle(c, order, timing);
        const gone = c.nodes.pop()!;
        // Its leases are released (a clean stop) or expire: free either way.
        c.owners = c.owners.map((o) => (o === gone.nodeId ? null : o));
        settle(c, order, timing);
        return c;
      },
    },
  ];
}

test('for 1 to 32 processes, every start settles with each process holding ⌊32/N⌋ or ⌈32/N⌉ shards and every shard held', (t) => {
  for (let n = 1; n <= 32; n++) {
    const low = Math.floor(SHARDS / n);
    const high = Math.ceil(SHARDS / n);
    for (const start of starts(n)) {
      for (const order of ['forward', 'reverse', 'shuffled'] as const) {
        for (const timing of ['sequential', 'together'] as const) {
          const c = start.run(order, timing);
          const where = `N=${n}, ${start.name}, ${order}, ${timing}: ${JSON.stringify(counts(c))}`;
          t.true(c.owners.every((o) => o !== null && c.nodes.some((x) => x.nodeId === o)), `every shard is held by a live process (${where})`);
          const held = Object.values(counts(c));
          t.true(held.every((k) => k === low || k === high), `each holds ${low} or ${high} (${where})`);
          t.false(round(c, order, timing, 99), `one more round changes nothing (${where})`);
        }
      }
    }
  }
});

test('six processes share the shards 6, 6, 5, 5, 5, 5 (not five of 6 and one of 2)', (t) => {
  const c = fresh(6);
  settle(c, 'forward', 'sequential');
  t.deepEqual(Object.values(counts(c)).sort((a, b) => b - a), [6, 6, 5, 5, 5, 5]);
});

test('a process joining a balanced cluster moves only the shards it takes', (t) => {
  const c = fresh(5);
  settle(c, 'forward', 'sequential');
  const before = [...c.owners];
  c.nodes = nodes(6);
  settle(c, 'forward', 'sequential');
  const moved = c.owners.filter((o, shard) => o !== before[shard]);
  t.is(moved.length, 5, 'the newcomer gets 5 shards, and nothing else changes hands');
  t.true(moved.every((o) => o === 'node-05'));
});

/** Processes with the given versions; shards 0..k-1 need `needs`, the rest only V1. */
function versioned(versions: readonly (readonly string[])[], needs: (shard: number) => string[]): Cluster {
  return {
    nodes: versions.map((v, i) => ({ nodeId: `node-${i}`, versions: v })),
    owners: Array<string | null>(SHARDS).fill(null),
    needs: Array.from({ length: SHARDS }, (_, shard) => needs(shard)),
  };
}

test('a shard whose sagas need two versions goes only to a process that has both, from any start', (t) => {
  for (const timing of ['sequential', 'together'] as const) {
    for (const first of [null, 'node-0', 'node-1']) {
      // node-0 has v1, node-1 has v2, node-2 has both: shard 7 holds sagas of v1 and v2.
      const c = versioned([[V1], [V2], [V1, V2]], (shard) => (shard === 7 ? [V1, V2] : []));
      if (first !== null) c.owners.fill(first);
      settle(c, 'forward', timing);
      t.is(c.owners[7], 'node-2', `start: ${first ?? 'all free'}, ${timing}`);
      t.deepEqual(Object.values(counts(c)).sort((a, b) => b - a), [11, 11, 10]);
    }
  }
});

test('shards of a version only one process runs all go to it, and the other shards are spread evenly over the rest', (t) => {
  // 20 shards hold v2 sagas; only node-3 runs v2.
  for (const timing of ['sequential', 'together'] as const) {
    for (const first of [null, 'node-0', 'node-3']) {
      const c = versioned([[V1], [V1], [V1], [V1, V2]], (shard) => (shard < 20 ? [V1, V2] : [V1]));
      if (first !== null) c.owners.fill(first);
      settle(c, 'forward', timing);
      const where = `start: ${first ?? 'all free'}, ${timing}: ${JSON.stringify(counts(c))}`;
      t.true(c.owners.slice(0, 20).every((o) => o === 'node-3'), where);
      t.deepEqual([0, 1, 2].map((i) => counts(c)[`node-${i}`]), [4, 4, 4], where);
    }
  }
});

test('a process never keeps a shard it cannot fully run while a live process can', (t) => {
  // node-0 held everything before node-1 (v1 and v2) arrived; shards 0-3 hold v2 sagas.
  const c = versioned([[V1], [V1, V2]], (shard) => (shard < 4 ? [V2] : [V1]));
  c.owners.fill('node-0');
  const plan = planShards(c.nodes[0]!, c.owners.map((_, s) => s), picture(c), c.nodes);
  t.deepEqual(plan.release.filter((s) => s < 4), [0, 1, 2, 3], 'node-0 gives up every v2 shard at once');
  settle(c, 'forward', 'sequential');
  t.true(c.owners.slice(0, 4).every((o) => o === 'node-1'));
  t.deepEqual(Object.values(counts(c)), [16, 16]);
});

test('a shard no live process can fully run goes to one that runs most of it, and its missing version is reported as waiting there', (t) => {
  // Shard 5 holds sagas of V1, V2 and OTHER; node-0 runs V1 only, node-1 runs V1 and OTHER: nobody has V2.
  const c = versioned([[V1], [V1, OTHER]], (shard) => (shard === 5 ? [V1, V2, OTHER] : [V1]));
  settle(c, 'forward', 'sequential');
  t.is(c.owners[5], 'node-1', 'the process that runs two of its three versions');
  const held = (id: string) => c.owners.flatMap((o, s) => (o === id ? [s] : []));
  const plans = c.nodes.map((me) => planShards(me, held(me.nodeId), picture(c), c.nodes));
  t.deepEqual(plans[1]!.waiting, [{ shard: 5, owner: 'node-1', missing: [V2] }]);
  t.deepEqual(plans[0]!.waiting, [], 'reported once, by its holder');
  t.deepEqual(Object.values(counts(c)), [16, 16]);
});

test('a shard that some live process can fully run is never reported as waiting', (t) => {
  const c = versioned([[V1], [V1, V2]], (shard) => (shard < 4 ? [V2] : [V1]));
  settle(c, 'forward', 'sequential');
  const held = (id: string) => c.owners.flatMap((o, s) => (o === id ? [s] : []));
  for (const me of c.nodes) t.deepEqual(planShards(me, held(me.nodeId), picture(c), c.nodes).waiting, []);
});
