// Metrics in Prometheus style: counters end in `_total`, durations in
// `_seconds`, and labels are `tipo` (saga type), `estado` (state), `paso`
// (step or compensation) and `clase` (paso or compensacion). Both apps serve GET /metrics. What this process did
// is counted here as it happens; what the saga log holds (sagas per state,
// shard leases) is read at each scrape from small tables kept up to date by
// the writers (saga_counts, saga_shards), never by counting the log.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from './persistence/database.js';

export interface SagaMetrics {
  registry: Registry;
  /** A saga was accepted and recorded by this process. */
  started(tipo: string): void;
  /** A step (`paso`) or compensation outcome was committed. */
  outcome(kind: 'paso' | 'compensacion', tipo: string, paso: string, exitoso: boolean): void;
  /** A saga reached a terminal state after `seconds`. */
  finished(tipo: string, estado: string, seconds: number): void;
}

/** `resultado` label values of an outcome. */
const resultado = (exitoso: boolean) => (exitoso ? 'exitoso' : 'fallido');

/** The orchestrator's registry: what its actors do, plus the saga log's gauges. */
export function createMetrics(db: Database): SagaMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerSagaLogGauges(registry, db);
  const started = new Counter({
    name: 'saga_started_total',
    help: 'Sagas accepted and recorded by this process',
    labelNames: ['tipo'] as const,
    registers: [registry],
  });
  const outcomes = new Counter({
    name: 'saga_step_outcomes_total',
    help: 'Step (clase=paso) and compensation (clase=compensacion) outcomes committed by this process, by saga tipo, paso and resultado (exitoso|fallido)',
    labelNames: ['clase', 'tipo', 'paso', 'resultado'] as const,
    registers: [registry],
  });
  const finished = new Counter({
    name: 'saga_finished_total',
    help: 'Sagas that reached a terminal state in this process, by tipo and final estado',
    labelNames: ['tipo', 'estado'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'saga_duration_seconds',
    help: 'Time from a saga being accepted to its terminal state, by tipo and final estado',
    labelNames: ['tipo', 'estado'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  return {
    registry,
    started: (tipo) => started.inc({ tipo }),
    outcome: (clase, tipo, paso, exitoso) => outcomes.inc({ clase, tipo, paso, resultado: resultado(exitoso) }),
    finished: (tipo, estado, seconds) => {
      finished.inc({ tipo, estado });
      duration.observe({ tipo, estado }, seconds);
    },
  };
}

/**
 * Gauges read from the saga log's small summary tables at each scrape: sagas
 * per (tipo, estado) from saga_counts (kept exact by triggers), and the shard
 * leases from saga_shards (one row per shard). Both apps register them; the
 * values are cluster-wide, so a dashboard takes max() over instances.
 */
export function registerSagaLogGauges(registry: Registry, db: Database): void {
  const sql = db.em.getConnection();
  new Gauge({
    name: 'saga_estado',
    help: 'Sagas in the saga log by tipo and estado (from saga_counts, not a count of the log)',
    labelNames: ['tipo', 'estado'] as const,
    registers: [registry],
    async collect() {
      const rows = await sql.execute<{ tipo: string; estado: string; n: string }[]>('select tipo, estado, n from saga_counts');
      this.reset();
      for (const r of rows) this.set({ tipo: r.tipo, estado: r.estado }, Number(r.n));
    },
  });
  new Counter({
    name: 'saga_lease_changes_total',
    help: 'Shard leases taken over the life of the cluster (the sum of the shard epochs): each is a change of owner',
    registers: [registry],
    async collect() {
      const [row] = await sql.execute<{ n: string | null }[]>('select sum(epoch) as n from saga_shards');
      this.reset();
      this.inc(Number(row?.n ?? 0));
    },
  });
  new Gauge({
    name: 'saga_shards_held',
    help: 'Shards whose lease is live, by owner (an orchestrator process)',
    labelNames: ['owner'] as const,
    registers: [registry],
    async collect() {
      const rows = await sql.execute<{ owner: string; n: string }[]>(
        'select owner, count(*) as n from saga_shards where owner is not null and lease_until > now() group by owner',
      );
      this.reset();
      for (const r of rows) this.set({ owner: r.owner }, Number(r.n));
    },
  });
}

export interface HttpMetrics {
  /** One answered request: `route` is the router's pattern, so labels stay few. */
  observe(app: string, method: string, route: string, status: number, seconds: number): void;
}

const httpMetricsByRegistry = new WeakMap<Registry, HttpMetrics>();

/** The HTTP metrics of `registry`, registered on first use (two apps may share a registry). */
export function registerHttpMetrics(registry: Registry): HttpMetrics {
  const existing = httpMetricsByRegistry.get(registry);
  if (existing !== undefined) return existing;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by app, method, route pattern and status',
    labelNames: ['app', 'method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request (to its headers, for streams), by app, method and route pattern',
    labelNames: ['app', 'method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const metrics: HttpMetrics = {
    observe(app, method, route, status, seconds) {
      requests.inc({ app, method, route, status: String(status) });
      latency.observe({ app, method, route }, seconds);
    },
  };
  httpMetricsByRegistry.set(registry, metrics);
  return metrics;
}

/** The BFF's registry: its HTTP traffic and the saga log's gauges. */
export function createBffMetrics(db: Database): { registry: Registry; http: HttpMetrics } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerSagaLogGauges(registry, db);
  return { registry, http: registerHttpMetrics(registry) };
}
