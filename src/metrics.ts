// The seed's metrics, in Prometheus format on GET /metrics of the orchestrator:
// sagas by state, how long they take, how steps and compensations end.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from './persistence/database.js';

export interface SagaMetrics {
  registry: Registry;
  /** A step or compensation outcome was committed. */
  outcome(kind: 'paso' | 'compensacion', tipo: string, exitoso: boolean): void;
  /** A saga reached a terminal state after `seconds`. */
  finished(estado: string, seconds: number): void;
}

export function createMetrics(db: Database): SagaMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const outcomes = new Counter({
    name: 'saga_resultados_total',
    help: 'Step and compensation outcomes committed by this process',
    labelNames: ['clase', 'tipo', 'exitoso'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'saga_duracion_segundos',
    help: 'Time from a saga being accepted to its terminal state, by that state',
    labelNames: ['estado'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  new Gauge({
    name: 'saga_estado',
    help: 'Sagas in the saga log by state (read from the database at each scrape)',
    labelNames: ['estado'] as const,
    registers: [registry],
    async collect() {
      const rows = await db.em
        .getConnection()
        .execute<{ estado: string; n: string }[]>('select estado, count(*) as n from saga_log group by estado');
      this.reset();
      for (const r of rows) this.set({ estado: r.estado }, Number(r.n));
    },
  });
  return {
    registry,
    outcome: (clase, tipo, exitoso) => outcomes.inc({ clase, tipo, exitoso: String(exitoso) }),
    finished: (estado, seconds) => duration.observe({ estado }, seconds),
  };
}
