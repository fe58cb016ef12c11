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
import { decide, EVENT, park, type Decision, type Effect, type SagaMessage } from '../saga/machine.js';
import type { DefinitionRegistry } from '../saga/registry.js';
import { upgradeSnapshot } from '../saga/snapshot.js';
import { FencedError, StaleSagaError, type SagaStore, type StoredSaga } from '../persistence/saga-store.js';
import { PermanentWriteError } from '../persistence/saga-writer.js';
import { storableText } from '../persistence/storable.js';
import type { ShardLease } from '../cluster/shards.js';
import type { Faults } from '../faults.js';
import { spawnActor, tell, type ActorContext, type ActorRef, type AnyActorRef } from './nact.js';

/** What every saga actor shares: its ports to the world. */
export interface SagaRuntime {
  store: SagaStore;
  gateway: ParticipantGateway;
  registry: DefinitionRegistry;
  log: Logger;
  now: () => Date;
  random: () => number;
  newId: () => string;
  metrics: SagaMetrics;
  /** Delay before a message whose commit failed (database down) is handled again. */
  commitRetryMs: number;
  /** Bugs switched on for the chaos suite (src/faults.ts), handed to the machine. */
  faults?: Faults;
  /** The lease of the shard this actor's saga belongs to; every commit is checked against it. */
  lease: ShardLease;
  /** A commit was refused because the lease is gone: the whole shard must stop. */
  onFenced: (shard: number) => void;
  /** This process does not have the definition version the saga runs on: it is left alone. */
  onMissingVersion: (sagaId: string, tipo: string, version: number) => void;
  /** The saga could not even be parked: keep it away from this process's sweeps. */
  onUnparkable: (sagaId: string) => void;
  /** Called once the saga is terminal, parked, or when this actor must stop (fenced out). */
  onDone: (sagaId: string, estado: string | null) => void;
}

/** What a saga actor is told: the machine's messages, and "orders are waiting in the mailbox". */
export type SagaActorMessage = SagaMessage | { type: 'ordersWaiting' };

interface SagaActorState {
  saga: StoredSaga | null;
  /** Pending timers, cleared when the actor stops. */
  timers: Set<NodeJS.Timeout>;
  done: boolean;
  /** Set when nact stopped the actor: a handler still awaiting a commit must not act. */
  stopped: boolean;
  /** The last commit failed with an unknown outcome: the next one checks whether it landed. */
  recheck: boolean;
}

/** setTimeout's ceiling (about 24.8 days); longer deadlines re-arm when they fire early. */
const MAX_TIMER_MS = 2_147_483_647;

/** `saga`: the saga as just recorded, if the spawner has it; otherwise it is loaded. */
export function spawnSagaActor(
  parent: AnyActorRef,
  sagaId: string,
  rt: SagaRuntime,
  saga: StoredSaga | null = null,
): ActorRef<SagaActorMessage> {
  return spawnActor<SagaActorState, SagaActorMessage>(
    parent,
    sagaId,
    async (state, msg, ctx) => {
      try {
        return await handle(rt, state, msg, ctx);
      } catch (err) {
        // A bug in the actor's own code: never drop the message silently.
        rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'saga actor failed');
        if (state.saga !== null && !state.done) return parkSaga(rt, state, ctx, `el actor de la SAGA falló: ${errorText(err)}`);
        return finish(rt, state, sagaId, null);
      }
    },
    {
      initialState: { saga, timers: new Set(), done: false, stopped: false, recheck: false },
      // handle() catches everything; a crash that still escapes keeps the others running.
      onCrash: 'resume',
      afterStop: (state) => {
        state.stopped = true;
        for (const t of state.timers) clearTimeout(t);
        state.timers.clear();
      },
    },
  );
}

async function handle(
  rt: SagaRuntime,
  state: SagaActorState,
  msg: SagaActorMessage,
  ctx: ActorContext<SagaActorMessage>,
): Promise<SagaActorState> {
  const sagaId = ctx.name;
  if (state.done) return state;
  if (state.saga === null && (await load(rt, state, sagaId, msg, ctx)) !== 'loaded') return state;
  // Orders first: an operator who paused or cancelled must be obeyed before anything else is called.
  if (msg.type === 'ordersWaiting' || (msg.type === 'resume' && msg.orders === true)) await takeOrders(rt, state, ctx);
  if (msg.type === 'ordersWaiting' || state.done) return state;
  if (msg.type === 'resume') {
    // A saga just recorded (by this process or another) and not written since:
    // nobody has acted on its first intent, so that call is its first attempt.
    const fresh = msg.fresh === true && state.saga?.version === 1;
    return step(rt, state, { type: 'resume', fresh }, ctx);
  }
  return step(rt, state, msg, ctx);
}

async function load(
  rt: SagaRuntime,
  state: SagaActorState,
  sagaId: string,
  msg: SagaActorMessage,
  ctx: ActorContext<SagaActorMessage>,
): Promise<'loaded' | 'not'> {
  let loaded;
  try {
    loaded = await rt.store.load(sagaId);
  } catch (err) {
    rt.log.error({ err, saga_id: sagaId }, 'could not load saga; will retry');
    later(state, rt.commitRetryMs, () => tell(ctx.self, msg));
    return 'not';
  }
  if (loaded === null) {
    rt.log.error({ saga_id: sagaId }, 'saga not found in saga_log');
    finish(rt, state, sagaId, null);
    return 'not';
  }
  const definition = rt.registry.get(loaded.tipo, loaded.versionDefinicion);
  if (definition === undefined) {
    // Not ours to run: touch nothing; a process that has this version will.
    rt.onMissingVersion(sagaId, loaded.tipo, loaded.versionDefinicion);
    finish(rt, state, sagaId, null);
    return 'not';
  }
  state.saga = { snapshot: upgradeSnapshot(loaded.snapshot, definition), datos: loaded.datos, version: loaded.version };
  return 'loaded';
}

async function takeOrders(rt: SagaRuntime, state: SagaActorState, ctx: ActorContext<SagaActorMessage>): Promise<void> {
  let orders;
  try {
    orders = await rt.store.pendingOrders(ctx.name);
  } catch (err) {
    rt.log.warn({ err, saga_id: ctx.name }, 'could not read operator orders; will retry');
    later(state, rt.commitRetryMs, () => tell(ctx.self, { type: 'ordersWaiting' }));
    return;
  }
  for (const order of orders) {
    if (state.done || state.saga === null) return;
    const target =
      order.accion === 'migrar' && order.version !== undefined ? rt.registry.get(state.saga.snapshot.tipo, order.version) : undefined;
    await step(rt, state, { type: 'operator', order, ...(target === undefined ? {} : { target }) }, ctx);
  }
}

/** Decide, commit, act: one message. */
async function step(
  rt: SagaRuntime,
  state: SagaActorState,
  msg: SagaMessage,
  ctx: ActorContext<SagaActorMessage>,
): Promise<SagaActorState> {
  const sagaId = ctx.name;
  const saga = state.saga!;
  const definition = rt.registry.get(saga.snapshot.tipo, saga.snapshot.version);
  if (definition === undefined) {
    rt.onMissingVersion(sagaId, saga.snapshot.tipo, saga.snapshot.version);
    return finish(rt, state, sagaId, null);
  }
  const now = rt.now();
  let decision: Decision;
  try {
    // `datos` was validated against this saga tipo's request schema when the saga was accepted.
    decision = decide(definition, saga.datos as never, saga.snapshot, msg, {
      now,
      random: rt.random,
      newId: rt.newId,
      faults: rt.faults,
    });
  } catch (err) {
    rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'saga handler failed');
    return parkSaga(rt, state, ctx, `el manejador de la SAGA falló con ${msg.type}: ${errorText(err)}`);
  }
  rt.log.debug(
    { saga_id: sagaId, msg: msg.type, estado: decision.snapshot.estado, attempt: decision.snapshot.attempt, changed: decision.changed },
    'saga message handled',
  );
  if (decision.changed) {
    const committed = await commit(rt, state, decision, now, msg, ctx);
    if (committed !== 'committed') return state;
    logTransition(rt.log, sagaId, decision);
    countTransition(rt.metrics, decision);
  }
  // Stopped while committing (shutdown, or the process lost the saga): the next
  // owner resumes from what was just committed; this actor calls nothing more.
  if (state.stopped) return state;
  for (const effect of decision.effects) perform(rt, state, effect, ctx);
  return state;
}

async function commit(
  rt: SagaRuntime,
  state: SagaActorState,
  decision: Decision,
  now: Date,
  msg: SagaMessage,
  ctx: ActorContext<SagaActorMessage>,
): Promise<'committed' | 'not'> {
  const sagaId = ctx.name;
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
      finish(rt, state, sagaId, null);
    } else if (err instanceof StaleSagaError) {
      // Someone else owns this saga now: stop without acting on anything.
      rt.log.warn({ saga_id: sagaId }, 'saga changed by another writer; stopping its actor here');
      finish(rt, state, sagaId, null);
    } else if (err instanceof PermanentWriteError) {
      // Retrying cannot help, and would drag every batch it joins down with it.
      rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'saga write refused by PostgreSQL for good');
      await parkSaga(rt, state, ctx, `PostgreSQL rechazó la escritura de la SAGA (SQLSTATE ${err.sqlState})`);
    } else {
      rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'could not commit saga transition; will retry');
      state.recheck = true;
      later(state, rt.commitRetryMs, () => tell(ctx.self, msg));
    }
    return 'not';
  }
}

/** Parks the saga from its last committed snapshot, and stops its actor. */
async function parkSaga(
  rt: SagaRuntime,
  state: SagaActorState,
  ctx: ActorContext<SagaActorMessage>,
  motivo: string,
): Promise<SagaActorState> {
  const sagaId = ctx.name;
  const saga = state.saga!;
  const reason = storableText(motivo).slice(0, 1_000);
  const now = rt.now();
  try {
    const decision = park(saga.snapshot, reason, now);
    const version = await rt.store.commit(sagaId, saga.version, decision, now, rt.lease, state.recheck);
    state.saga = { snapshot: decision.snapshot, datos: saga.datos, version };
    rt.metrics.parked(saga.snapshot.tipo);
    rt.log.error({ saga_id: sagaId, motivo: reason }, `SAGA ${sagaId} aparcada: ${reason}`);
  } catch (err) {
    rt.log.error({ err, saga_id: sagaId, motivo: reason }, `SAGA ${sagaId} could not be parked; left alone here`);
    rt.onUnparkable(sagaId);
  }
  return finish(rt, state, sagaId, null);
}

function perform(rt: SagaRuntime, state: SagaActorState, effect: Effect, ctx: ActorContext<SagaActorMessage>): void {
  switch (effect.type) {
    case 'call': {
      const { call, command } = effect;
      const started = Date.now();
      rt.gateway
        .call(command, { idempotencyKey: effect.idempotencyKey, timeoutMs: effect.timeoutMs })
        .catch((err: unknown) => ({ kind: 'transient' as const, error: String(err) }))
        .then((outcome) => {
          rt.metrics.call(call.phase === 'forward' ? 'paso' : 'compensacion', effect.tipo, outcome.kind, (Date.now() - started) / 1000);
          tell(ctx.self, { type: 'callCompleted', call, outcome });
        })
        .catch((err: unknown) => rt.log.error({ err }, 'could not deliver call outcome'));
      return;
    }
    case 'scheduleRetry':
      later(state, effect.delayMs, () => tell(ctx.self, { type: 'retryDue', call: effect.call }));
      return;
    case 'armDeadline':
      later(state, Math.min(effect.delayMs, MAX_TIMER_MS), () => tell(ctx.self, { type: 'deadlineReached' }));
      return;
    case 'stop':
      finish(rt, state, ctx.name, state.saga?.snapshot.estado ?? null);
      return;
  }
}

function finish(rt: SagaRuntime, state: SagaActorState, sagaId: string, estado: string | null): SagaActorState {
  state.done = true;
  for (const t of state.timers) clearTimeout(t);
  state.timers.clear();
  rt.onDone(sagaId, estado);
  return state;
}

function later(state: SagaActorState, ms: number, fn: () => void): void {
  if (state.stopped) return;
  const t = setTimeout(() => {
    state.timers.delete(t);
    fn();
  }, ms);
  state.timers.add(t);
}

function countTransition(metrics: SagaMetrics, d: Decision): void {
  const s = d.snapshot;
  for (const p of d.pasos) metrics.outcome('paso', s.tipo, p.tipo, p.exitoso);
  for (const c of d.compensaciones) metrics.outcome('compensacion', s.tipo, c.tipo, c.exitoso);
  for (const o of d.operaciones) metrics.operation(o.accion, o.resultado);
  if (s.phase === 'finished' && s.finishedAt !== null && d.events.some((e) => TERMINAL_EVENTS.has(e.tipo))) {
    metrics.finished(s.tipo, s.estado, (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000);
  }
}

const TERMINAL_EVENTS = new Set<string>([EVENT.completada, EVENT.compensacionCompletada, EVENT.compensacionFallida]);

/** The seed's log lines, written once the transition they describe is committed. */
function logTransition(log: Logger, sagaId: string, d: Decision): void {
  for (const paso of d.pasos) {
    if (paso.exitoso) {
      log.info({ saga_id: sagaId, paso: paso.tipo }, `Paso ${paso.id} de SAGA ${sagaId} ejecutado exitosamente`);
    } else {
      log.warn({ saga_id: sagaId, paso: paso.tipo }, `Paso ${paso.id} de SAGA ${sagaId} falló: ${paso.error}`);
    }
  }
  for (const c of d.compensaciones) {
    const outcome = c.manual ? 'omitida por un operador' : c.exitoso ? 'ejecutada' : `falló: ${c.error}`;
    log.info({ saga_id: sagaId, compensacion: c.tipo }, `Compensación ${c.id} de SAGA ${sagaId} ${outcome}`);
  }
  for (const o of d.operaciones) {
    log.info({ saga_id: sagaId, operacion: o.id, accion: o.accion, quien: o.quien, resultado: o.resultado }, `Operación ${o.accion} de ${o.quien} sobre SAGA ${sagaId}: ${o.resultado}`);
  }
  for (const e of d.events) {
    if (e.tipo === EVENT.compensacionIniciada) {
      log.warn({ saga_id: sagaId, error: d.snapshot.errorMessage }, `Compensación iniciada para SAGA ${sagaId}`);
    } else if (TERMINAL_EVENTS.has(e.tipo)) {
      log.info({ saga_id: sagaId, estado: e.estado }, `SAGA ${sagaId} terminó en ${e.estado}`);
    }
  }
}
