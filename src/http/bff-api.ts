// The BFF (port 8090): the contract the Aeropartners front end and smoke script
// use. New sagas are checked for shape here and forwarded to the orchestrator;
// status and lists are read from the saga log.
import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from '../log.js';
import type { Database } from '../persistence/database.js';
import type { SagaQueries } from '../persistence/saga-queries.js';
import { crearCampanaCompletaSchema } from '../sagas/crear-campana-completa/request.js';
import { TERMINAL_STATES, type SagaState } from '../saga/states.js';
import { readJsonBody } from './body.js';
import { HttpError, notFound } from './errors.js';
import { jsonErrors } from './errors.js';
import { healthRoute } from './health.js';
import { CREATE_PATH, idempotencyKeyHeader } from './orchestrator-api.js';
import { parseOrThrow, parseQuery } from './validation.js';
import { listQuerySchema, statusQuerySchema } from './schemas.js';
import { mountCors } from './cors.js';
import type { SagaCompletions } from './saga-completions.js';
import { httpClient, type HttpClient } from './client.js';
import { createBffMetrics } from '../metrics.js';
import { SagaStatsQueries } from '../persistence/saga-stats.js';
import { BFF_INFO, bffRouteSpecs } from './contract-specs.js';
import { mountDashboard } from './dashboard.js';
import { httpMetricsMiddleware, mountMetrics } from './metrics-route.js';
import { mountOpenApi, openApiDocument, undocumentedRoutes } from './openapi.js';
import { PolledSagaChanges } from './polled-saga-changes.js';
import { mountSagaStream, type SagaChangeFeed } from './sse.js';
import { mountStatistics } from './statistics.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function bffApi(deps: {
  db: Database;
  queries: SagaQueries;
  orchestratorUrl: string;
  log: Logger;
  completions: SagaCompletions;
  /** Origins whose pages may call the BFF from a browser (CORS); none when absent. */
  corsOrigins?: readonly string[];
  /** What tells the saga stream that a saga changed (an interim poller when absent). */
  changes?: SagaChangeFeed;
}): Koa {
  const router = new Router();
  const client = httpClient();
  const metrics = createBffMetrics(deps.db);
  healthRoute(router, 'bff', deps.db);
  mountMetrics(router, metrics.registry);
  mountOpenApi(router, () => openApiDocument(BFF_INFO, bffRouteSpecs));
  mountDashboard(router);
  mountStatistics(router, { stats: new SagaStatsQueries(deps.db) });
  mountSagaStream(router, { queries: deps.queries, changes: deps.changes ?? new PolledSagaChanges(deps.db, deps.completions, deps.log) });

  router.post(CREATE_PATH, async (ctx) => {
    const key = idempotencyKeyHeader(ctx.get('idempotency-key'));
    // Checked here so that a bad request costs the orchestrator nothing.
    const body = parseOrThrow(crearCampanaCompletaSchema, await readJsonBody(ctx));
    const forwarded = await forward(client, deps.orchestratorUrl, body, key, deps.log);
    ctx.status = forwarded.status;
    ctx.body = forwarded.body;
  });

  router.get('/saga/:sagaId/status', async (ctx) => {
    const { sagaId } = ctx.params;
    if (sagaId === undefined || !UUID.test(sagaId)) throw notFound(`SAGA ${sagaId ?? ''} no encontrada`);
    const { esperar_ms: waitMs } = parseQuery(statusQuerySchema, ctx.query);
    // A client may wait for the end instead of polling: registered before the
    // read, so a saga that ends in between still wakes it.
    const wait = waitMs > 0 ? deps.completions.wait(sagaId, waitMs) : undefined;
    try {
      let view = await deps.queries.status(sagaId);
      if (view === null) throw notFound(`SAGA ${sagaId} no encontrada`);
      if (wait !== undefined && !TERMINAL_STATES.includes(view.estado as SagaState)) {
        await wait.done;
        view = (await deps.queries.status(sagaId)) ?? view;
      }
      ctx.body = view;
    } finally {
      wait?.cancel();
    }
  });

  router.get(['/saga', '/saga/'], async (ctx) => {
    const q = parseQuery(listQuerySchema, ctx.query);
    const { sagas, total } = await deps.queries.list(q);
    ctx.body = { sagas, total, pagina: q.pagina, limite: q.limite };
  });

  for (const route of undocumentedRoutes(router, bffRouteSpecs)) deps.log.warn({ route }, 'route without an OpenAPI spec');
  const app = new Koa();
  app.use(httpMetricsMiddleware(metrics.http, 'bff'));
  mountCors(app, deps.corsOrigins ?? []);
  app.use(jsonErrors(deps.log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

async function forward(
  client: HttpClient,
  orchestratorUrl: string,
  body: unknown,
  key: string | undefined,
  log: Logger,
): Promise<{ status: number; body: unknown }> {
  try {
    const res = await client.request(new URL(CREATE_PATH, orchestratorUrl), {
      method: 'POST',
      headers: key === undefined ? {} : { 'idempotency-key': key },
      json: body,
      timeoutMs: 10_000,
    });
    return { status: res.status, body: JSON.parse(res.text) as unknown };
  } catch (err) {
    log.error({ err }, 'orchestrator unreachable');
    throw new HttpError(503, 'orquestador_no_disponible', 'El orquestador no está disponible; reintente');
  }
}
