// Operator orders as the machine decides them: cancelar, reintentar, omitir,
// pausar, reanudar and migrar. Each is accepted or refused with a reason, and
// the decision is committed with its audit row and event.
import type { SagaDefinition } from './definition.js';
import type { OperatorOrder } from './operations.js';
import { CompensatingDraft } from './compensation.js';
import { EVENT } from './decision.js';
import type { CompensationEntry } from './snapshot.js';
import { Lifecycle } from './states.js';

/** The mutable working copy of one decision, with every concern; private to the machine. */
export class Draft<D> extends CompensatingDraft<D> {
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

  protected cancelOrder(order: OperatorOrder): void {
    const s = this.s;
    if (s.phase === 'compensating') return this.refuse(order, 'La SAGA ya está compensando');
    if (s.phase === 'finished' && this.rules.refuseCancelAfterEnd) {
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

  protected retryOrder(order: OperatorOrder): void {
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

  protected skipOrder(order: OperatorOrder): void {
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

  protected resumeOrder(order: OperatorOrder): void {
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

  protected migrateOrder(order: OperatorOrder, target: SagaDefinition<D> | undefined): void {
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
}
