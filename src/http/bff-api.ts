// The BFF (port 8090): the contract the Aeropartners front end and smoke script
// use, plus the operator routes, for browser clients on one origin. It records
// new sagas in the saga log itself (the orchestrator that holds a saga's shard
// runs it), and reads status and lists from the saga log: no orchestrator is on
// its request path, so losing one never stops intake. For people it adds the
// dashboard (/ui), the API docs (/docs, /openapi.json), /metrics, and CORS for
// the team's pages on other origins.
import Koa from 'koa';
import { createBffMetrics } from '../metrics.js';
import { mountCors } from './cors.js';
import { dashboardSpecs, mountDashboard } from './dashboard.js';
import { jsonErrors } from './errors.js';
import { httpMetricsMiddleware, metricsRouteSpec, mountMetrics } from './metrics-route.js';
import { apiInfo, mountOpenApi, openApiDocument, openApiRouteSpecs, undocumentedRoutes } from './openapi.js';
import { allSpecs, sagaApiSpecs } from './saga-api-specs.js';
import { sagaApi, type SagaApiDeps } from './saga-api.js';

export function bffApi(
  deps: Omit<SagaApiDeps, 'service' | 'metrics'> & {
    /** Origins whose pages may call the BFF from a browser (CORS); none when absent. */
    corsOrigins?: readonly string[];
  },
): Koa {
  const metrics = createBffMetrics(deps.db);
  const router = sagaApi({ ...deps, service: 'bff', metrics });
  const specs = [...allSpecs(sagaApiSpecs(deps.types, 'bff')), ...dashboardSpecs, metricsRouteSpec, ...openApiRouteSpecs];
  mountMetrics(router, metrics.registry);
  mountOpenApi(router, () => openApiDocument(apiInfo('bff'), specs, { authContract: deps.authContract }));
  mountDashboard(router);
  for (const route of undocumentedRoutes(router, specs)) deps.log.warn({ route }, 'route without an OpenAPI spec');
  const app = new Koa();
  app.use(httpMetricsMiddleware(metrics.http, 'bff'));
  mountCors(app, deps.corsOrigins ?? []);
  app.use(jsonErrors(deps.log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
