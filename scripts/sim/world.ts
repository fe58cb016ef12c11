// One seed's world: processes, participants, the saga log, clients and
// operators, and the faults, all placed by the seed. A run has a storm (faults
// on) and then a calm (faults off), after which the invariants are checked
// against the participants' ledger and the stored log.
import { acceptSaga } from '../../src/saga/machine.js';
import { announcementEntry } from '../../src/cluster/announcement.js';
import { OPERATOR_ACTIONS, type OperatorAction } from '../../src/saga/operations.js';
import type { AnySagaDefinition } from '../../src/saga/definition.js';
import { sagaTypes } from '../../src/sagas/index.js';
import { exampleRequest } from '../../src/sagas/crear-campana-completa/example.js';
import { parseFaults, type Fault } from '../../src/faults.js';
import { TERMINAL_STATES } from '../../src/saga/states.js';
import { Choices, Kernel } from './kernel.js';
import { SimStore, type Violation } from './store.js';
import { Participants } from './participants.js';
import { LEASE_MS, SimNode } from './node.js';
import { checkInvariants } from './invariants.js';

export const SHARDS = 8;
/** How long an operator's HTTP request waits for the decision before answering 202 (OPERATOR_WAIT_MS, its default). */
export const ORDER_WAIT_MS = 10_000;
const STORM_MS = 60_000;
/** Long enough for every budget and deadline to run out once the faults stop. */
const CALM_MS = 15 * 60_000;

/** A known bug, switched on in the real code (or, for the participant's part, in the simulated participant). */
export const INJECTIONS: Record<string, { faults: Fault[]; tombstones?: boolean; what: string }> = {
  'unknown-outcome-dropped': { faults: ['unknown-outcome-dropped'], what: 'a 4xx on a retry drops the undo of an attempt with an unknown outcome (defect 1)' },
  'resume-after-order': { faults: ['resume-after-order'], what: 'an actor calls again the call it started for an order (defect 2)' },
  'compensate-during-call': {
    faults: [],
    tombstones: false,
    what: 'a compensation sent while the forward call is in flight, against a participant that keeps no tombstones',
  },
  'skip-left-alone': { faults: ['skip-left-alone'], what: 'a saga whose park write failed is skipped for the life of the process (defect 5)' },
  'stale-epoch-write': { faults: ['no-fence'], what: 'the commit does not check the shard lease: a process that lost it still writes' },
  'order-decided-twice': { faults: ['order-decided-twice'], what: 'an operator order is decided again after a commit with an unknown outcome' },
};

export interface OrderAnswer {
  id: string;
  sagaId: string;
  accion: OperatorAction;
  status: 200 | 409 | 202;
  /** Placed in the calm on a saga that had ended COMPLETADA or COMPENSADA: it must be refused at once. */
  mustRefuseAtOnce: boolean;
}

export interface RunResult {
  seed: number;
  violations: Violation[];
  digest: string;
  trace: string[];
  choices: number[];
  sagas: number;
  events: number;
}

/** The campaign saga, and a version 2 of it (the same steps) that only some processes have. */
function definitions(): { v1: AnySagaDefinition; v2: AnySagaDefinition } {
  const [type] = sagaTypes({ callTimeoutMs: 2_000, stepBudgetMs: 60_000, compensationBudgetMs: 4 * 60_000 });
  const v1 = type!.versions[0] as AnySagaDefinition;
  return { v1, v2: { ...v1, version: 2 } };
}

export async function runSeed(seed: number, opts: { inject?: string; replay?: number[]; keepTrace?: number } = {}): Promise<RunResult> {
  const injection = opts.inject === undefined ? undefined : INJECTIONS[opts.inject];
  if (opts.inject !== undefined && injection === undefined) throw new Error(`unknown injection ${opts.inject}; known: ${Object.keys(INJECTIONS).join(', ')}`);
  const choices = new Choices(seed, opts.replay ?? null);
  const k = new Kernel(choices, opts.keepTrace ?? 300);
  const c = choices;
  const faults = parseFaults(injection?.faults.join(','));
  const store = new SimStore(k, SHARDS, { writeFault: 0.04, readFault: 0.03 });
  store.unfenced = faults.has('no-fence');
  const participants = new Participants(k, { tombstones: injection?.tombstones ?? true, fault: 0.15 });
  const violations: Violation[] = [];
  const { v1, v2 } = definitions();
  const nodes: SimNode[] = [];
  const links = { k, store, participants, violations, faults, nodes: () => nodes };
  const nodeCount = c.int(2, 3);
  for (let i = 0; i < nodeCount; i++) {
    // Definition versions missing on some nodes: the seed decides which have v1, v2 or both.
    const has = i === 0 ? [v1, v2] : c.pick([[v1, v2], [v2], [v1, v2], [v1]]);
    nodes.push(new SimNode(`n${i}`, has, links));
  }
  store.faulty = true;
  participants.faulty = true;
  for (const n of nodes) n.start();

  const notify = (shard: number, sagaId: string, kind: 'new' | 'order') => {
    // NOTIFY reaches every listening process, each of which acts if it holds the shard in its own view (a stale
    // holder too). A notification may be lost or arrive twice; the sweep catches what is lost. A new saga's entry
    // carries the saga as recorded and the epoch of the shard's live lease at the commit, as the writer's SQL makes it.
    const entry = kind === 'new' ? announcement(shard, sagaId) : `${shard}:${sagaId}`;
    for (const node of nodes) {
      const copies = store.faulty ? c.pick([1, 1, 1, 0, 2]) : 1;
      for (let i = 0; i < copies; i++) k.at(c.int(1, 20), () => node.notified(entry, kind));
    }
  };
  const announcement = (shard: number, sagaId: string): string => {
    const saga = store.sagas.get(sagaId)!;
    const row = store.shards[shard]!;
    const epoch = row.owner === null || row.leaseUntil <= k.now ? undefined : row.epoch;
    return announcementEntry(shard, sagaId, { tipo: saga.tipo, versionDefinicion: saga.snapshot.version, snapshot: saga.snapshot, datos: saga.datos }, epoch);
  };

  // Clients: sagas start during the storm, each through a live process, on the newest version it has.
  const sagaCount = c.int(4, 24);
  for (let i = 0; i < sagaCount; i++) {
    k.at(c.int(0, STORM_MS / 2), () => {
      const alive = nodes.filter((n) => n.alive);
      if (alive.length === 0) return;
      const node = c.pick(alive);
      const def = node.registry.newest(v1.tipo)!;
      const sagaId = `saga-${seed}-${i}`;
      const datos = { ...exampleRequest(), timeout_minutos: c.pick([1, 2, 5]) };
      const held = node.held();
      const shard = held.length > 0 ? c.pick(held) : c.int(0, SHARDS - 1);
      const { snapshot, events } = acceptSaga(def, datos as never, { sagaId, timeoutMinutos: datos.timeout_minutos, now: k.date() }, {
        now: k.date(),
        random: () => c.next(),
        newId: () => `${sagaId}-accept`,
      });
      store.sagas.set(sagaId, { id: sagaId, shard, tipo: def.tipo, datos, snapshot, version: 1, events: [...events] });
      k.trace(`client starts ${sagaId} v${def.version} on shard ${shard} via ${node.owner}`);
      if (held.includes(shard)) node.run(shard, sagaId, { saga: { snapshot: structuredClone(snapshot), datos, version: 1 }, fresh: true });
      else notify(shard, sagaId, 'new');
    });
  }

  // Operators: every action, one by one and in bulk, at any time, their requests sometimes repeated.
  const answers: OrderAnswer[] = [];
  let orderSeq = 0;
  const decisionWaiters = new Map<string, () => void>();
  store.onChange = () => {
    for (const [id, wake] of [...decisionWaiters]) if (store.audit.has(id)) {
      decisionWaiters.delete(id);
      wake();
    }
  };
  const submit = (sagaId: string, accion: OperatorAction, mustRefuseAtOnce = false, repeatOf?: string) => {
    const saga = store.sagas.get(sagaId);
    if (saga === undefined) return;
    const id = repeatOf ?? `op-${seed}-${++orderSeq}`;
    const order = {
      id,
      sagaId,
      shard: saga.shard,
      accion,
      quien: 'sim',
      motivo: 'simulación',
      fecha: k.date().toISOString(),
      ...(accion === 'migrar' ? { version: c.pick([1, 2]) } : {}),
      ...(accion === 'pausar' ? { detenerPlazo: c.chance(0.5) } : {}),
      requestId: null,
      loteId: null,
    };
    // OrderDesk.submit: a decided id answers its decision; a new one goes to the mailbox and is announced.
    if (!store.audit.has(id) && !store.mailbox.has(id)) {
      store.mailbox.set(id, order);
      notify(saga.shard, sagaId, 'order');
    }
    k.trace(`operator ${accion} ${id} on ${sagaId}`);
    const answer = (status: 200 | 409 | 202) => {
      if (repeatOf === undefined) answers.push({ id, sagaId, accion, status, mustRefuseAtOnce });
    };
    const decided = () => {
      const a = store.audit.get(id);
      if (a !== undefined) answer(a.resultado === 'aceptada' ? 200 : 409);
      return a !== undefined;
    };
    if (decided()) return;
    const timer = k.at(ORDER_WAIT_MS, () => {
      decisionWaiters.delete(id);
      answer(202);
    });
    decisionWaiters.set(id, () => {
      k.cancel(timer);
      decided();
    });
  };
  const operatorCount = c.int(0, 10);
  for (let i = 0; i < operatorCount; i++) {
    k.at(c.int(0, STORM_MS), () => {
      const ids = [...store.sagas.keys()];
      if (ids.length === 0) return;
      const accion = c.pick(OPERATOR_ACTIONS);
      // A bulk order: the same action on several sagas at once.
      const targets = c.chance(0.25) ? ids.slice(0, c.int(2, ids.length)) : [c.pick(ids)];
      for (const id of targets) submit(id, accion);
      if (c.chance(0.2)) k.at(c.int(0, 3_000), () => submit(targets[0]!, accion, false, `op-${seed}-${orderSeq}`));
    });
  }

  // Process faults: crashes and restarts, and stalls long enough to lose leases while still running (split brain).
  const processFaults = c.int(0, 3);
  for (let i = 0; i < processFaults; i++) {
    const node = c.pick(nodes);
    k.at(c.int(0, STORM_MS), () => {
      if (c.chance(0.5)) {
        if (!node.alive) return;
        node.crash();
        k.at(c.int(500, 8_000), () => {
          if (!node.alive) node.restart();
        });
      } else {
        node.stalledUntil = Math.min(k.now + c.int(2_000, 8_000), STORM_MS);
        k.trace(`${node.owner} stalls until ${node.stalledUntil}`);
      }
    });
  }

  await k.run(STORM_MS);
  store.faulty = false;
  participants.faulty = false;
  for (const n of nodes) if (!n.alive) n.restart();
  k.trace('calm: faults stop');
  // Until every saga has settled (ended, parked, paused, or waiting for its version) and every order is decided.
  const versionsLive = () => new Set(nodes.filter((n) => n.alive).flatMap((n) => n.versions()));
  const settled = () => {
    const live = versionsLive();
    const waiting = (id: string) => {
      const s = store.sagas.get(id)!.snapshot;
      return !live.has(`${s.tipo}@${s.version}`);
    };
    return (
      decisionWaiters.size === 0 &&
      [...store.mailbox.values()].every((o) => waiting(o.sagaId)) &&
      [...store.sagas.values()].every(
        (x) => TERMINAL_STATES.includes(x.snapshot.estado) || x.snapshot.parked !== null || x.snapshot.paused !== null || waiting(x.id),
      )
    );
  };
  // Every shard held by a live process again first (the restarted ones take their share).
  await k.run(k.now + 2 * LEASE_MS);
  while (k.now < STORM_MS + CALM_MS && !settled()) await k.run(k.now + 5_000);
  // Orders a saga can never take (it ended COMPLETADA or COMPENSADA), several at once: each refused at once.
  const hopeless = (x: { snapshot: { estado: string; paused: unknown; parked: unknown } }) =>
    ['COMPLETADA', 'COMPENSADA'].includes(x.snapshot.estado) && x.snapshot.paused === null && x.snapshot.parked === null;
  for (const s of [...store.sagas.values()].filter(hopeless).slice(0, 2)) {
    const n = c.int(1, 4);
    for (let i = 0; i < n; i++) submit(s.id, c.pick(OPERATOR_ACTIONS), true);
  }
  await k.run(k.now + ORDER_WAIT_MS + 1_000);

  violations.push(...store.violations, ...checkInvariants({ store, participants, answers, nodes, k }));
  return {
    seed,
    violations,
    digest: k.digest(),
    trace: k.recent,
    choices: choices.drawn,
    sagas: store.sagas.size,
    events: k.events,
  };
}
