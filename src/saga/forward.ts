// The machine's forward path: resuming a saga, calling its steps, taking their
// answers, retrying within a step's budget, and the saga's deadline.
import { backoffDelay } from './backoff.js';
import type { CallOutcome, CallPolicy } from './definition.js';
import { EVENT } from './decision.js';
import { DraftCore } from './draft.js';
import { Lifecycle } from './states.js';

export abstract class ForwardDraft<D> extends DraftCore<D> {
  resume(fresh: boolean, callingHere = false): void {
    const s = this.s;
    if (s.phase === 'finished' || s.parked !== null) {
      this.effects.push({ type: 'stop' });
      return;
    }
    if (s.phase === 'forward' && !s.paused?.deadlineStopped && this.rules.deadlineOnResume) {
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
  protected proceed(): void {
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

  protected stepCompleted(outcome: CallOutcome): void {
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
      if (!(s.uncertain ?? []).includes(step.tipo) || !this.rules.keepUndoAfterUncertainRefusal) {
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

  /** Schedules another attempt if the policy's attempts and time budget allow one. */
  protected retryLater(policy: CallPolicy): boolean {
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
  protected markUncertain(): void {
    const s = this.s;
    if (s.phase !== 'forward' || s.step === null) return;
    const uncertain = s.uncertain ?? [];
    if (uncertain.includes(s.step)) return;
    s.uncertain = [...uncertain, s.step];
    this.changed = true;
  }

  protected abstract compensationCompleted(outcome: CallOutcome): void;
}
