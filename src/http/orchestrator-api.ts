// The orchestrator's HTTP API (port 8091): the same routes as the BFF (a saga
// started here runs here at once, from the snapshot in hand), its metrics and
// its OpenAPI document.
import Koa from 'koa';
import { registerHttpMetrics } from '../metrics.js';
import type { Orchestrator } from '../orchestrator.js';
import { jsonErrors } from './errors.js';
import { httpMetricsMiddleware, metricsRouteSpec, mountMetrics } from './metrics-route.js';
import { apiInfo, mountOpenApi, openApiDocument, openApiRouteSpecs, undocumentedRoutes } from './openapi.js';
import { allSpecs, sagaApiSpecs } from './saga-api-specs.js';
import { sagaApi, type SagaApiDeps } from './saga-api.js';

export function orchestratorApi(deps: Omit<SagaApiDeps, 'service' | 'start' | 'metrics'> & { orchestrator: Orchestrator }): Koa {
  const { orchestrator } = deps;
  const service = 'saga-orchestrator';
  const router = sagaApi({
    ...deps,
    service,
    metrics: orchestrator.metrics,
    start: (req) =>
      orchestrator.startSaga(req.tipo, req.datos, {
        timeoutMinutos: req.timeoutMinutos,
        ...(req.idempotencyKey === undefined ? {} : { idempotencyKey: req.idempotencyKey }),
      }),
  });
  const specs = [...allSpecs(sagaApiSpecs(deps.types, service)), metricsRouteSpec, ...openApiRouteSpecs];
  mountMetrics(router, orchestrator.metrics.registry);
  mountOpenApi(router, () => openApiDocument(apiInfo(service), specs, { authContract: deps.authContract }));
  for (const route of undocumentedRoutes(router, specs)) deps.log.warn({ route }, 'route without an OpenAPI spec');
  const app = new Koa();
  app.use(httpMetricsMiddleware(registerHttpMetrics(orchestrator.metrics.registry), 'orchestrator'));
  app.use(jsonErrors(deps.log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
