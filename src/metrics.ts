// Metrics in Prometheus style, on GET /metrics of both apps: counters end in
// `_total`, durations in `_seconds`, and labels are `tipo` (saga type),
// `estado` (state), `paso` (step or compensation) and `clase` (paso or
// compensacion). What this process did is counted as it happens (sagas started
// and finished, step and compensation outcomes and call latency, operator
// actions, parked sagas, HTTP requests); what the saga log holds (sagas by
// state, stuck sagas, shard leases) is read at each scrape from the
// trigger-kept counters and small tables, never by counting the whole log.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from './persistence/database.js';
import { STUCK_REASON_SQL, STUCK_SQL } from './persistence/saga-queries.js';

/** What both apps count: sagas they accepted and recorded. */
export interface IntakeMetrics {
  /** A saga was accepted and recorded by this process. */
  started(tipo: string): void;
}

export interface SagaMetrics extends IntakeMetrics {
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

/** The orchestrator's registry: what its actors do, plus the saga log's gauges. */
export function createMetrics(db: Database): SagaMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerSagaLogGauges(registry, db);
  const intake = registerIntakeMetrics(registry);
  const outcomes = new Counter({
    name: 'saga_step_outcomes_total',
    help: 'Step (clase=paso) and compensation (clase=compensacion) outcomes committed by this process, by saga tipo, paso and resultado (exitoso|fallido)',
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
    help: 'Time from a saga being accepted to its terminal state, by tipo and final estado',
    labelNames: ['tipo', 'estado'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  const finished = new Counter({
    name: 'saga_finished_total',
    help: 'Sagas that reached a terminal state in this process, by tipo and final estado',
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
  return {
    registry,
    started: (tipo) => intake.started(tipo),
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

/**
 * `register` made safe to call more than once for a registry (two apps, or an
 * app and its orchestrator, may share one): the metrics are registered on
 * first use and the same handle is returned after.
 */
function oncePerRegistry<M>(register: (registry: Registry) => M): (registry: Registry) => M {
  const registered = new WeakMap<Registry, M>();
  return (registry) => {
    let metrics = registered.get(registry);
    if (metrics === undefined) {
      metrics = register(registry);
      registered.set(registry, metrics);
    }
    return metrics;
  };
}

/** `saga_started_total` on `registry`. */
export const registerIntakeMetrics = oncePerRegistry((registry): IntakeMetrics => {
  const started = new Counter({
    name: 'saga_started_total',
    help: 'Sagas accepted and recorded by this process',
    labelNames: ['tipo'] as const,
    registers: [registry],
  });
  return { started: (tipo) => started.inc({ tipo }) };
});

/**
 * Gauges read from the saga log at each scrape: sagas per (tipo, estado) from
 * the trigger-kept counters (the view saga_totals: folded counts plus pending
 * deltas), stuck sagas (only running ones are read, on partial indexes), and
 * the shard leases from saga_shards (one row per shard). Both apps register
 * them; the values are cluster-wide, so a dashboard takes max() over instances.
 */
export function registerSagaLogGauges(registry: Registry, db: Database): void {
  const sql = <R>(text: string) => db.em.getConnection().execute<R[]>(text);
  new Gauge({
    name: 'saga_estado',
    help: 'Sagas in the saga log by tipo and state (from the trigger-kept counters, never a count over the log)',
    labelNames: ['tipo', 'estado'] as const,
    registers: [registry],
    async collect() {
      const rows = await sql<{ tipo: string; estado: string; n: string }>('select tipo, estado, n from saga_totals');
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
  new Counter({
    name: 'saga_lease_changes_total',
    help: 'Shard leases taken over the life of the cluster (the sum of the shard epochs): each is a change of owner',
    registers: [registry],
    async collect() {
      const [row] = await sql<{ n: string | null }>('select sum(epoch) as n from saga_shards');
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
      const rows = await sql<{ owner: string; n: string }>(
        'select owner, count(*) as n from saga_shards where owner is not null and lease_until > now() group by owner',
      );
      this.reset();
      for (const r of rows) this.set({ owner: r.owner }, Number(r.n));
    },
  });
}

/** Stuck sagas by reason; only running sagas are read (partial indexes). */
const STUCK_COUNT_SQL = `
  select l.tipo, ${STUCK_REASON_SQL} as motivo, count(*) as n
    from saga_log l where ${STUCK_SQL} group by 1, 2`;

export interface HttpMetrics {
  /** One answered request: `route` is the router's pattern, so labels stay few. */
  observe(app: string, method: string, route: string, status: number, seconds: number): void;
}

/** The HTTP metrics of `registry`. */
export const registerHttpMetrics = oncePerRegistry((registry): HttpMetrics => {
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
  return {
    observe(app, method, route, status, seconds) {
      requests.inc({ app, method, route, status: String(status) });
      latency.observe({ app, method, route }, seconds);
    },
  };
});

/** Requests a rate limit refused (src/http/rate-limit.ts): `limite` is token or direccion. */
export const registerRateLimitMetrics = oncePerRegistry((registry): { refused(limite: 'token' | 'direccion'): void } => {
  const refused = new Counter({
    name: 'http_rate_limited_total',
    help: 'Requests refused with 429 by a rate limit, by limite (token: per token; direccion: per client address)',
    labelNames: ['limite'] as const,
    registers: [registry],
  });
  return { refused: (limite) => refused.inc({ limite }) };
});

/** The BFF's registry: the sagas it records and the saga log's gauges (its HTTP traffic is added by its app). */
export function createBffMetrics(db: Database): { registry: Registry } & IntakeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerSagaLogGauges(registry, db);
  return { registry, ...registerIntakeMetrics(registry) };
}
