// The orchestrator's HTTP API (port 8091): the same routes as the BFF (a saga
// started here runs here at once, from the snapshot in hand), its metrics and
// its OpenAPI document.
import type Koa from 'koa';
import type { Orchestrator } from '../orchestrator.js';
import { sagaApp } from './saga-app.js';
import { sagaApi, type SagaApiDeps } from './saga-api.js';

export function orchestratorApi(deps: Omit<SagaApiDeps, 'service' | 'start' | 'metrics' | 'registry'> & { orchestrator: Orchestrator }): Koa {
  const { orchestrator } = deps;
  const service = 'saga-orchestrator';
  const { router, specs, guard } = sagaApi({
    ...deps,
    service,
    metrics: orchestrator.metrics,
    registry: orchestrator.metrics.registry,
    start: (req) =>
      orchestrator.startSaga(req.tipo, req.datos, {
        timeoutMinutos: req.timeoutMinutos,
        ...(req.idempotencyKey === undefined ? {} : { idempotencyKey: req.idempotencyKey }),
      }),
  });
  return sagaApp({
    router,
    specs,
    service,
    metricsLabel: 'orchestrator',
    registry: orchestrator.metrics.registry,
    log: deps.log,
    authContract: deps.authContract,
    guard,
    metricsAuth: deps.metricsAuth ?? false,
    ...(deps.rateLimiter === undefined ? {} : { rateLimiter: deps.rateLimiter }),
  });
}
