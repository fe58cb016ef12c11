// The saga state machine: (snapshot, message) -> (new snapshot, records, effects).
// It performs no I/O and reads no clock: time, randomness and ids come in `env`.
// The actor that runs it persists the new snapshot and records in one
// transaction, and only then performs the effects. So a call is always preceded
// by the durable intent to make it, and an outcome is never acted on before it
// is recorded. Operator orders are messages like any other: decided here and
// committed with their audit row.
import type { AnySagaDefinition, Json, SagaDefinition } from './definition.js';
import { EVENT, type DecisionEnv, type Decision, type EventRecord, type SagaMessage } from './decision.js';
import { Draft } from './operator-orders.js';
import type { SagaSnapshot } from './snapshot.js';
import { Lifecycle } from './states.js';

export * from './decision.js';
export type { MachineRules } from './rules.js';
export { PRODUCTION_RULES } from './rules.js';

/** The snapshot and first event of a saga that has just been accepted. */
export function newSaga(
  def: AnySagaDefinition,
  init: { sagaId: string; timeoutMinutos: number; now: Date },
): { snapshot: SagaSnapshot; events: EventRecord[] } {
  const first = def.steps[0];
  if (first === undefined) throw new Error(`saga ${def.tipo} v${def.version} has no steps`);
  const snapshot: SagaSnapshot = {
    format: 2,
    sagaId: init.sagaId,
    tipo: def.tipo,
    version: def.version,
    estado: Lifecycle.INICIADA,
    phase: 'forward',
    step: first.tipo,
    attempt: 0,
    inFlight: false,
    retryAt: null,
    callSince: null,
    expectBy: null,
    mayHaveEffect: [],
    compensations: [],
    results: {},
    errorMessage: null,
    timeoutMinutos: init.timeoutMinutos,
    startedAt: init.now.toISOString(),
    deadline: new Date(init.now.getTime() + init.timeoutMinutos * 60_000).toISOString(),
    finishedAt: null,
    lastEventSeq: 1,
    paused: null,
    parked: null,
    cancel: null,
  };
  const event: EventRecord = {
    secuencia: 1,
    tipo: EVENT.iniciada,
    estado: Lifecycle.INICIADA,
    payload: {
      saga_id: init.sagaId,
      tipo: def.tipo,
      version_definicion: def.version,
      estado: Lifecycle.INICIADA,
      timeout_minutos: init.timeoutMinutos,
    },
    fecha: init.now.toISOString(),
  };
  return { snapshot, events: [event] };
}

/**
 * A new saga as it is first written: accepted (SagaIniciada) with the intent
 * to call its first step already recorded. One commit instead of two before
 * the first call; the actor that runs it resumes it `fresh` and calls without
 * writing again.
 */
export function acceptSaga<D>(
  def: SagaDefinition<D>,
  datos: D,
  init: { sagaId: string; timeoutMinutos: number; now: Date },
  env: DecisionEnv,
): { snapshot: SagaSnapshot; events: EventRecord[] } {
  const accepted = newSaga(def, init);
  const first = decide(def, datos, accepted.snapshot, { type: 'resume' }, env);
  if (first.pasos.length > 0 || first.compensaciones.length > 0) return accepted; // nothing to start
  // That first attempt is made without a write of its own, by whichever process runs the saga fresh: the one that
  // recorded it, and any other that holds (or still thinks it holds) its shard and is told of it. Two may make it at
  // once, and a refusal of one says nothing of the other: so, as for an unknown outcome, a refusal of the first step
  // keeps its undo (an undo of nothing is answered 404, and a participant keeps a tombstone).
  const snapshot = first.snapshot;
  if (snapshot.step !== null) snapshot.uncertain = [snapshot.step];
  return { snapshot, events: [...accepted.events, ...first.events] };
}

export function decide<D>(
  def: SagaDefinition<D>,
  datos: D,
  snapshot: SagaSnapshot,
  msg: SagaMessage,
  env: DecisionEnv,
): Decision {
  const d = new Draft(def, datos, snapshot, env);
  switch (msg.type) {
    case 'resume':
      d.resume(msg.fresh === true, msg.callingHere === true);
      break;
    case 'callCompleted':
      if (d.isCurrent(msg.call) && d.s.inFlight) d.callCompleted(msg.outcome);
      break;
    case 'retryDue':
      if (d.isCurrent(msg.call) && !d.s.inFlight && d.s.retryAt !== null && d.s.paused === null) d.startCall();
      break;
    case 'deadlineReached':
      if (d.s.phase === 'forward') d.deadlineReached();
      break;
    case 'operator':
      d.operator(msg.order, msg.target as SagaDefinition<D> | undefined);
      break;
  }
  return d.decision();
}

/**
 * Parks a saga: it makes no call and fires no timer until an operator retries
 * it. For what the machine itself cannot decide (its handler crashed) or the
 * log cannot store (a write that can never commit); so it only touches the
 * snapshot it is given, which is the last one committed.
 */
export function park(snapshot: SagaSnapshot, motivo: string, now: Date): Decision {
  const s = structuredClone(snapshot);
  const fecha = now.toISOString();
  s.parked = { motivo, fecha };
  s.expectBy = null;
  s.lastEventSeq += 1;
  const event: EventRecord = {
    secuencia: s.lastEventSeq,
    tipo: EVENT.aparcada,
    estado: s.estado,
    payload: { saga_id: s.sagaId, tipo: s.tipo, estado: s.estado, motivo },
    fecha,
  };
  return { snapshot: s, changed: true, pasos: [], compensaciones: [], events: [event], operaciones: [], effects: [{ type: 'stop' }], reply: null };
}

/**
 * Parks a saga whose stored snapshot this code cannot read (upgrading it threw):
 * the snapshot is kept as stored, marked parked with the reason, so the saga is
 * visible and left alone until an operator looks at it, instead of being
 * respawned by every sweep.
 */
export function parkUnreadable(
  raw: unknown,
  stored: { sagaId: string; tipo: string; estado: string; versionDefinicion: number },
  motivo: string,
  now: Date,
): Decision {
  const base = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : { stored: raw as Json };
  const fecha = now.toISOString();
  const seq = typeof base.lastEventSeq === 'number' ? base.lastEventSeq + 1 : null;
  const s = {
    ...base,
    sagaId: stored.sagaId,
    tipo: stored.tipo,
    estado: stored.estado,
    version: stored.versionDefinicion,
    errorMessage: typeof base.errorMessage === 'string' ? base.errorMessage : null,
    finishedAt: typeof base.finishedAt === 'string' ? base.finishedAt : null,
    paused: null,
    parked: { motivo, fecha },
    expectBy: null,
    ...(seq === null ? {} : { lastEventSeq: seq }),
  } as unknown as SagaSnapshot;
  const events: EventRecord[] =
    seq === null
      ? []
      : [{ secuencia: seq, tipo: EVENT.aparcada, estado: stored.estado, payload: { saga_id: stored.sagaId, tipo: stored.tipo, estado: stored.estado, motivo }, fecha }];
  return { snapshot: s, changed: true, pasos: [], compensaciones: [], events, operaciones: [], effects: [{ type: 'stop' }], reply: null };
}
