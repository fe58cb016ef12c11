// The Koa app of a role that serves the saga routes (the BFF and the
// orchestrator): every request counted and timed first, CORS where the role
// lets pages of other origins call it, JSON errors, then the routes; beside
// them /metrics and the OpenAPI document (/openapi.json, /docs), made of the
// same specs the routes were registered from, and a warning at start for any
// route no spec describes.
import type Router from '@koa/router';
import Koa from 'koa';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { registerHttpMetrics } from '../metrics.js';
import { mountCors } from './cors.js';
import { jsonErrors } from './errors.js';
import { httpMetricsMiddleware, metricsSpec, mountMetrics } from './metrics-route.js';
import { apiInfo, mountOpenApi, openApiDocument, openApiRouteSpecs, undocumentedRoutes } from './openapi.js';
import type { Guard, RouteSpec } from './route-spec.js';
import type { RateLimiter } from './rate-limit.js';

export interface SagaAppOptions {
  router: Router;
  /** The specs of the routes on `router`. */
  specs: readonly RouteSpec[];
  /** Which document the app serves. */
  service: Parameters<typeof apiInfo>[0];
  /** The `app` label of its HTTP metrics. */
  metricsLabel: string;
  registry: Registry;
  log: Logger;
  authContract: boolean;
  /** How the app's routes authenticate (and are rate-limited): /metrics uses it too. */
  guard: Guard;
  /** /metrics needs an operador or lector token. */
  metricsAuth: boolean;
  /** Its refusals are counted in the app's registry. */
  rateLimiter?: RateLimiter;
  /** Origins whose pages may call the app (CORS); absent: no CORS at all. */
  corsOrigins?: readonly string[];
}

export function sagaApp(opts: SagaAppOptions): Koa {
  const { router, log } = opts;
  const specs = [...opts.specs, metricsSpec(opts.metricsAuth), ...openApiRouteSpecs];
  mountMetrics(router, opts.registry, opts.guard, opts.metricsAuth);
  opts.rateLimiter?.countInto(opts.registry);
  mountOpenApi(router, () => openApiDocument(apiInfo(opts.service), specs, { authContract: opts.authContract }));
  for (const route of undocumentedRoutes(router, specs)) log.warn({ route }, 'route without an OpenAPI spec');
  const app = new Koa();
  app.use(httpMetricsMiddleware(registerHttpMetrics(opts.registry), opts.metricsLabel));
  if (opts.corsOrigins !== undefined) mountCors(app, opts.corsOrigins);
  app.use(jsonErrors(log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
