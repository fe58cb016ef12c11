// GET /metrics in Prometheus text format, and the middleware that counts and
// times every request of an app by its route pattern (not its raw path, so a
// saga id never becomes a label value).
import type { Context, Next } from 'koa';
import type Router from '@koa/router';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { HttpMetrics } from '../metrics.js';
import { PUBLIC, route, tokenRoles, type Guard, type RouteSpec } from './route-spec.js';

export const metricsRouteSpec: RouteSpec = {
  method: 'GET',
  path: '/metrics',
  summary: 'Métricas en formato de texto de Prometheus',
  description:
    'saga_estado{tipo,estado}, saga_stuck{tipo,motivo}, saga_started_total, saga_lease_changes_total, saga_shards_held, saga_shard_version_missing{shard,version}, ' +
    'http_requests_total, http_request_duration_seconds, http_rate_limited_total{limite} (con límites de tasa) y las del proceso ' +
    'de Node; el orquestador añade saga_finished_total, ' +
    'saga_duration_seconds, saga_step_outcomes_total{clase,tipo,paso,resultado}, saga_call_duration_seconds, ' +
    'saga_operations_total{accion,resultado} y saga_parked_total.',
  tag: 'Servicio',
  auth: PUBLIC,
  responses: { 200: { description: 'Las métricas', schema: z.string(), contentType: 'text/plain' } },
};

/** The spec of /metrics: open, or (METRICS_AUTH=on, the production default) an operador or lector token. */
export const metricsSpec = (auth: boolean): RouteSpec => (auth ? { ...metricsRouteSpec, auth: tokenRoles('operador', 'lector') } : metricsRouteSpec);

export function mountMetrics(router: Router, registry: Registry, guard: Guard, auth: boolean): void {
  route(router, guard, metricsSpec(auth), async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
}

/** Put it first on the app: it sees the final status, errors included. */
export function httpMetricsMiddleware(metrics: HttpMetrics, app: string) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
      const route = typeof matched === 'string' ? matched : 'sin_ruta';
      metrics.observe(app, ctx.method, route, ctx.status, Number(process.hrtime.bigint() - start) / 1e9);
    }
  };
}
