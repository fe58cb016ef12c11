// The saga state machine: (snapshot, message) -> (new snapshot, records, effects).
// It performs no I/O and reads no clock: time, randomness and ids come in `env`.
// The actor that runs it persists the new snapshot and records in one
// transaction, and only then performs the effects. So a call is always preceded
// by the durable intent to make it, and an outcome is never acted on before it
// is recorded. Operator orders are messages like any other: decided here and
// committed with their audit row.
import { backoffDelay } from './backoff.js';
import type { AnySagaDefinition, CallOutcome, CallPolicy, Json, ParticipantCommand, SagaDefinition, StepDefinition } from './definition.js';
import { derivedUuid, idempotencyKey } from './ids.js';
import type { OperatorOrder, OperationRecord } from './operations.js';
import type { CompensationEntry, SagaSnapshot } from './snapshot.js';
import { Lifecycle } from './states.js';
import type { Fault, Faults } from '../faults.js';

export type { SagaSnapshot, Phase, CompensationStatus, CompensationEntry } from './snapshot.js';

/** Identifies one attempt of one call, so that late answers to old attempts are ignored. */
export interface CallRef {
  phase: 'forward' | 'compensating';
  step: string;
  attempt: number;
}

export type SagaMessage =
  /**
   * The actor (re)starts: issue or schedule whatever is due. `fresh`: the saga
   * was just accepted and nobody has acted on its first intent yet, so the
   * call in flight is its first attempt, not an interrupted one. `orders`:
   * operator orders wait in the mailbox (the actor takes them first).
   * `callingHere`: the call in flight was started by this very actor (an
   * order it took before this resume started it): its answer is on its way,
   * so it is neither interrupted nor made again.
   */
  | { type: 'resume'; fresh?: boolean; orders?: boolean; callingHere?: boolean }
  | { type: 'callCompleted'; call: CallRef; outcome: CallOutcome }
  | { type: 'retryDue'; call: CallRef }
  | { type: 'deadlineReached' }
  /** `target`: for `migrar`, the definition version to move to, if this process has it. */
  | { type: 'operator'; order: OperatorOrder; target?: AnySagaDefinition };

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
  /** Nothing will happen without a new order (terminal or parked): the actor can stop. */
  | { type: 'stop' };

/** A row of saga_pasos or saga_compensaciones. */
export interface OutcomeRecord {
  id: string;
  /** The step's position in its definition (pasos) or in the compensation plan (compensaciones), from 1. */
  orden: number;
  tipo: string;
  exitoso: boolean;
  error: string | null;
  resultado: Json;
  intentos: number;
  /** Done by hand, declared by an operator (omitir), not by a call. */
  manual: boolean;
  fechaEjecucion: string;
}

/** A row of saga_events. */
export interface EventRecord {
  secuencia: number;
  tipo: string;
  estado: string;
  payload: Json;
  fecha: string;
}

/** What an operator order got: the answer its requester waits for. */
export interface OrderReply {
  orderId: string;
  resultado: 'aceptada' | 'rechazada';
  detalle: string | null;
}

export interface Decision {
  snapshot: SagaSnapshot;
  /** The snapshot or records changed: they must be committed before the effects run. */
  changed: boolean;
  pasos: OutcomeRecord[];
  compensaciones: OutcomeRecord[];
  events: EventRecord[];
  operaciones: OperationRecord[];
  effects: Effect[];
  reply: OrderReply | null;
}

export interface DecisionEnv {
  now: Date;
  random: () => number;
  newId: () => string;
  /** Bugs switched on for the chaos suite (src/faults.ts); absent or empty everywhere else. */
  faults?: Faults;
}

export const EVENT = {
  iniciada: 'SagaIniciada',
  pasoEjecutado: 'SagaPasoEjecutado',
  completada: 'SagaCompletada',
  fallida: 'SagaFallida',
  compensacionIniciada: 'SagaCompensacionIniciada',
  compensacionCompletada: 'SagaCompensacionCompletada',
  compensacionFallida: 'SagaCompensacionFallida',
  aparcada: 'SagaAparcada',
  /** Followed by the action, capitalised: SagaOperacionCancelar, … */
  operacion: 'SagaOperacion',
} as const;

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

const capitalised = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The mutable working copy of one decision; private to this module. */
class Draft<D> {
  readonly s: SagaSnapshot;
  private changed = false;
  private readonly pasos: OutcomeRecord[] = [];
  private readonly compensaciones: OutcomeRecord[] = [];
  private readonly events: EventRecord[] = [];
  private readonly operaciones: OperationRecord[] = [];
  private readonly effects: Effect[] = [];
  private reply: OrderReply | null = null;

  constructor(
    private def: SagaDefinition<D>,
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
      operaciones: this.operaciones,
      effects: this.effects,
      reply: this.reply,
    };
  }

  isCurrent(call: CallRef): boolean {
    return call.phase === this.s.phase && call.step === this.s.step && call.attempt === this.s.attempt;
  }

  resume(fresh: boolean, callingHere = false): void {
    const s = this.s;
    if (s.phase === 'finished' || s.parked !== null) {
      this.effects.push({ type: 'stop' });
      return;
    }
    if (s.phase === 'forward' && !s.paused?.deadlineStopped && !this.fault('forget-deadline-on-resume')) {
      const left = Date.parse(s.deadline) - this.nowMs();
      if (left <= 0) {
        this.deadlineReached();
        return;
      }
      this.effects.push({ type: 'armDeadline', delayMs: left });
    }
    if (s.inFlight) {
      if (callingHere) return; // its answer comes as callCompleted
      if (fresh) {
        // Accepted with this intent and not acted on by anyone: its first attempt.
        this.effects.push(this.callEffect(this.currentRef()));
        return;
      }
      // An attempt whose outcome was never recorded: the process stopped during
      // the call. It counts, so a saga that crashes its process every time
      // still reaches its retry limit; it is asked again with the same key.
      this.markUncertain();
      this.callCompleted({ kind: 'transient', error: 'sin respuesta: el orquestador se detuvo durante la llamada' });
      return;
    }
    if (s.retryAt !== null) {
      const delayMs = Math.max(0, Date.parse(s.retryAt) - this.nowMs());
      this.effects.push({ type: 'scheduleRetry', call: this.currentRef(), delayMs });
      return;
    }
    this.proceed();
  }

  /** Starts the current call, unless an operator holds the saga. */
  private proceed(): void {
    const s = this.s;
    if (s.phase === 'forward' && s.cancel !== null) {
      this.failForCancel(s.cancel);
      return;
    }
    if (s.paused !== null) {
      if (s.expectBy !== null) {
        s.expectBy = null;
        this.changed = true;
      }
      return;
    }
    this.startCall();
  }

  /** Records the intent to call (the actor commits it before calling), then calls. */
  startCall(): void {
    const s = this.s;
    const step = this.currentStep();
    s.attempt += 1;
    s.inFlight = true;
    s.retryAt = null;
    s.callSince ??= this.env.now.toISOString();
    // Register the undo before the call: from now on this step may have taken effect.
    if (s.phase === 'forward' && !s.mayHaveEffect.includes(step.tipo)) s.mayHaveEffect.push(step.tipo);
    s.expectBy = this.later(this.currentPolicy().timeoutMs);
    this.changed = true;
    this.effects.push(this.callEffect(this.currentRef()));
  }

  callCompleted(outcome: CallOutcome): void {
    if (this.s.phase === 'forward') this.stepCompleted(outcome);
    else this.compensationCompleted(outcome);
  }

  deadlineReached(): void {
    const s = this.s;
    if (s.paused?.deadlineStopped) return; // re-armed from the moved deadline when resumed
    // Timers are clamped to what setTimeout allows, so an early alarm just re-arms.
    const left = Date.parse(s.deadline) - this.nowMs();
    if (left > 0) {
      this.effects.push({ type: 'armDeadline', delayMs: left });
      return;
    }
    const step = this.currentStep();
    const reason = `SAGA superó timeout_minutos (${s.timeoutMinutos}) durante el paso ${step.tipo}`;
    if (s.attempt > 0) this.pasos.push(this.outcome(step.tipo, false, 'timeout de la SAGA', null));
    this.fail(reason);
  }

  operator(order: OperatorOrder, target: SagaDefinition<D> | undefined): void {
    const s = this.s;
    switch (order.accion) {
      case 'cancelar':
        this.cancelOrder(order);
        break;
      case 'reintentar':
        this.retryOrder(order);
        break;
      case 'omitir':
        this.skipOrder(order);
        break;
      case 'pausar':
        if (s.phase === 'finished') this.refuse(order, `La SAGA ya terminó (${s.estado}); no hay nada que pausar`);
        else if (s.paused !== null) this.refuse(order, 'La SAGA ya está pausada');
        else {
          s.paused = { since: this.env.now.toISOString(), deadlineStopped: order.detenerPlazo === true };
          if (!s.inFlight) s.expectBy = null;
          this.accept(order, s.paused.deadlineStopped ? 'pausada; timeout_minutos detenido' : 'pausada; timeout_minutos sigue contando');
        }
        break;
      case 'reanudar':
        this.resumeOrder(order);
        break;
      case 'migrar':
        this.migrateOrder(order, target);
        break;
    }
    // A saga that was only woken up for this order goes back to sleep.
    if ((s.phase === 'finished' || s.parked !== null) && !this.effects.some((e) => e.type === 'stop')) {
      this.effects.push({ type: 'stop' });
    }
  }

  private cancelOrder(order: OperatorOrder): void {
    const s = this.s;
    if (s.phase === 'compensating') return this.refuse(order, 'La SAGA ya está compensando');
    if (s.phase === 'finished' && !this.fault('cancel-after-end')) {
      return this.refuse(order, `La SAGA ya terminó (${s.estado}); no se puede cancelar`);
    }
    if (s.cancel !== null) {
      return this.refuse(order, `La cancelación ya fue pedida por ${s.cancel.quien}; se compensará cuando termine la llamada en curso`);
    }
    const cancel = { motivo: order.motivo, quien: order.quien };
    // Cancelling undoes: it lifts a pause or a park so the compensations can run.
    s.paused = null;
    s.parked = null;
    if (s.inFlight) {
      // The call in flight may take effect: wait for its outcome, then undo it too.
      s.cancel = cancel;
      this.accept(order, 'se compensará cuando termine la llamada en curso');
      return;
    }
    this.accept(order, 'cancelada; compensando');
    this.failForCancel(cancel);
  }

  private retryOrder(order: OperatorOrder): void {
    const s = this.s;
    if (s.parked !== null) {
      s.parked = null;
      s.attempt = 0;
      s.callSince = null;
      this.accept(order, 'reanudada desde donde se detuvo');
      if (s.phase === 'finished') return;
      // Fresh attempts: ask again at once, with the same Idempotency-Key.
      if (s.inFlight || s.retryAt !== null) {
        if (s.inFlight) this.markUncertain();
        s.inFlight = false;
        this.startCall();
      } else this.proceed();
      return;
    }
    if (s.estado !== Lifecycle.COMPENSACION_FALLIDA) {
      return this.refuse(order, `Solo se reintenta una SAGA en COMPENSACION_FALLIDA o aparcada; está en ${s.estado}`);
    }
    const outstanding = this.open();
    for (const c of outstanding) c.estado = 'pendiente';
    s.phase = 'compensating';
    s.estado = Lifecycle.COMPENSANDO;
    s.finishedAt = null;
    this.accept(order, `reintentando ${outstanding.map((c) => c.tipo).join(', ')}`);
    this.emit(EVENT.compensacionIniciada, { compensaciones: outstanding.map((c) => c.tipo) });
    this.nextCompensation();
  }

  private skipOrder(order: OperatorOrder): void {
    const s = this.s;
    if (order.motivo.trim() === '') return this.refuse(order, 'omitir exige un motivo');
    if (s.phase === 'forward') return this.refuse(order, 'La SAGA no está compensando: no hay compensación que omitir');
    const open = this.open();
    let entry: CompensationEntry | undefined;
    if (order.compensacion !== undefined && order.compensacion !== null) {
      entry = s.compensations.find((c) => c.tipo === order.compensacion);
      if (entry === undefined) return this.refuse(order, `La SAGA no tiene la compensación ${order.compensacion}`);
    } else {
      const failed = open.filter((c) => c.estado === 'fallida');
      const current = s.compensations.find((c) => s.phase === 'compensating' && c.step === s.step);
      const candidates = failed.length > 0 ? failed : current !== undefined ? [current] : [];
      if (candidates.length !== 1) {
        const names = open.map((c) => c.tipo).join(', ') || 'ninguna';
        return this.refuse(order, `Indique qué compensación omitir (compensacion); pendientes: ${names}`);
      }
      entry = candidates[0]!;
    }
    const compensation = entry.tipo;
    if (entry.estado === 'hecha' || entry.estado === 'omitida') return this.refuse(order, `La compensación ${compensation} ya está ${entry.estado}`);
    if (s.phase === 'compensating' && s.step === entry.step && s.inFlight) {
      return this.refuse(order, `La compensación ${compensation} está en curso; espere su resultado`);
    }
    entry.estado = 'omitida';
    this.compensaciones.push(
      this.outcome(compensation, false, null, { manual: true, omitida_por: order.quien, motivo: order.motivo }, { manual: true, position: entry.step }),
    );
    this.accept(order, `${compensation} omitida: hecha a mano`);
    if (s.phase === 'compensating' && s.step === entry.step) this.nextCompensation();
    else if (s.phase === 'finished') this.settle();
  }

  private resumeOrder(order: OperatorOrder): void {
    const s = this.s;
    const paused = s.paused;
    if (paused === null) return this.refuse(order, 'La SAGA no está pausada');
    s.paused = null;
    this.accept(order, 'reanudada');
    if (s.phase === 'finished') return;
    if (s.phase === 'forward') {
      if (paused.deadlineStopped) {
        const stoppedMs = this.nowMs() - Date.parse(paused.since);
        s.deadline = new Date(Date.parse(s.deadline) + stoppedMs).toISOString();
      }
      const left = Date.parse(s.deadline) - this.nowMs();
      if (left <= 0) return this.deadlineReached();
      this.effects.push({ type: 'armDeadline', delayMs: left });
    }
    if (s.inFlight) return; // its outcome is on its way (or is asked for again at the next resume)
    if (s.retryAt !== null) {
      const delayMs = Date.parse(s.retryAt) - this.nowMs();
      if (delayMs <= 0) this.startCall();
      else {
        s.expectBy = s.retryAt;
        this.effects.push({ type: 'scheduleRetry', call: this.currentRef(), delayMs });
      }
      return;
    }
    this.proceed();
  }

  private migrateOrder(order: OperatorOrder, target: SagaDefinition<D> | undefined): void {
    const s = this.s;
    const v = order.version;
    if (s.phase === 'finished') return this.refuse(order, `La SAGA ya terminó (${s.estado})`);
    if (target === undefined || v === undefined || target.version !== v || target.tipo !== s.tipo) {
      return this.refuse(order, `Este orquestador no tiene la versión ${String(v)} de ${s.tipo}`);
    }
    if (v === s.version) return this.refuse(order, `La SAGA ya está en la versión ${v}`);
    if (s.inFlight) return this.refuse(order, 'Hay una llamada en curso: solo se migra entre dos pasos');
    const inTarget = new Map(target.steps.map((st, i) => [st.tipo, { st, i }]));
    const mustMap = new Set([...s.mayHaveEffect, ...Object.keys(s.results), ...s.compensations.map((c) => c.step)]);
    for (const tipo of mustMap) {
      const there = inTarget.get(tipo);
      if (there === undefined) return this.refuse(order, `La versión ${v} no tiene el paso ${tipo}`);
      if (there.st.compensation.tipo !== this.stepOf(tipo).compensation.tipo) {
        return this.refuse(order, `En la versión ${v}, ${tipo} se compensa de otra forma (${there.st.compensation.tipo})`);
      }
    }
    if (s.phase === 'forward') {
      const current = inTarget.get(s.step!);
      if (current === undefined) return this.refuse(order, `La versión ${v} no tiene el paso en curso ${s.step!}`);
      const before = target.steps.slice(0, current.i).map((st) => st.tipo);
      const done = Object.keys(s.results);
      if (before.length !== done.length || before.some((t) => !done.includes(t))) {
        return this.refuse(order, `En la versión ${v} los pasos anteriores a ${s.step!} no son los ya hechos`);
      }
    }
    const from = s.version;
    s.version = v;
    this.def = target;
    this.accept(order, `migrada de la versión ${from} a la ${v}`);
  }

  private stepCompleted(outcome: CallOutcome): void {
    const s = this.s;
    const step = this.currentStep();
    const cancel = s.cancel;
    if (outcome.kind === 'ok') {
      this.pasos.push(this.outcome(step.tipo, true, null, outcome.resultado));
      s.results[step.tipo] = outcome.resultado;
      s.estado = step.reaches;
      this.emit(EVENT.pasoEjecutado, { paso: step.tipo, resultado: outcome.resultado });
      this.emit(step.event, { paso: step.tipo });
      const next = this.stepAfter(step.tipo);
      if (cancel !== null) this.failForCancel(cancel);
      else if (next === undefined) this.finish(Lifecycle.COMPLETADA, EVENT.completada);
      else {
        this.moveTo(next.tipo);
        this.proceed();
      }
      return;
    }
    if (outcome.kind === 'rejected') {
      const error = `HTTP ${outcome.status}: ${outcome.error}`;
      this.pasos.push(this.outcome(step.tipo, false, error, null));
      // A refusal had no effect: there is nothing of this step to compensate,
      // unless an earlier attempt's outcome is unknown: that one may have.
      if (!(s.uncertain ?? []).includes(step.tipo) || this.fault('unknown-outcome-dropped')) {
        s.mayHaveEffect = s.mayHaveEffect.filter((t) => t !== step.tipo);
      }
      if (cancel !== null) this.failForCancel(cancel);
      else this.fail(`Paso ${step.tipo} falló: ${error}`);
      return;
    }
    this.markUncertain();
    if (cancel === null && this.retryLater(step.policy)) return;
    const error = cancel !== null ? `${outcome.error}; cancelada por operador` : `${outcome.error} (tras ${s.attempt} intentos)`;
    this.pasos.push(this.outcome(step.tipo, false, error, null));
    if (cancel !== null) this.failForCancel(cancel);
    else this.fail(`Paso ${step.tipo} falló: ${error}`);
  }

  private compensationCompleted(outcome: CallOutcome): void {
    const s = this.s;
    const tipo = s.step!;
    const compensation = this.stepOf(tipo).compensation;
    const nothingToUndo = outcome.kind === 'rejected' && outcome.status === 404;
    if (outcome.kind === 'ok' || nothingToUndo) {
      const resultado = outcome.kind === 'ok' ? outcome.resultado : { nada_que_deshacer: true };
      this.compensaciones.push(this.outcome(compensation.tipo, true, null, resultado, { position: tipo }));
      this.entryOf(tipo).estado = 'hecha';
      this.nextCompensation();
      return;
    }
    if (outcome.kind === 'transient' && this.retryLater(compensation.policy)) return;
    const error =
      outcome.kind === 'rejected' ? `HTTP ${outcome.status}: ${outcome.error}` : `${outcome.error} (tras ${s.attempt} intentos)`;
    this.compensaciones.push(this.outcome(compensation.tipo, false, error, null, { position: tipo }));
    this.entryOf(tipo).estado = 'fallida';
    s.errorMessage = `${s.errorMessage ?? 'SAGA fallida'}; compensación ${compensation.tipo} falló: ${error}`;
    // One undo that cannot be done must not abandon the others: go on with the rest.
    this.nextCompensation();
  }

  /** Schedules another attempt if the policy's attempts and time budget allow one. */
  private retryLater(policy: CallPolicy): boolean {
    const s = this.s;
    if (s.attempt >= policy.retry.maxAttempts) return false;
    const delayMs = backoffDelay(policy.retry.backoff, s.attempt, this.env.random());
    const since = Date.parse(s.callSince ?? this.env.now.toISOString());
    if (this.nowMs() + delayMs - since > policy.retry.budgetMs) return false;
    s.inFlight = false;
    s.retryAt = this.later(delayMs);
    s.expectBy = s.retryAt;
    this.changed = true;
    this.effects.push({ type: 'scheduleRetry', call: this.currentRef(), delayMs });
    return true;
  }

  /** The current forward attempt's outcome is unknown: its step may have taken effect whatever comes later. */
  private markUncertain(): void {
    const s = this.s;
    if (s.phase !== 'forward' || s.step === null) return;
    const uncertain = s.uncertain ?? [];
    if (!uncertain.includes(s.step)) s.uncertain = [...uncertain, s.step];
    this.changed = true;
  }

  private failForCancel(cancel: { motivo: string; quien: string }): void {
    this.fail(`SAGA cancelada por ${cancel.quien}: ${cancel.motivo}`);
  }

  /** The saga failed: compensate, in reverse order, every step that may have had an effect. */
  private fail(reason: string): void {
    const s = this.s;
    s.errorMessage = reason;
    s.estado = Lifecycle.FALLIDA;
    s.cancel = null;
    this.emit(EVENT.fallida, { error: reason });
    const position = new Map(this.def.steps.map((st, i) => [st.tipo, i]));
    const undo = this.fault('forget-unknown-outcomes') ? s.mayHaveEffect.filter((t) => t in s.results) : s.mayHaveEffect;
    const direction = this.fault('compensate-forward') ? -1 : 1;
    s.compensations = [...undo]
      .sort((a, b) => direction * ((position.get(b) ?? 0) - (position.get(a) ?? 0)))
      .map((step): CompensationEntry => ({ step, tipo: this.stepOf(step).compensation.tipo, estado: 'pendiente' }));
    s.phase = 'compensating';
    s.estado = Lifecycle.COMPENSANDO;
    this.emit(EVENT.compensacionIniciada, {
      compensaciones: s.compensations.map((c) => c.tipo),
    });
    this.nextCompensation();
  }

  /** The next compensation not yet attempted in this round, or the end of the compensation. */
  private nextCompensation(): void {
    const s = this.s;
    const next = s.compensations.find((c) => c.estado === 'pendiente');
    if (next === undefined) {
      this.settle();
      return;
    }
    this.moveTo(next.step);
    this.proceed();
  }

  /** Every compensation was attempted (or omitted): the saga ends, and says what is still outstanding. */
  private settle(): void {
    const failed = this.open();
    if (failed.length === 0) {
      this.finish(Lifecycle.COMPENSADA, EVENT.compensacionCompletada, {});
      return;
    }
    this.finish(Lifecycle.COMPENSACION_FALLIDA, EVENT.compensacionFallida, { pendientes: failed.map((c) => c.tipo) });
  }

  /** Compensations not done: failed, or not attempted in this round. */
  private open(): CompensationEntry[] {
    return this.s.compensations.filter((c) => c.estado === 'fallida' || c.estado === 'pendiente');
  }

  private entryOf(step: string): CompensationEntry {
    const entry = this.s.compensations.find((c) => c.step === step);
    if (entry === undefined) throw new Error(`saga ${this.s.sagaId}: ${step} is not in the compensation plan`);
    return entry;
  }

  private moveTo(tipo: string): void {
    const s = this.s;
    s.step = tipo;
    s.attempt = 0;
    s.inFlight = false;
    s.retryAt = null;
    s.callSince = null;
  }

  private finish(estado: string, event: string, extra: { [key: string]: Json } = {}): void {
    const s = this.s;
    if (s.phase === 'finished' && s.estado === estado) return;
    s.estado = estado;
    s.phase = 'finished';
    s.step = null;
    s.inFlight = false;
    s.retryAt = null;
    s.callSince = null;
    s.expectBy = null;
    s.finishedAt = this.env.now.toISOString();
    this.emit(event, s.errorMessage === null ? extra : { error: s.errorMessage, ...extra });
    this.effects.push({ type: 'stop' });
  }

  private accept(order: OperatorOrder, detalle: string): void {
    this.record(order, 'aceptada', detalle);
  }

  private refuse(order: OperatorOrder, detalle: string): void {
    this.record(order, 'rechazada', detalle);
  }

  private record(order: OperatorOrder, resultado: 'aceptada' | 'rechazada', detalle: string): void {
    const fecha = this.env.now.toISOString();
    this.operaciones.push({ ...order, decididaEn: fecha, resultado, detalle });
    this.emit(`${EVENT.operacion}${capitalised(order.accion)}`, {
      operacion_id: order.id,
      accion: order.accion,
      quien: order.quien,
      motivo: order.motivo,
      resultado,
      detalle,
    });
    this.reply = { orderId: order.id, resultado, detalle };
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

  /**
   * A row for saga_pasos (`position` absent: the step's place in the
   * definition) or saga_compensaciones (`position`: the step whose undo it is,
   * placed by the compensation plan).
   */
  private outcome(
    tipo: string,
    exitoso: boolean,
    error: string | null,
    resultado: Json,
    opts: { manual?: boolean; position?: string } = {},
  ): OutcomeRecord {
    this.changed = true;
    const orden =
      opts.position === undefined
        ? this.def.steps.findIndex((st) => st.tipo === tipo) + 1
        : this.s.compensations.findIndex((c) => c.step === opts.position) + 1;
    return {
      id: this.env.newId(),
      orden,
      tipo,
      exitoso,
      error,
      resultado,
      intentos: opts.manual === true ? 0 : this.s.attempt,
      manual: opts.manual === true,
      fechaEjecucion: this.env.now.toISOString(),
    };
  }

  private fault(name: Fault): boolean {
    return this.env.faults?.has(name) === true;
  }

  private nowMs(): number {
    return this.env.now.getTime();
  }

  private later(ms: number): string {
    return new Date(this.nowMs() + ms).toISOString();
  }

  private currentRef(): CallRef {
    const { phase, step, attempt } = this.s;
    if (phase === 'finished' || step === null) throw new Error('a finished saga makes no calls');
    return { phase, step, attempt };
  }

  /** The step being run forward, or the step whose compensation is being run. */
  private currentStep(): StepDefinition<D> {
    if (this.s.step === null) throw new Error(`saga ${this.s.sagaId} has no current step`);
    return this.stepOf(this.s.step);
  }

  private currentPolicy(): CallPolicy {
    const step = this.currentStep();
    return this.s.phase === 'forward' ? step.policy : step.compensation.policy;
  }

  private stepOf(tipo: string): StepDefinition<D> {
    const step = this.def.steps.find((st) => st.tipo === tipo);
    if (step === undefined) throw new Error(`saga ${this.def.tipo} v${this.def.version} has no step ${tipo}`);
    return step;
  }

  private stepAfter(tipo: string): StepDefinition<D> | undefined {
    const i = this.def.steps.findIndex((st) => st.tipo === tipo);
    return this.def.steps[i + 1];
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
