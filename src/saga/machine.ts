// The saga state machine: (snapshot, message) -> (new snapshot, records, effects).
// It performs no I/O and reads no clock: time, randomness and ids come in `env`.
// The actor that runs it persists the new snapshot and records in one
// transaction, and only then performs the effects. So a call is always preceded
// by the durable intent to make it, and an outcome is never acted on before it
// is recorded.
import { backoffDelay } from './backoff.js';
import type { AnySagaDefinition, CallOutcome, CallPolicy, Json, ParticipantCommand, SagaDefinition, StepDefinition } from './definition.js';
import { derivedUuid, idempotencyKey } from './ids.js';
import { SagaState } from './states.js';

export type Phase = 'forward' | 'compensating' | 'finished';

export interface SagaSnapshot {
  sagaId: string;
  tipo: string;
  estado: SagaState;
  phase: Phase;
  /** forward: index of the step being run; compensating: index into compensationPlan. */
  cursor: number;
  /** Attempts started for the current call (0 before the first). */
  attempt: number;
  /** The current attempt was started and its outcome is not recorded yet. */
  inFlight: boolean;
  /** When the next attempt is due, while waiting to retry (ISO time). */
  retryAt: string | null;
  /** Steps whose effect may exist: completed, or called with an unknown outcome. */
  mayHaveEffect: number[];
  /** Steps to compensate, in the order to do it (the reverse of the forward order). */
  compensationPlan: number[];
  /** Results of completed steps, by step tipo. */
  results: Record<string, Json>;
  errorMessage: string | null;
  timeoutMinutos: number;
  /** When the saga was accepted (ISO time). */
  startedAt: string;
  /** When the saga fails if it has not completed (ISO time). */
  deadline: string;
  finishedAt: string | null;
  /** Sequence number of the last event written for this saga. */
  lastEventSeq: number;
}

/** Identifies one attempt of one call, so that late answers to old attempts are ignored. */
export interface CallRef {
  phase: 'forward' | 'compensating';
  cursor: number;
  attempt: number;
}

export type SagaMessage =
  /** The actor (re)starts: issue or schedule whatever is due. */
  | { type: 'resume' }
  | { type: 'callCompleted'; call: CallRef; outcome: CallOutcome }
  | { type: 'retryDue'; call: CallRef }
  | { type: 'deadlineReached' };

export type Effect =
  | {
      type: 'call';
      call: CallRef;
      /** The step or compensation tipo, for logs. */
      tipo: string;
      command: ParticipantCommand;
      idempotencyKey: string;
      timeoutMs: number;
    }
  | { type: 'scheduleRetry'; call: CallRef; delayMs: number }
  | { type: 'armDeadline'; delayMs: number }
  /** The saga is terminal: the actor can stop. */
  | { type: 'finish' };

/** A row of saga_pasos or saga_compensaciones. */
export interface OutcomeRecord {
  id: string;
  orden: number;
  tipo: string;
  exitoso: boolean;
  error: string | null;
  resultado: Json;
  intentos: number;
  fechaEjecucion: string;
}

/** A row of saga_events. */
export interface EventRecord {
  secuencia: number;
  tipo: string;
  estado: SagaState;
  payload: Json;
  fecha: string;
}

export interface Decision {
  snapshot: SagaSnapshot;
  /** The snapshot or records changed: they must be committed before the effects run. */
  changed: boolean;
  pasos: OutcomeRecord[];
  compensaciones: OutcomeRecord[];
  events: EventRecord[];
  effects: Effect[];
}

export interface DecisionEnv {
  now: Date;
  random: () => number;
  newId: () => string;
}

export const EVENT = {
  iniciada: 'SagaIniciada',
  pasoEjecutado: 'SagaPasoEjecutado',
  completada: 'SagaCompletada',
  fallida: 'SagaFallida',
  compensacionIniciada: 'SagaCompensacionIniciada',
  compensacionCompletada: 'SagaCompensacionCompletada',
  compensacionFallida: 'SagaCompensacionFallida',
} as const;

/** The snapshot and first event of a saga that has just been accepted. */
export function newSaga(
  def: AnySagaDefinition,
  init: { sagaId: string; timeoutMinutos: number; now: Date },
): { snapshot: SagaSnapshot; events: EventRecord[] } {
  const snapshot: SagaSnapshot = {
    sagaId: init.sagaId,
    tipo: def.tipo,
    estado: SagaState.INICIADA,
    phase: 'forward',
    cursor: 0,
    attempt: 0,
    inFlight: false,
    retryAt: null,
    mayHaveEffect: [],
    compensationPlan: [],
    results: {},
    errorMessage: null,
    timeoutMinutos: init.timeoutMinutos,
    startedAt: init.now.toISOString(),
    deadline: new Date(init.now.getTime() + init.timeoutMinutos * 60_000).toISOString(),
    finishedAt: null,
    lastEventSeq: 1,
  };
  const event: EventRecord = {
    secuencia: 1,
    tipo: EVENT.iniciada,
    estado: SagaState.INICIADA,
    payload: { saga_id: init.sagaId, tipo: def.tipo, estado: SagaState.INICIADA, timeout_minutos: init.timeoutMinutos },
    fecha: init.now.toISOString(),
  };
  return { snapshot, events: [event] };
}

/**
 * A new saga as it is first written: accepted (SagaIniciada) with the intent
 * to call its first step already recorded. One commit instead of two before
 * the first call; the actor that runs it finds the call in flight and makes
 * it without writing again.
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
  return { snapshot: first.snapshot, events: [...accepted.events, ...first.events] };
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
      d.resume();
      break;
    case 'callCompleted':
      if (d.isCurrent(msg.call) && d.s.inFlight) d.callCompleted(msg.outcome);
      break;
    case 'retryDue':
      if (d.isCurrent(msg.call) && !d.s.inFlight && d.s.retryAt !== null) d.startCall();
      break;
    case 'deadlineReached':
      if (d.s.phase === 'forward') d.deadlineReached();
      break;
  }
  return d.decision();
}

/** The mutable working copy of one decision; private to this module. */
class Draft<D> {
  readonly s: SagaSnapshot;
  private changed = false;
  private readonly pasos: OutcomeRecord[] = [];
  private readonly compensaciones: OutcomeRecord[] = [];
  private readonly events: EventRecord[] = [];
  private readonly effects: Effect[] = [];

  constructor(
    private readonly def: SagaDefinition<D>,
    private readonly datos: D,
    snapshot: SagaSnapshot,
    private readonly env: DecisionEnv,
  ) {
    this.s = structuredClone(snapshot);
  }

  decision(): Decision {
    return {
      snapshot: this.s,
      changed: this.changed,
      pasos: this.pasos,
      compensaciones: this.compensaciones,
      events: this.events,
      effects: this.effects,
    };
  }

  isCurrent(call: CallRef): boolean {
    return call.phase === this.s.phase && call.cursor === this.s.cursor && call.attempt === this.s.attempt;
  }

  resume(): void {
    const s = this.s;
    if (s.phase === 'finished') {
      this.effects.push({ type: 'finish' });
      return;
    }
    if (s.phase === 'forward') {
      const left = Date.parse(s.deadline) - this.env.now.getTime();
      if (left <= 0) {
        this.deadlineReached();
        return;
      }
      this.effects.push({ type: 'armDeadline', delayMs: left });
    }
    if (s.inFlight) {
      // The outcome of the last attempt was never recorded: ask again with the
      // same Idempotency-Key, which the participant answers without a second effect.
      this.effects.push(this.callEffect(this.currentRef()));
    } else if (s.retryAt !== null) {
      const delayMs = Math.max(0, Date.parse(s.retryAt) - this.env.now.getTime());
      this.effects.push({ type: 'scheduleRetry', call: this.currentRef(), delayMs });
    } else {
      this.startCall();
    }
  }

  /** Records the intent to call (the actor commits it before calling), then calls. */
  startCall(): void {
    const s = this.s;
    s.attempt += 1;
    s.inFlight = true;
    s.retryAt = null;
    // Register the undo before the call: from now on this step may have taken effect.
    if (s.phase === 'forward' && !s.mayHaveEffect.includes(s.cursor)) s.mayHaveEffect.push(s.cursor);
    this.changed = true;
    this.effects.push(this.callEffect(this.currentRef()));
  }

  callCompleted(outcome: CallOutcome): void {
    if (this.s.phase === 'forward') this.stepCompleted(outcome);
    else this.compensationCompleted(outcome);
  }

  deadlineReached(): void {
    // Timers are clamped to what setTimeout allows, so an early alarm just re-arms.
    const left = Date.parse(this.s.deadline) - this.env.now.getTime();
    if (left > 0) {
      this.effects.push({ type: 'armDeadline', delayMs: left });
      return;
    }
    const step = this.currentStep();
    const reason = `SAGA superó timeout_minutos (${this.s.timeoutMinutos}) durante el paso ${step.tipo}`;
    if (this.s.attempt > 0) this.pasos.push(this.outcome(this.s.cursor, step.tipo, false, 'timeout de la SAGA', null));
    this.fail(reason);
  }

  private stepCompleted(outcome: CallOutcome): void {
    const s = this.s;
    const step = this.currentStep();
    if (outcome.kind === 'ok') {
      this.pasos.push(this.outcome(s.cursor, step.tipo, true, null, outcome.resultado));
      s.results[step.tipo] = outcome.resultado;
      s.estado = step.reaches;
      this.emit(EVENT.pasoEjecutado, { paso: step.tipo, resultado: outcome.resultado });
      this.emit(step.event, { paso: step.tipo });
      this.advance();
      if (s.cursor < this.def.steps.length) this.startCall();
      else this.finish(SagaState.COMPLETADA, EVENT.completada);
      return;
    }
    if (outcome.kind === 'rejected') {
      const error = `HTTP ${outcome.status}: ${outcome.error}`;
      this.pasos.push(this.outcome(s.cursor, step.tipo, false, error, null));
      // A refusal had no effect: there is nothing of this step to compensate.
      s.mayHaveEffect = s.mayHaveEffect.filter((i) => i !== s.cursor);
      this.fail(`Paso ${step.tipo} falló: ${error}`);
      return;
    }
    if (this.retryLater(step.policy)) return;
    const error = `${outcome.error} (tras ${s.attempt} intentos)`;
    this.pasos.push(this.outcome(s.cursor, step.tipo, false, error, null));
    this.fail(`Paso ${step.tipo} falló: ${error}`);
  }

  private compensationCompleted(outcome: CallOutcome): void {
    const s = this.s;
    const compensation = this.currentStep().compensation;
    const nothingToUndo = outcome.kind === 'rejected' && outcome.status === 404;
    if (outcome.kind === 'ok' || nothingToUndo) {
      const resultado = outcome.kind === 'ok' ? outcome.resultado : { nada_que_deshacer: true };
      this.compensaciones.push(this.outcome(s.cursor, compensation.tipo, true, null, resultado));
      this.advance();
      if (s.cursor < s.compensationPlan.length) this.startCall();
      else this.finish(SagaState.COMPENSADA, EVENT.compensacionCompletada);
      return;
    }
    if (outcome.kind === 'transient' && this.retryLater(compensation.policy)) return;
    const error =
      outcome.kind === 'rejected'
        ? `HTTP ${outcome.status}: ${outcome.error}`
        : `${outcome.error} (tras ${s.attempt} intentos)`;
    this.compensaciones.push(this.outcome(s.cursor, compensation.tipo, false, error, null));
    s.errorMessage = `${s.errorMessage ?? 'SAGA fallida'}; compensación ${compensation.tipo} falló: ${error}`;
    this.finish(SagaState.COMPENSACION_FALLIDA, EVENT.compensacionFallida);
  }

  /** Schedules another attempt if the policy allows one; false when attempts are exhausted. */
  private retryLater(policy: CallPolicy): boolean {
    const s = this.s;
    if (s.attempt >= policy.retry.maxAttempts) return false;
    const delayMs = backoffDelay(policy.retry.backoff, s.attempt, this.env.random());
    s.inFlight = false;
    s.retryAt = new Date(this.env.now.getTime() + delayMs).toISOString();
    this.changed = true;
    this.effects.push({ type: 'scheduleRetry', call: this.currentRef(), delayMs });
    return true;
  }

  /** The saga failed: compensate, in reverse order, every step that may have had an effect. */
  private fail(reason: string): void {
    const s = this.s;
    s.errorMessage = reason;
    s.estado = SagaState.FALLIDA;
    this.emit(EVENT.fallida, { error: reason });
    s.phase = 'compensating';
    s.compensationPlan = [...s.mayHaveEffect].sort((a, b) => b - a);
    s.cursor = 0;
    s.attempt = 0;
    s.inFlight = false;
    s.retryAt = null;
    s.estado = SagaState.COMPENSANDO;
    this.emit(EVENT.compensacionIniciada, {
      compensaciones: s.compensationPlan.map((i) => this.step(i).compensation.tipo),
    });
    if (s.compensationPlan.length > 0) this.startCall();
    else this.finish(SagaState.COMPENSADA, EVENT.compensacionCompletada);
  }

  private advance(): void {
    this.s.cursor += 1;
    this.s.attempt = 0;
    this.s.inFlight = false;
    this.s.retryAt = null;
  }

  private finish(estado: SagaState, event: string): void {
    const s = this.s;
    s.estado = estado;
    s.phase = 'finished';
    s.inFlight = false;
    s.retryAt = null;
    s.finishedAt = this.env.now.toISOString();
    this.emit(event, s.errorMessage === null ? {} : { error: s.errorMessage });
    this.effects.push({ type: 'finish' });
  }

  private emit(tipo: string, extra: { [key: string]: Json }): void {
    const s = this.s;
    s.lastEventSeq += 1;
    this.changed = true;
    this.events.push({
      secuencia: s.lastEventSeq,
      tipo,
      estado: s.estado,
      payload: { saga_id: s.sagaId, tipo: s.tipo, estado: s.estado, ...extra },
      fecha: this.env.now.toISOString(),
    });
  }

  private outcome(position: number, tipo: string, exitoso: boolean, error: string | null, resultado: Json): OutcomeRecord {
    this.changed = true;
    return {
      id: this.env.newId(),
      orden: position + 1,
      tipo,
      exitoso,
      error,
      resultado,
      intentos: this.s.attempt,
      fechaEjecucion: this.env.now.toISOString(),
    };
  }

  private currentRef(): CallRef {
    const { phase, cursor, attempt } = this.s;
    if (phase === 'finished') throw new Error('a finished saga makes no calls');
    return { phase, cursor, attempt };
  }

  /** The step being run forward, or the step whose compensation is being run. */
  private currentStep(): StepDefinition<D> {
    const s = this.s;
    return this.step(s.phase === 'compensating' ? s.compensationPlan[s.cursor]! : s.cursor);
  }

  private step(index: number): StepDefinition<D> {
    const step = this.def.steps[index];
    if (step === undefined) throw new Error(`saga ${this.def.tipo} has no step ${index}`);
    return step;
  }

  private callEffect(call: CallRef): Effect {
    const step = this.currentStep();
    const input = {
      sagaId: this.s.sagaId,
      datos: this.datos,
      resourceId: derivedUuid(this.s.sagaId, step.tipo),
      results: this.s.results,
    };
    const forward = call.phase === 'forward';
    const tipo = forward ? step.tipo : step.compensation.tipo;
    return {
      type: 'call',
      call,
      tipo,
      command: forward ? step.action(input) : step.compensation.action(input),
      idempotencyKey: idempotencyKey(this.s.sagaId, tipo, forward ? 'accion' : 'compensacion'),
      timeoutMs: (forward ? step.policy : step.compensation.policy).timeoutMs,
    };
  }
}
