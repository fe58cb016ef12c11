// What a committed transition leaves besides the saga log: the metrics it
// counts and the seed's log lines, written once the transition is committed.
import type { Logger } from '../log.js';
import type { SagaMetrics } from '../metrics.js';
import { EVENT, type Decision } from '../saga/machine.js';

export function countTransition(metrics: SagaMetrics, d: Decision): void {
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
export function logTransition(log: Logger, sagaId: string, d: Decision): void {
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
