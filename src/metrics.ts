// Metrics in Prometheus style, on GET /metrics of both apps: counters end in
// `_total`, durations in `_seconds`, and labels are `tipo` (saga type),
// `estado` (state), `paso` (step or compensation) and `clase` (paso or
// compensacion). What this process did is counted as it happens (sagas started
// and finished, step and compensation outcomes and call latency, operator
// actions, parked sagas, HTTP requests); what the saga log holds (sagas by
// state, stuck sagas, shard leases) is read at each scrape from the
// trigger-kept counters and small tables, never by counting the whole log.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * What the saga log's gauges read at each scrape. The persistence layer provides
 * it (sagaLogGaugeReads in src/persistence/saga-log-gauges.ts) and the wiring
 * passes it in, so this file knows no SQL.
 */
export interface SagaLogReads {
  totals(): Promise<{ tipo: string; estado: string; n: number }[]>;
  stuck(): Promise<{ tipo: string; motivo: string; n: number }[]>;
  leaseChanges(): Promise<number>;
  shardsHeld(): Promise<{ owner: string; n: number }[]>;
  versionMissing(): Promise<{ shard: number; version: string; n: number }[]>;
}

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
export function createMetrics(sagaLog: SagaLogReads): SagaMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerSagaLogGauges(registry, sagaLog);
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
export function registerSagaLogGauges(registry: Registry, sagaLog: SagaLogReads): void {
  new Gauge({
    name: 'saga_estado',
    help: 'Sagas in the saga log by tipo and state (from the trigger-kept counters, never a count over the log)',
    labelNames: ['tipo', 'estado'] as const,
    registers: [registry],
    async collect() {
      const rows = await sagaLog.totals();
      this.reset();
      for (const r of rows) this.set({ tipo: r.tipo, estado: r.estado }, r.n);
    },
  });
  new Gauge({
    name: 'saga_stuck',
    help: 'Running sagas past the time they should next have changed (parked and waiting-for-version ones included)',
    labelNames: ['tipo', 'motivo'] as const,
    registers: [registry],
    async collect() {
      const rows = await sagaLog.stuck();
      this.reset();
      for (const r of rows) this.set({ tipo: r.tipo, motivo: r.motivo }, r.n);
    },
  });
  new Counter({
    name: 'saga_lease_changes_total',
    help: 'Shard leases taken over the life of the cluster (the sum of the shard epochs): each is a change of owner',
    registers: [registry],
    async collect() {
      const n = await sagaLog.leaseChanges();
      this.reset();
      this.inc(n);
    },
  });
  new Gauge({
    name: 'saga_shards_held',
    help: 'Shards whose lease is live, by owner (an orchestrator process)',
    labelNames: ['owner'] as const,
    registers: [registry],
    async collect() {
      const rows = await sagaLog.shardsHeld();
      this.reset();
      for (const r of rows) this.set({ owner: r.owner }, r.n);
    },
  });
  new Gauge({
    name: 'saga_shard_version_missing',
    help: 'Running sagas that wait because the live holder of their shard lacks their definition version, by shard and TIPO@version',
    labelNames: ['shard', 'version'] as const,
    registers: [registry],
    async collect() {
      const rows = await sagaLog.versionMissing();
      this.reset();
      for (const r of rows) this.set({ shard: String(r.shard), version: r.version }, r.n);
    },
  });
}

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
export function createBffMetrics(sagaLog: SagaLogReads): { registry: Registry } & IntakeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerSagaLogGauges(registry, sagaLog);
  return { registry, ...registerIntakeMetrics(registry) };
}

/**
 * The bounds of docs/SECURITY-bounds.md, read at each scrape from the objects
 * that enforce them. Each source is optional: an app registers those it has
 * (the orchestrator's gateway answers; each app's bodies, streams and
 * statistics); a metric already on the registry is not registered again.
 */
export interface BoundSources {
  answers?: { refusedAnswers: Readonly<Record<string, number>> };
  bodies?: { refusals: Readonly<Record<string, number>>; inUse(): number };
  streams?: { refusals: Readonly<Record<string, number>>; count(): number };
  stats?: { counts: Readonly<Record<string, number>>; refused: number; timeouts(): number };
}

export function registerBoundMetrics(registry: Registry, sources: BoundSources): void {
  const once = (name: string, make: () => void) => {
    if (registry.getSingleMetric(name) === undefined) make();
  };
  /** A counter by `label` read from `values` (counts that only grow, kept by the source). */
  const countsBy = (name: string, help: string, label: string, values: () => Readonly<Record<string, number>>) =>
    once(name, () => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          this.reset();
          for (const [k, v] of Object.entries(values())) this.inc({ [label]: k }, v);
        },
      });
    });
  const gauge = (name: string, help: string, value: () => number) =>
    once(name, () => {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(value());
        },
      });
    });
  const { answers, bodies, streams, stats } = sources;
  if (answers !== undefined) {
    countsBy(
      'saga_participant_answers_refused_total',
      'Participant answers not taken: over PARTICIPANT_ANSWER_MAX_BYTES (motivo=tamano) or PARTICIPANT_ANSWER_MAX_DEPTH (motivo=profundidad)',
      'motivo',
      () => answers.refusedAnswers,
    );
  }
  if (bodies !== undefined) {
    countsBy(
      'http_bodies_refused_total',
      'Request bodies refused: the process budget BODY_BUDGET_MB was full (presupuesto, 503), the client share BODY_BUDGET_PER_CLIENT_MB was (cliente, 429), or the body took over BODY_READ_TIMEOUT_MS (plazo, 408)',
      'motivo',
      () => bodies.refusals,
    );
    gauge('http_body_bytes_in_use', 'Bytes of request bodies being read now (at most BODY_BUDGET_MB)', () => bodies.inUse());
  }
  if (streams !== undefined) {
    countsBy(
      'sse_streams_refused_total',
      'Server-sent-event streams refused: over SSE_MAX_PER_CLIENT (motivo=cliente, 429) or SSE_MAX_TOTAL (motivo=total, 503)',
      'motivo',
      () => streams.refusals,
    );
    gauge('sse_streams_open', 'Server-sent-event streams open now (at most SSE_MAX_TOTAL)', () => streams.count());
  }
  if (stats !== undefined) {
    countsBy(
      'saga_stats_cache_total',
      'Answers of /estadisticas from the cache (resultado=acierto) or computed (resultado=fallo), STATS_CACHE_MS',
      'resultado',
      () => stats.counts,
    );
    countsBy(
      'saga_stats_refused_total',
      'Answers of /estadisticas refused with 503: too many windows computing at once (motivo=ocupado) or past STATS_STATEMENT_TIMEOUT_MS (motivo=plazo)',
      'motivo',
      () => ({ ocupado: stats.refused, plazo: stats.timeouts() }),
    );
  }
}
