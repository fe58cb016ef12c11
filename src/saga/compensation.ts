// The machine's way back: the compensation plan (every step that may have had
// an effect, in reverse order), its calls and their answers, and the end of a
// saga that compensated.
import type { CallOutcome } from './definition.js';
import { EVENT } from './decision.js';
import { ForwardDraft } from './forward.js';
import type { CompensationEntry } from './snapshot.js';
import { Lifecycle } from './states.js';

export abstract class CompensatingDraft<D> extends ForwardDraft<D> {
  protected compensationCompleted(outcome: CallOutcome): void {
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

  protected failForCancel(cancel: { motivo: string; quien: string }): void {
    this.fail(`SAGA cancelada por ${cancel.quien}: ${cancel.motivo}`);
  }

  /** The saga failed: compensate, in reverse order, every step that may have had an effect. */
  protected fail(reason: string): void {
    const s = this.s;
    s.errorMessage = reason;
    s.estado = Lifecycle.FALLIDA;
    s.cancel = null;
    this.emit(EVENT.fallida, { error: reason });
    const position = new Map(this.def.steps.map((st, i) => [st.tipo, i]));
    const undo = this.rules.undoUnknownOutcomes ? s.mayHaveEffect : s.mayHaveEffect.filter((t) => t in s.results);
    const direction = this.rules.undoInReverse ? 1 : -1;
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
  protected nextCompensation(): void {
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
  protected settle(): void {
    const failed = this.open();
    if (failed.length === 0) {
      this.finish(Lifecycle.COMPENSADA, EVENT.compensacionCompletada, {});
      return;
    }
    this.finish(Lifecycle.COMPENSACION_FALLIDA, EVENT.compensacionFallida, { pendientes: failed.map((c) => c.tipo) });
  }
}
