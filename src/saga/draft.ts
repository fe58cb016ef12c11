// The working copy of one decision: the snapshot being changed, and the rows,
// events, audit rows and effects the decision adds. The machine's behaviour is
// split by concern over the classes that extend it: forward steps (forward.ts),
// compensations (compensation.ts) and operator orders (operator-orders.ts).
// Nothing here performs I/O or reads a clock.
import type { CallPolicy, Json, SagaDefinition, StepDefinition } from './definition.js';
import { derivedUuid, idempotencyKey } from './ids.js';
import type { OperatorOrder, OperationRecord } from './operations.js';
import { PRODUCTION_RULES, type MachineRules } from './rules.js';
import type { CompensationEntry, SagaSnapshot } from './snapshot.js';
import { EVENT, type CallRef, type Decision, type DecisionEnv, type Effect, type EventRecord, type OrderReply, type OutcomeRecord } from './decision.js';

const capitalised = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export abstract class DraftCore<D> {
  readonly s: SagaSnapshot;
  protected changed = false;
  protected readonly pasos: OutcomeRecord[] = [];
  protected readonly compensaciones: OutcomeRecord[] = [];
  protected readonly events: EventRecord[] = [];
  protected readonly operaciones: OperationRecord[] = [];
  protected readonly effects: Effect[] = [];
  protected reply: OrderReply | null = null;
  protected readonly rules: MachineRules;

  constructor(
    protected def: SagaDefinition<D>,
    protected readonly datos: D,
    snapshot: SagaSnapshot,
    protected readonly env: DecisionEnv,
  ) {
    this.s = structuredClone(snapshot);
    this.rules = env.rules ?? PRODUCTION_RULES;
  }

  // Defined by the concerns that extend this class, and called across them.
  /** Starts the current call, unless an operator holds the saga. */
  protected abstract proceed(): void;
  /** The saga failed: compensate what may have had an effect. */
  protected abstract fail(reason: string): void;
  /** The next compensation, or the end of the compensation. */
  protected abstract nextCompensation(): void;
  /** Every compensation was attempted: the saga ends. */
  protected abstract settle(): void;
  protected abstract failForCancel(cancel: { motivo: string; quien: string }): void;
  protected abstract deadlineReached(): void;
  abstract startCall(): void;

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

  protected moveTo(tipo: string): void {
    const s = this.s;
    s.step = tipo;
    s.attempt = 0;
    s.inFlight = false;
    s.retryAt = null;
    s.callSince = null;
  }

  protected finish(estado: string, event: string, extra: { [key: string]: Json } = {}): void {
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

  /** Compensations not done: failed, or not attempted in this round. */
  protected open(): CompensationEntry[] {
    return this.s.compensations.filter((c) => c.estado === 'fallida' || c.estado === 'pendiente');
  }

  protected entryOf(step: string): CompensationEntry {
    const entry = this.s.compensations.find((c) => c.step === step);
    if (entry === undefined) throw new Error(`saga ${this.s.sagaId}: ${step} is not in the compensation plan`);
    return entry;
  }

  protected accept(order: OperatorOrder, detalle: string): void {
    this.record(order, 'aceptada', detalle);
  }

  protected refuse(order: OperatorOrder, detalle: string): void {
    this.record(order, 'rechazada', detalle);
  }

  protected record(order: OperatorOrder, resultado: 'aceptada' | 'rechazada', detalle: string): void {
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

  protected emit(tipo: string, extra: { [key: string]: Json }): void {
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
  protected outcome(
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

  protected nowMs(): number {
    return this.env.now.getTime();
  }

  protected later(ms: number): string {
    return new Date(this.nowMs() + ms).toISOString();
  }

  protected currentRef(): CallRef {
    const { phase, step, attempt } = this.s;
    if (phase === 'finished' || step === null) throw new Error('a finished saga makes no calls');
    return { phase, step, attempt };
  }

  /** The step being run forward, or the step whose compensation is being run. */
  protected currentStep(): StepDefinition<D> {
    if (this.s.step === null) throw new Error(`saga ${this.s.sagaId} has no current step`);
    return this.stepOf(this.s.step);
  }

  protected currentPolicy(): CallPolicy {
    const step = this.currentStep();
    return this.s.phase === 'forward' ? step.policy : step.compensation.policy;
  }

  protected stepOf(tipo: string): StepDefinition<D> {
    const step = this.def.steps.find((st) => st.tipo === tipo);
    if (step === undefined) throw new Error(`saga ${this.def.tipo} v${this.def.version} has no step ${tipo}`);
    return step;
  }

  protected stepAfter(tipo: string): StepDefinition<D> | undefined {
    const i = this.def.steps.findIndex((st) => st.tipo === tipo);
    return this.def.steps[i + 1];
  }

  protected callEffect(call: CallRef): Effect {
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
