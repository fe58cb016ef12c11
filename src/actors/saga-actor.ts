// One actor per running saga. For each message it loads nothing but its own
// snapshot (once), asks the pure state machine what to do, commits the result,
// and only then performs the effects: participant calls, timers, stopping.
// Operator orders wait in the saga log's mailbox; the actor takes them as
// messages like any other. A saga the actor cannot handle (its handler throws,
// or PostgreSQL refuses its write for good) is parked: visible, with its
// reason, and left alone until an operator retries it.
import { errorText, type Logger } from '../log.js';
import type { SagaMetrics } from '../metrics.js';
import type { ParticipantGateway } from '../gateway/participant-gateway.js';
import { decide, park, parkUnreadable, type CallRef, type Decision, type Effect, type SagaMessage } from '../saga/machine.js';
import type { DefinitionRegistry } from '../saga/registry.js';
import { countTransition, logTransition } from './transitions.js';
import { isCurrentFormat, upgradeSnapshot } from '../saga/snapshot.js';
import type { AnySagaDefinition } from '../saga/definition.js';
import { FencedError, StaleSagaError, type LoadedSaga, type SagaLog, type StoredSaga } from '../persistence/saga-store.js';
import { PermanentWriteError } from '../persistence/saga-writer.js';
import { storableText } from '../persistence/storable.js';
import type { ShardLease } from '../cluster/shards.js';
import type { Faults } from '../faults.js';
import type { MachineRules } from '../saga/rules.js';
import { spawnActor, tell, type ActorRef, type AnyActorRef } from './nact.js';

/** What every saga actor shares: its ports to the world. */
export interface SagaRuntime {
  store: SagaLog;
  gateway: ParticipantGateway;
  registry: DefinitionRegistry;
  log: Logger;
  now: () => Date;
  random: () => number;
  newId: () => string;
  metrics: SagaMetrics;
  /** Delay before a message whose commit failed (database down) is handled again. */
  commitRetryMs: number;
  /** Bugs switched on for the chaos suite and the simulator (src/faults.ts), for the actor's own code. */
  faults?: Faults;
  /** The machine's rules: production's unless a fault broke one (machineRules in src/faults.ts). */
  rules?: MachineRules;
  /** The lease of the shard this actor's saga belongs to; every commit is checked against it. */
  lease: ShardLease;
  /** A commit was refused because the lease is gone: the whole shard must stop. */
  onFenced: (shard: number) => void;
  /** This process does not have the definition version the saga runs on: it is left alone. */
  onMissingVersion: (sagaId: string, tipo: string, version: number) => void;
  /** The saga could not even be parked; a later sweep tries again. */
  onUnparkable: (sagaId: string) => void;
  /** Orders reached this actor after it finished: the saga must be run again to take them. */
  onOrdersAfterDone: (sagaId: string) => void;
  /** Called once the saga is terminal, parked, or when this actor must stop (fenced out). */
  onDone: (sagaId: string, estado: string | null) => void;
}

/** What a saga actor is told: the machine's messages, and "orders are waiting in the mailbox". */
export type SagaActorMessage = SagaMessage | { type: 'ordersWaiting' };

/**
 * How an actor meets its runtime: its name, its own mailbox, and timers. nact
 * and setTimeout in production (spawnSagaActor); the simulator's scheduler in
 * `npm run test:sim`, which drives this very code.
 */
export interface ActorIO {
  name: string;
  tell(msg: SagaActorMessage): void;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(timer: unknown): void;
}

export interface SagaActorState {
  saga: StoredSaga | null;
  /** Pending timers, cleared when the actor stops. */
  timers: Set<unknown>;
  /** The call this actor started and has not had the answer of (its CallRef as a key). */
  calling: string | null;
  done: boolean;
  /** Set when nact stopped the actor: a handler still awaiting a commit must not act. */
  stopped: boolean;
  /** The last commit failed with an unknown outcome: the next one checks whether it landed. */
  recheck: boolean;
  /**
   * A definition standing in for a version this process lacks: the target of
   * a `migrar` waiting in the mailbox (only that order is taken with it), or,
   * for a saga that has ended for good, any version of its tipo (nothing it
   * can be asked will run a step: every order is refused).
   */
  standIn?: { def: AnySagaDefinition; for: 'migrar' | 'ended' } | undefined;
  /** An order's commit failed with an unknown outcome: once the saga is read again, resume it. */
  resumeOnLoad?: boolean;
  /** The saga as its announcement told it (src/cluster/announcement.ts): the first load takes it instead of a read. */
  announced?: LoadedSaga | undefined;
}

/** setTimeout's ceiling (about 24.8 days); longer deadlines re-arm when they fire early. */
const MAX_TIMER_MS = 2_147_483_647;

export function newActorState(saga: StoredSaga | null = null, announced?: LoadedSaga): SagaActorState {
  return { saga, timers: new Set(), calling: null, done: false, stopped: false, recheck: false, announced };
}

/** One message, start to end: what the nact actor runs, and what the simulator runs. */
export async function handleMessage(rt: SagaRuntime, state: SagaActorState, msg: SagaActorMessage, io: ActorIO): Promise<SagaActorState> {
  try {
    return await handle(rt, state, msg, io);
  } catch (err) {
    // A bug in the actor's own code: never drop the message silently.
    rt.log.error({ err, saga_id: io.name, msg: msg.type }, 'saga actor failed');
    if (state.saga !== null && !state.done) return parkSaga(rt, state, io, `el actor de la SAGA falló: ${errorText(err)}`);
    return finish(rt, state, io, null);
  }
}

/** The actor has stopped (nact stopped it, or the simulated process died): no timer fires, no effect runs. */
export function actorStopped(state: SagaActorState, io: Pick<ActorIO, 'clearTimer'>): void {
  state.stopped = true;
  for (const t of state.timers) io.clearTimer(t);
  state.timers.clear();
}

const refKey = (c: CallRef) => `${c.phase}/${c.step}/${c.attempt}`;

/**
 * `saga`: the saga as just recorded, if the spawner has it; otherwise it is loaded, the first
 * time from `announced` if given (the saga as its announcement told it).
 */
export function spawnSagaActor(
  parent: AnyActorRef,
  sagaId: string,
  rt: SagaRuntime,
  saga: StoredSaga | null = null,
  announced?: LoadedSaga,
): ActorRef<SagaActorMessage> {
  let io: ActorIO | undefined;
  const ioOf = (ref: ActorRef<SagaActorMessage>, name: string): ActorIO =>
    (io ??= {
      name,
      tell: (m) => tell(ref, m),
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
    });
  return spawnActor<SagaActorState, SagaActorMessage>(
    parent,
    sagaId,
    (state, msg, ctx) => handleMessage(rt, state, msg, ioOf(ctx.self, ctx.name)),
    {
      initialState: newActorState(saga, announced),
      // handle() catches everything; a crash that still escapes keeps the others running.
      onCrash: 'resume',
      afterStop: (state) => actorStopped(state, { clearTimer: (t) => clearTimeout(t as NodeJS.Timeout) }),
    },
  );
}

async function handle(rt: SagaRuntime, state: SagaActorState, msg: SagaActorMessage, io: ActorIO): Promise<SagaActorState> {
  if (state.done) {
    // Orders announced while this actor was finishing: they must not wait for a sweep.
    if (msg.type === 'ordersWaiting' && !state.stopped) rt.onOrdersAfterDone(io.name);
    return state;
  }
  if (state.saga === null) {
    if ((await load(rt, state, msg, io)) !== 'loaded') return state;
    if (state.resumeOnLoad === true) {
      state.resumeOnLoad = false;
      await takeOrders(rt, state, io);
      if (state.done) return state;
      await step(rt, state, { type: 'resume', callingHere: callingHere(rt, state) }, io);
      if (state.done || msg.type === 'resume' || msg.type === 'ordersWaiting') return state;
    }
  }
  // Orders first: an operator who paused or cancelled must be obeyed before anything else is called.
  if (msg.type === 'ordersWaiting' || (msg.type === 'resume' && msg.orders === true)) await takeOrders(rt, state, io);
  if (msg.type === 'ordersWaiting' || state.done) return state;
  if (msg.type === 'resume') {
    // A saga just recorded (by this process or another) and not written since:
    // nobody has acted on its first intent, so that call is its first attempt.
    const fresh = msg.fresh === true && state.saga?.version === 1;
    return step(rt, state, { type: 'resume', fresh, callingHere: callingHere(rt, state) }, io);
  }
  await step(rt, state, msg, io);
  // The call is no longer this actor's to wait for once its answer is recorded; an answer whose commit failed
  // is told again, and until then a resume must not take the call for an interrupted one.
  if (msg.type === 'callCompleted' && state.calling === refKey(msg.call) && callInFlight(state) !== state.calling) state.calling = null;
  return state;
}

/** The call the saga's snapshot has in flight, as a key; null when none is. */
function callInFlight(state: SagaActorState): string | null {
  const s = state.saga?.snapshot;
  if (s === undefined || !s.inFlight || s.step === null || s.phase === 'finished') return null;
  return refKey({ phase: s.phase, step: s.step, attempt: s.attempt });
}

/** The saga's current call is one this actor started (an order it just took): its answer is on its way. */
function callingHere(rt: SagaRuntime, state: SagaActorState): boolean {
  if (state.calling === null || rt.faults?.has('resume-after-order') === true) return false;
  return state.calling === callInFlight(state);
}

async function load(rt: SagaRuntime, state: SagaActorState, msg: SagaActorMessage, io: ActorIO): Promise<'loaded' | 'not'> {
  const sagaId = io.name;
  let loaded: LoadedSaga | null;
  // Told once: a later load (the saga moved under this actor) reads what is stored.
  const announced = state.announced;
  state.announced = undefined;
  try {
    loaded = announced ?? (await rt.store.load(sagaId));
  } catch (err) {
    rt.log.error({ err, saga_id: sagaId }, 'could not load saga; will retry');
    later(state, io, rt.commitRetryMs, () => io.tell(msg));
    return 'not';
  }
  if (loaded === null) {
    rt.log.error({ saga_id: sagaId }, 'saga not found in saga_log');
    finish(rt, state, io, null);
    return 'not';
  }
  const definition = rt.registry.get(loaded.tipo, loaded.versionDefinicion) ?? (await standIn(rt, state, loaded, io));
  if (definition === undefined) {
    // Not ours to run: touch nothing; a process that has this version will.
    rt.onMissingVersion(sagaId, loaded.tipo, loaded.versionDefinicion);
    finish(rt, state, io, null);
    return 'not';
  }
  try {
    state.saga = { snapshot: upgradeSnapshot(loaded.snapshot, definition), datos: loaded.datos, version: loaded.version };
  } catch (err) {
    // A snapshot this code cannot read: park it as stored, with the reason, rather than respawn it for ever.
    rt.log.error({ err, saga_id: sagaId }, 'saga snapshot cannot be read');
    await parkStored(rt, state, io, loaded, `la instantánea de la SAGA no se puede leer: ${errorText(err)}`);
    return 'not';
  }
  return 'loaded';
}

/**
 * A saga whose definition version this process lacks can still be moved to
 * one it has: if an operator asked to migrate it to such a version, the
 * snapshot is read with that version, and only that order is taken. A saga
 * that has ended for good (no undo outstanding) can take no order at all: its
 * orders are refused here, at once, rather than wait for a process with its
 * version.
 */
async function standIn(rt: SagaRuntime, state: SagaActorState, loaded: LoadedSaga, io: ActorIO): Promise<AnySagaDefinition | undefined> {
  const raw = loaded.snapshot;
  const anyVersion = rt.registry.newest(loaded.tipo);
  if (anyVersion !== undefined && isCurrentFormat(raw) && raw.phase === 'finished') {
    const outstanding = raw.compensations.some((c) => c.estado === 'fallida' || c.estado === 'pendiente');
    if (!outstanding) {
      state.standIn = { def: anyVersion, for: 'ended' };
      return anyVersion;
    }
  }
  let orders;
  try {
    orders = await rt.store.pendingOrders(io.name);
  } catch {
    return undefined;
  }
  for (const o of orders) {
    if (o.accion !== 'migrar' || o.version === undefined) continue;
    const target = rt.registry.get(loaded.tipo, o.version);
    if (target !== undefined) {
      state.standIn = { def: target, for: 'migrar' };
      return target;
    }
  }
  return undefined;
}

async function takeOrders(rt: SagaRuntime, state: SagaActorState, io: ActorIO): Promise<void> {
  let orders;
  try {
    orders = await rt.store.pendingOrders(io.name);
  } catch (err) {
    rt.log.warn({ err, saga_id: io.name }, 'could not read operator orders; will retry');
    later(state, io, rt.commitRetryMs, () => io.tell({ type: 'ordersWaiting' }));
    return;
  }
  // Every order waiting is decided now, one after another; a saga that stops
  // (it ended, or an order parked it) stops after the last of them, not the first.
  const stops: Effect[] = [];
  for (const order of orders) {
    if (state.done || state.saga === null) return;
    const target =
      order.accion === 'migrar' && order.version !== undefined ? rt.registry.get(state.saga.snapshot.tipo, order.version) : undefined;
    const msg: SagaMessage = { type: 'operator', order, ...(target === undefined ? {} : { target }) };
    // On a version this process lacks, only the order that moves it to one it has can be decided here.
    if (definitionFor(rt, state, msg) === undefined) continue;
    await step(rt, state, msg, io, stops);
  }
  const saga = state.saga;
  if (saga !== null && state.standIn?.for === 'migrar') {
    if (rt.registry.get(saga.snapshot.tipo, saga.snapshot.version) === undefined) {
      rt.onMissingVersion(io.name, saga.snapshot.tipo, saga.snapshot.version);
      finish(rt, state, io, null);
      return;
    }
    state.standIn = undefined;
  }
  if (stops.length > 0 && !state.done && !state.stopped) perform(rt, state, stops[0]!, io);
}

/** The definition that decides `msg`: the saga's own version, or the stand-in where it may serve (see standIn). */
function definitionFor(rt: SagaRuntime, state: SagaActorState, msg: SagaMessage): AnySagaDefinition | undefined {
  const s = state.saga!.snapshot;
  const own = rt.registry.get(s.tipo, s.version);
  if (own !== undefined) return own;
  const stand = state.standIn;
  if (stand === undefined) return undefined;
  return stand.for === 'ended' || (msg.type === 'operator' && msg.order.accion === 'migrar') ? stand.def : undefined;
}

/**
 * Decide, commit, act: one message. `deferStops`: effects of type `stop` are
 * collected there instead of performed (the caller has more orders to decide).
 */
async function step(rt: SagaRuntime, state: SagaActorState, msg: SagaMessage, io: ActorIO, deferStops?: Effect[]): Promise<SagaActorState> {
  const sagaId = io.name;
  const saga = state.saga!;
  const definition = definitionFor(rt, state, msg);
  if (definition === undefined) {
    rt.onMissingVersion(sagaId, saga.snapshot.tipo, saga.snapshot.version);
    return finish(rt, state, io, null);
  }
  const now = rt.now();
  let decision: Decision;
  try {
    // `datos` was validated against this saga tipo's request schema when the saga was accepted.
    decision = decide(definition, saga.datos as never, saga.snapshot, msg, {
      now,
      random: rt.random,
      newId: rt.newId,
      rules: rt.rules,
    });
  } catch (err) {
    rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'saga handler failed');
    return parkSaga(rt, state, io, `el manejador de la SAGA falló con ${msg.type}: ${errorText(err)}`);
  }
  rt.log.debug(
    { saga_id: sagaId, msg: msg.type, estado: decision.snapshot.estado, attempt: decision.snapshot.attempt, changed: decision.changed },
    'saga message handled',
  );
  if (decision.changed) {
    const committed = await commit(rt, state, decision, now, msg, io);
    if (committed !== 'committed') return state;
    logTransition(rt.log, sagaId, decision);
    countTransition(rt.metrics, decision);
  }
  // Stopped while committing (shutdown, or the process lost the saga): the next
  // owner resumes from what was just committed; this actor calls nothing more.
  if (state.stopped) return state;
  for (const effect of decision.effects) {
    if (effect.type === 'stop' && deferStops !== undefined) deferStops.push(effect);
    else perform(rt, state, effect, io);
  }
  return state;
}

async function commit(
  rt: SagaRuntime,
  state: SagaActorState,
  decision: Decision,
  now: Date,
  msg: SagaMessage,
  io: ActorIO,
): Promise<'committed' | 'not'> {
  const sagaId = io.name;
  const saga = state.saga!;
  try {
    const version = await rt.store.commit(sagaId, saga.version, decision, now, rt.lease, state.recheck);
    state.saga = { snapshot: decision.snapshot, datos: saga.datos, version };
    state.recheck = false;
    return 'committed';
  } catch (err) {
    if (err instanceof FencedError) {
      rt.log.warn({ saga_id: sagaId, shard: rt.lease.shard, epoch: rt.lease.epoch }, 'write refused: shard lease lost');
      rt.onFenced(rt.lease.shard);
      finish(rt, state, io, null);
    } else if (err instanceof StaleSagaError) {
      // Someone else owns this saga now: stop without acting on anything.
      rt.log.warn({ saga_id: sagaId }, 'saga changed by another writer; stopping its actor here');
      finish(rt, state, io, null);
    } else if (err instanceof PermanentWriteError) {
      // Retrying cannot help, and would drag every batch it joins down with it.
      rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'saga write refused by PostgreSQL for good');
      await parkSaga(rt, state, io, `PostgreSQL rechazó la escritura de la SAGA (SQLSTATE ${err.sqlState})`);
    } else {
      rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'could not commit saga transition; will retry');
      if (rt.faults?.has('order-decided-twice') === true && msg.type === 'operator') {
        // The fault: read the saga again and decide the same message on whatever is stored now.
        state.saga = null;
        state.recheck = false;
        later(state, io, rt.commitRetryMs, () => io.tell(msg));
        return 'not';
      }
      if (msg.type === 'operator') {
        // An order is taken again from the mailbox, which holds only undecided orders: told again as
        // itself, it would be decided a second time if a notification took it meanwhile. The saga is
        // read again first, at the next message: the decision may have landed with effects nobody
        // performed, which a resume then performs (a call it finds in flight is asked again).
        state.saga = null;
        state.recheck = false;
        state.resumeOnLoad = true;
        later(state, io, rt.commitRetryMs, () => io.tell({ type: 'ordersWaiting' }));
        return 'not';
      }
      state.recheck = true;
      later(state, io, rt.commitRetryMs, () => io.tell(msg));
    }
    return 'not';
  }
}

/** Parks the saga from its last committed snapshot, and stops its actor. */
async function parkSaga(rt: SagaRuntime, state: SagaActorState, io: ActorIO, motivo: string): Promise<SagaActorState> {
  const saga = state.saga!;
  const reason = storableText(motivo).slice(0, 1_000);
  const now = rt.now();
  return writePark(rt, state, io, saga.version, park(saga.snapshot, reason, now), now, reason, saga.datos, saga.snapshot.tipo);
}

/** Parks a saga whose stored snapshot could not be read, keeping it as stored. */
async function parkStored(rt: SagaRuntime, state: SagaActorState, io: ActorIO, loaded: LoadedSaga, motivo: string): Promise<SagaActorState> {
  const reason = storableText(motivo).slice(0, 1_000);
  const now = rt.now();
  const decision = parkUnreadable(loaded.snapshot, { sagaId: io.name, tipo: loaded.tipo, estado: loaded.estado, versionDefinicion: loaded.versionDefinicion }, reason, now);
  return writePark(rt, state, io, loaded.version, decision, now, reason, loaded.datos, loaded.tipo);
}

async function writePark(
  rt: SagaRuntime,
  state: SagaActorState,
  io: ActorIO,
  expectedVersion: number,
  decision: Decision,
  now: Date,
  reason: string,
  datos: unknown,
  tipo: string,
): Promise<SagaActorState> {
  const sagaId = io.name;
  try {
    const version = await rt.store.commit(sagaId, expectedVersion, decision, now, rt.lease, state.recheck);
    state.saga = { snapshot: decision.snapshot, datos, version };
    rt.metrics.parked(tipo);
    rt.log.error({ saga_id: sagaId, motivo: reason }, `SAGA ${sagaId} aparcada: ${reason}`);
  } catch (err) {
    // Not even parked (the database refused or was unreachable): the next sweep runs it again.
    rt.log.error({ err, saga_id: sagaId, motivo: reason }, `SAGA ${sagaId} could not be parked; the next sweep tries again`);
    rt.onUnparkable(sagaId);
  }
  return finish(rt, state, io, null);
}

function perform(rt: SagaRuntime, state: SagaActorState, effect: Effect, io: ActorIO): void {
  switch (effect.type) {
    case 'call': {
      const { call, command } = effect;
      const started = rt.now().getTime();
      state.calling = refKey(call);
      rt.gateway
        .call(command, { idempotencyKey: effect.idempotencyKey, timeoutMs: effect.timeoutMs })
        .catch((err: unknown) => ({ kind: 'transient' as const, error: String(err) }))
        .then((outcome) => {
          rt.metrics.call(call.phase === 'forward' ? 'paso' : 'compensacion', effect.tipo, outcome.kind, (rt.now().getTime() - started) / 1000);
          io.tell({ type: 'callCompleted', call, outcome });
        })
        .catch((err: unknown) => rt.log.error({ err }, 'could not deliver call outcome'));
      return;
    }
    case 'scheduleRetry':
      later(state, io, effect.delayMs, () => io.tell({ type: 'retryDue', call: effect.call }));
      return;
    case 'armDeadline':
      later(state, io, Math.min(effect.delayMs, MAX_TIMER_MS), () => io.tell({ type: 'deadlineReached' }));
      return;
    case 'stop':
      finish(rt, state, io, state.saga?.snapshot.estado ?? null);
      return;
  }
}

function finish(rt: SagaRuntime, state: SagaActorState, io: ActorIO, estado: string | null): SagaActorState {
  state.done = true;
  for (const t of state.timers) io.clearTimer(t);
  state.timers.clear();
  rt.onDone(io.name, estado);
  return state;
}

function later(state: SagaActorState, io: ActorIO, ms: number, fn: () => void): void {
  if (state.stopped) return;
  const t = io.setTimer(ms, () => {
    state.timers.delete(t);
    fn();
  });
  state.timers.add(t);
}
