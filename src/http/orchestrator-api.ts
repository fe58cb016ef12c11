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

export const CREATE_PATH = '/saga/crear-campana-completa';

export function orchestratorApi(deps: { orchestrator: Orchestrator; db: Database; log: Logger }): Koa {
  const router = new Router();
  healthRoute(router, 'saga-orchestrator', deps.db);

  router.get('/metrics', async (ctx) => {
    const { registry } = deps.orchestrator.metrics;
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });

  router.post(CREATE_PATH, async (ctx) => {
    const key = idempotencyKeyHeader(ctx.get('idempotency-key'));
    const body = parseOrThrow(crearCampanaCompletaSchema, await readJsonBody(ctx));
    const { timeout_minutos, ...datos } = body;
    const result = await deps.orchestrator.startSaga(TIPO_CREAR_CAMPANA_COMPLETA, datos, {
      timeoutMinutos: timeout_minutos,
      ...(key === undefined ? {} : { idempotencyKey: key }),
    });
    ctx.status = 200;
    ctx.body = startedBody(result);
  });

  const app = new Koa();
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
