// The orchestrator's metrics, in Prometheus format on GET /metrics: sagas
// started and finished, step and compensation outcomes and latency, operator
// actions, parked sagas, and sagas by state (from the trigger-kept counters,
// never a count over the whole log).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from './persistence/database.js';
import { STUCK_REASON_SQL, STUCK_SQL } from './persistence/saga-queries.js';

export interface SagaMetrics {
  registry: Registry;
  /** A step or compensation outcome was committed. */
  outcome(kind: 'paso' | 'compensacion', tipo: string, paso: string, exitoso: boolean): void;
  /** A participant call answered (or failed) after `seconds`. */
  call(kind: 'paso' | 'compensacion', paso: string, resultado: string, seconds: number): void;
  /** A saga reached a terminal state after `seconds`. */
  finished(tipo: string, estado: string, seconds: number): void;
  /** An operator order was decided. */
  operation(accion: string, resultado: string): void;
  /** A saga was parked. */
  parked(tipo: string): void;
}

export function createMetrics(db: Database): SagaMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const outcomes = new Counter({
    name: 'saga_step_outcomes_total',
    help: 'Step and compensation outcomes committed by this process',
    labelNames: ['clase', 'tipo', 'paso', 'resultado'] as const,
    registers: [registry],
  });
  const calls = new Histogram({
    name: 'saga_call_duration_seconds',
    help: 'Participant calls by step or compensation, and how they ended (ok, rejected, transient)',
    labelNames: ['clase', 'paso', 'resultado'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'saga_duration_seconds',
    help: 'Time from a saga being accepted to its terminal state, by that state',
    labelNames: ['tipo', 'estado'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  const finished = new Counter({
    name: 'saga_finished_total',
    help: 'Sagas that reached a terminal state in this process',
    labelNames: ['tipo', 'estado'] as const,
    registers: [registry],
  });
  const operations = new Counter({
    name: 'saga_operations_total',
    help: 'Operator orders decided by this process',
    labelNames: ['accion', 'resultado'] as const,
    registers: [registry],
  });
  const parked = new Counter({
    name: 'saga_parked_total',
    help: 'Sagas parked by this process (handler failure or a write PostgreSQL refuses)',
    labelNames: ['tipo'] as const,
    registers: [registry],
  });
  const sql = <R>(text: string) => db.em.getConnection().execute<R[]>(text);
  new Gauge({
    name: 'saga_estado',
    help: 'Sagas in the saga log by tipo and state (from the trigger-kept counters, never a count over the log)',
    labelNames: ['tipo', 'estado'] as const,
    registers: [registry],
    async collect() {
      const rows = await sql<{ tipo: string; estado: string; n: string }>(
        'select tipo, estado, n from saga_totals',
      );
      this.reset();
      for (const r of rows) this.set({ tipo: r.tipo, estado: r.estado }, Number(r.n));
    },
  });
  new Gauge({
    name: 'saga_stuck',
    help: 'Running sagas past the time they should next have changed (parked and waiting-for-version ones included)',
    labelNames: ['tipo', 'motivo'] as const,
    registers: [registry],
    async collect() {
      const rows = await sql<{ tipo: string; motivo: string; n: string }>(STUCK_COUNT_SQL);
      this.reset();
      for (const r of rows) this.set({ tipo: r.tipo, motivo: r.motivo }, Number(r.n));
    },
  });
  return {
    registry,
    outcome: (clase, tipo, paso, exitoso) => outcomes.inc({ clase, tipo, paso, resultado: exitoso ? 'exitoso' : 'fallido' }),
    call: (clase, paso, resultado, seconds) => calls.observe({ clase, paso, resultado }, seconds),
    finished: (tipo, estado, seconds) => {
      finished.inc({ tipo, estado });
      duration.observe({ tipo, estado }, seconds);
    },
    operation: (accion, resultado) => operations.inc({ accion, resultado }),
    parked: (tipo) => parked.inc({ tipo }),
  };
}

/** Stuck sagas by reason; only running sagas are read (partial indexes). */
const STUCK_COUNT_SQL = `
  select l.tipo, ${STUCK_REASON_SQL} as motivo, count(*) as n
    from saga_log l where ${STUCK_SQL} group by 1, 2`;
