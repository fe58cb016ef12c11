// The BFF (port 8090): the contract the Aeropartners front end and smoke script
// use, plus the operator routes, for browser clients on one origin. It records
// new sagas in the saga log itself (the orchestrator that holds a saga's shard
// runs it), and reads status and lists from the saga log: no orchestrator is on
// its request path, so losing one never stops intake.
import Koa from 'koa';
import { jsonErrors } from './errors.js';
import { sagaApi, type SagaApiDeps } from './saga-api.js';

export function bffApi(deps: Omit<SagaApiDeps, 'service'>): Koa {
  const router = sagaApi({ ...deps, service: 'bff' });
  const app = new Koa();
  app.use(jsonErrors(deps.log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
