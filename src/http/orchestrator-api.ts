// The orchestrator's HTTP API (port 8091): the BFF forwards new sagas here, and
// the route hands them to the supervisor through the Orchestrator.
import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from '../log.js';
import type { Orchestrator, StartResult } from '../orchestrator.js';
import type { Database } from '../persistence/database.js';
import { crearCampanaCompletaSchema } from '../sagas/crear-campana-completa/request.js';
import { TIPO_CREAR_CAMPANA_COMPLETA } from '../sagas/crear-campana-completa/definition.js';
import { readJsonBody } from './body.js';
import { HttpError, jsonErrors } from './errors.js';
import { healthRoute } from './health.js';
import { parseOrThrow } from './validation.js';
import { registerHttpMetrics } from '../metrics.js';
import { ORCHESTRATOR_INFO, orchestratorRouteSpecs } from './contract-specs.js';
import { httpMetricsMiddleware, mountMetrics } from './metrics-route.js';
import { mountOpenApi, openApiDocument, undocumentedRoutes } from './openapi.js';

export const CREATE_PATH = '/saga/crear-campana-completa';

export function orchestratorApi(deps: { orchestrator: Orchestrator; db: Database; log: Logger }): Koa {
  const router = new Router();
  healthRoute(router, 'saga-orchestrator', deps.db);

  mountMetrics(router, deps.orchestrator.metrics.registry);
  mountOpenApi(router, () => openApiDocument(ORCHESTRATOR_INFO, orchestratorRouteSpecs));

  router.post(CREATE_PATH, async (ctx) => {
    const key = idempotencyKeyHeader(ctx.get('idempotency-key'));
    const body = parseOrThrow(crearCampanaCompletaSchema, await readJsonBody(ctx));
    const { timeout_minutos, ...datos } = body;
    const result = await deps.orchestrator.startSaga(TIPO_CREAR_CAMPANA_COMPLETA, datos, {
      timeoutMinutos: timeout_minutos,
      ...(key === undefined ? {} : { idempotencyKey: key }),
    });
    if (result.kind === 'started') deps.orchestrator.metrics.started(TIPO_CREAR_CAMPANA_COMPLETA);
    ctx.status = 200;
    ctx.body = startedBody(result);
  });

  for (const route of undocumentedRoutes(router, orchestratorRouteSpecs)) deps.log.warn({ route }, 'route without an OpenAPI spec');
  const app = new Koa();
  app.use(httpMetricsMiddleware(registerHttpMetrics(deps.orchestrator.metrics.registry), 'orchestrator'));
  app.use(jsonErrors(deps.log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** An optional Idempotency-Key: non-empty, at most 200 characters. */
export function idempotencyKeyHeader(raw: string): string | undefined {
  const key = raw.trim();
  if (key === '') return undefined;
  if (key.length > 200) {
    throw new HttpError(400, 'validacion', [{ campo: 'Idempotency-Key', mensaje: 'debe tener como máximo 200 caracteres' }]);
  }
  return key;
}

function startedBody(result: StartResult) {
  if (result.kind === 'keyReused') {
    throw new HttpError(422, 'idempotency_key_reutilizada', 'La Idempotency-Key ya se usó con otro cuerpo');
  }
  return {
    exito: true,
    saga_id: result.sagaId,
    estado: result.estado,
    mensaje: result.kind === 'started' ? 'SAGA iniciada exitosamente' : 'SAGA ya iniciada con esta Idempotency-Key',
    datos_iniciales: result.datos,
  };
}
