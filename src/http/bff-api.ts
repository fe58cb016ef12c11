// The BFF (port 8090): the contract the Aeropartners front end and smoke script
// use, plus the operator routes, for browser clients on one origin. It records
// new sagas in the saga log itself (the orchestrator that holds a saga's shard
// runs it), and reads status and lists from the saga log: no orchestrator is on
// its request path, so losing one never stops intake. For people it adds the
// dashboard (/ui), the API docs (/docs, /openapi.json), /metrics, and CORS for
// the team's pages on other origins.
import type Koa from 'koa';
import { createBffMetrics } from '../metrics.js';
import { sagaLogGaugeReads } from '../persistence/saga-log-gauges.js';
import { dashboardSpecs, mountDashboard } from './dashboard.js';
import { sagaApp } from './saga-app.js';
import { sagaApi, type SagaApiDeps } from './saga-api.js';

export function bffApi(
  deps: Omit<SagaApiDeps, 'service' | 'metrics' | 'registry'> & {
    /** Origins whose pages may call the BFF from a browser (CORS); none when absent. */
    corsOrigins?: readonly string[];
  },
): Koa {
  const metrics = createBffMetrics(sagaLogGaugeReads(deps.db));
  const { router, specs, guard } = sagaApi({ ...deps, service: 'bff', metrics, registry: metrics.registry });
  mountDashboard(router, deps.types);
  return sagaApp({
    router,
    specs: [...specs, ...dashboardSpecs],
    service: 'bff',
    metricsLabel: 'bff',
    registry: metrics.registry,
    log: deps.log,
    authContract: deps.authContract,
    guard,
    metricsAuth: deps.metricsAuth ?? false,
    ...(deps.rateLimiter === undefined ? {} : { rateLimiter: deps.rateLimiter }),
    corsOrigins: deps.corsOrigins ?? [],
  });
}
