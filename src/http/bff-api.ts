// The BFF (port 8090): the contract the Aeropartners front end and smoke script
// use. New sagas are checked for shape here and forwarded to the orchestrator;
// status and lists are read from the saga log.
import Koa from 'koa';
import Router from '@koa/router';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { Database } from '../persistence/database.js';
import type { SagaQueries } from '../persistence/saga-queries.js';
import { crearCampanaCompletaSchema } from '../sagas/crear-campana-completa/request.js';
import { ALL_STATES, TERMINAL_STATES, type SagaState } from '../saga/states.js';
import { readJsonBody } from './body.js';
import { HttpError, notFound } from './errors.js';
import { jsonErrors } from './errors.js';
import { healthRoute } from './health.js';
import { CREATE_PATH, idempotencyKeyHeader } from './orchestrator-api.js';
import { parseOrThrow } from './validation.js';
import type { SagaCompletions } from './saga-completions.js';
import { httpClient, type HttpClient } from './client.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const intParam = (def: number, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'debe ser un entero')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional()
    .transform((v) => v ?? def);

const listQuerySchema = z.object({
  estado: z.enum(ALL_STATES as [string, ...string[]], { message: `debe ser uno de ${ALL_STATES.join(', ')}` }).optional(),
  tipo: z.string().min(1).max(100).optional(),
  pagina: intParam(1, 1, 1_000_000),
  limite: intParam(10, 1, 100),
});

/** `?esperar_ms=N` on status: wait up to N ms (at most 30 s) for the saga to end. */
const statusQuerySchema = z.object({ esperar_ms: intParam(0, 0, 30_000) });

export function bffApi(deps: {
  db: Database;
  queries: SagaQueries;
  orchestratorUrl: string;
  log: Logger;
  completions: SagaCompletions;
}): Koa {
  const router = new Router();
  const client = httpClient();
  healthRoute(router, 'bff', deps.db);

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
    const { esperar_ms: waitMs } = parseOrThrow(statusQuerySchema, ctx.query);
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
    for (const [name, value] of Object.entries(ctx.query)) {
      if (Array.isArray(value)) {
        throw new HttpError(400, 'validacion', [{ campo: name, mensaje: 'no puede repetirse' }]);
      }
    }
    const q = parseOrThrow(listQuerySchema, ctx.query);
    const { sagas, total } = await deps.queries.list(q);
    ctx.body = { sagas, total, pagina: q.pagina, limite: q.limite };
  });

  const app = new Koa();
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
