// One actor per running saga. For each message it loads nothing but its own
// snapshot (once), asks the pure state machine what to do, commits the result,
// and only then performs the effects: participant calls, timers, stopping.
import type { Logger } from '../log.js';
import type { SagaMetrics } from '../metrics.js';
import type { ParticipantGateway } from '../participants/gateway.js';
import type { AnySagaDefinition } from '../saga/definition.js';
import { decide, EVENT, type Decision, type Effect, type SagaMessage } from '../saga/machine.js';
import type { SagaState } from '../saga/states.js';
import { FencedError, StaleSagaError, type SagaStore, type StoredSaga } from '../persistence/saga-store.js';
import type { ShardLease } from '../cluster/shards.js';
import { spawnActor, tell, type ActorContext, type ActorRef, type AnyActorRef } from './nact.js';

/** What every saga actor shares: its ports to the world. */
export interface SagaRuntime {
  store: SagaStore;
  gateway: ParticipantGateway;
  definitions: ReadonlyMap<string, AnySagaDefinition>;
  log: Logger;
  now: () => Date;
  random: () => number;
  newId: () => string;
  metrics: SagaMetrics;
  /** Delay before a message whose commit failed (database down) is handled again. */
  commitRetryMs: number;
  /** The lease of the shard this actor's saga belongs to; every commit is checked against it. */
  lease: ShardLease;
  /** A commit was refused because the lease is gone: the whole shard must stop. */
  onFenced: (shard: number) => void;
  /** Called once the saga is terminal, or when this actor must stop (fenced out). */
  onDone: (sagaId: string, estado: SagaState | null) => void;
}

interface SagaActorState {
  saga: StoredSaga | null;
  /** Pending timers, cleared when the actor stops. */
  timers: Set<NodeJS.Timeout>;
  done: boolean;
  /** Set when nact stopped the actor: a handler still awaiting a commit must not act. */
  stopped: boolean;
}

/** setTimeout's ceiling (about 24.8 days); longer deadlines re-arm when they fire early. */
const MAX_TIMER_MS = 2_147_483_647;

/** `saga`: the saga as just recorded, if the spawner has it; otherwise it is loaded. */
export function spawnSagaActor(
  parent: AnyActorRef,
  sagaId: string,
  rt: SagaRuntime,
  saga: StoredSaga | null = null,
): ActorRef<SagaMessage> {
  return spawnActor<SagaActorState, SagaMessage>(parent, sagaId, (state, msg, ctx) => handle(rt, state, msg, ctx), {
    initialState: { saga, timers: new Set(), done: false, stopped: false },
    // A bug in one saga must not take the others down: keep the actor and its state.
    onCrash: 'resume',
    afterStop: (state) => {
      state.stopped = true;
      for (const t of state.timers) clearTimeout(t);
      state.timers.clear();
    },
  });
}

async function handle(
  rt: SagaRuntime,
  state: SagaActorState,
  msg: SagaMessage,
  ctx: ActorContext<SagaMessage>,
): Promise<SagaActorState> {
  const sagaId = ctx.name;
  if (state.done) return state;
  if (state.saga === null) {
    try {
      state.saga = await rt.store.load(sagaId);
    } catch (err) {
      rt.log.error({ err, saga_id: sagaId }, 'could not load saga; will retry');
      later(state, rt.commitRetryMs, () => tell(ctx.self, msg));
      return state;
    }
    if (state.saga === null) {
      rt.log.error({ saga_id: sagaId }, 'saga not found in saga_log');
      return finish(rt, state, sagaId, null);
    }
  }
  const saga = state.saga;
  const definition = rt.definitions.get(saga.snapshot.tipo);
  if (definition === undefined) {
    rt.log.error({ saga_id: sagaId, tipo: saga.snapshot.tipo }, 'no definition for saga tipo');
    return finish(rt, state, sagaId, null);
  }

  const now = rt.now();
  // `datos` was validated against this saga tipo's request schema when the saga was accepted.
  const datos = saga.datos as never;
  const decision = decide(definition, datos, saga.snapshot, msg, { now, random: rt.random, newId: rt.newId });
  rt.log.debug(
    { saga_id: sagaId, msg: msg.type, estado: decision.snapshot.estado, attempt: decision.snapshot.attempt, changed: decision.changed },
    'saga message handled',
  );
  if (decision.changed) {
    try {
      const version = await rt.store.commit(sagaId, saga.version, decision, now, rt.lease);
      state.saga = { snapshot: decision.snapshot, datos: saga.datos, version };
    } catch (err) {
      if (err instanceof FencedError) {
        rt.log.warn({ saga_id: sagaId, shard: rt.lease.shard, epoch: rt.lease.epoch }, 'write refused: shard lease lost');
        rt.onFenced(rt.lease.shard);
        return finish(rt, state, sagaId, null);
      }
      if (err instanceof StaleSagaError) {
        // Someone else owns this saga now: stop without acting on anything.
        rt.log.warn({ saga_id: sagaId }, 'saga changed by another writer; stopping its actor here');
        return finish(rt, state, sagaId, null);
      }
      rt.log.error({ err, saga_id: sagaId, msg: msg.type }, 'could not commit saga transition; will retry');
      later(state, rt.commitRetryMs, () => tell(ctx.self, msg));
      return state;
    }
    logTransition(rt.log, sagaId, decision);
    countTransition(rt.metrics, decision);
  }
  // Stopped while committing (shutdown, or the process lost the saga): the next
  // owner resumes from what was just committed; this actor calls nothing more.
  if (state.stopped) return state;
  for (const effect of decision.effects) perform(rt, state, effect, ctx);
  return state;
}

function perform(rt: SagaRuntime, state: SagaActorState, effect: Effect, ctx: ActorContext<SagaMessage>): void {
  switch (effect.type) {
    case 'call': {
      const { call, command } = effect;
      rt.gateway
        .call(command, { idempotencyKey: effect.idempotencyKey, timeoutMs: effect.timeoutMs })
        .catch((err: unknown) => ({ kind: 'transient' as const, error: String(err) }))
        .then((outcome) => tell(ctx.self, { type: 'callCompleted', call, outcome }))
        .catch((err: unknown) => rt.log.error({ err }, 'could not deliver call outcome'));
      return;
    }
    case 'scheduleRetry':
      later(state, effect.delayMs, () => tell(ctx.self, { type: 'retryDue', call: effect.call }));
      return;
    case 'armDeadline':
      later(state, Math.min(effect.delayMs, MAX_TIMER_MS), () => tell(ctx.self, { type: 'deadlineReached' }));
      return;
    case 'finish':
      finish(rt, state, ctx.name, state.saga?.snapshot.estado ?? null);
      return;
  }
}

function finish(rt: SagaRuntime, state: SagaActorState, sagaId: string, estado: SagaState | null): SagaActorState {
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
  if (s.phase === 'finished' && s.finishedAt !== null && d.events.length > 0) {
    metrics.finished(s.tipo, s.estado, (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000);
  }
}

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
    const outcome = c.exitoso ? 'ejecutada' : `falló: ${c.error}`;
    log.info({ saga_id: sagaId, compensacion: c.tipo }, `Compensación ${c.id} de SAGA ${sagaId} ${outcome}`);
  }
  for (const e of d.events) {
    if (e.tipo === EVENT.compensacionIniciada) {
      log.warn({ saga_id: sagaId, error: d.snapshot.errorMessage }, `Compensación iniciada para SAGA ${sagaId}`);
    } else if (e.tipo === EVENT.completada || e.tipo === EVENT.compensacionCompletada || e.tipo === EVENT.compensacionFallida) {
      log.info({ saga_id: sagaId, estado: e.estado }, `SAGA ${sagaId} terminó en ${e.estado}`);
    }
  }
}
