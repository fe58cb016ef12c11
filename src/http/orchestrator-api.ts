// The orchestrator's HTTP API (port 8091): the same routes as the BFF (a saga
// started here runs here at once, from the snapshot in hand), and its metrics.
import Koa from 'koa';
import type { Orchestrator } from '../orchestrator.js';
import { jsonErrors } from './errors.js';
import { sagaApi, type SagaApiDeps } from './saga-api.js';

export function orchestratorApi(deps: Omit<SagaApiDeps, 'service' | 'start'> & { orchestrator: Orchestrator }): Koa {
  const { orchestrator } = deps;
  const router = sagaApi({
    ...deps,
    service: 'saga-orchestrator',
    start: (req) =>
      orchestrator.startSaga(req.tipo, req.datos, {
        timeoutMinutos: req.timeoutMinutos,
        ...(req.idempotencyKey === undefined ? {} : { idempotencyKey: req.idempotencyKey }),
      }),
  });
  router.get('/metrics', async (ctx) => {
    const { registry } = orchestrator.metrics;
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  const app = new Koa();
  app.use(jsonErrors(deps.log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
