// The routes the BFF (8090) and the orchestrator (8091) both serve: the team's
// contract (start a saga, status, list, health), the operator views and
// actions, and the definitions. Everything is read from or written to the saga
// log; nothing here knows a saga's business: each saga type brings its route
// and request schema.
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type pg from 'pg';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { Database } from '../persistence/database.js';
import type { ListFilter, SagaQueries, SagaView } from '../persistence/saga-queries.js';
import { LIFECYCLE_STATES, TERMINAL_STATES } from '../saga/states.js';
import { isOperatorAction, type OperatorAction } from '../saga/operations.js';
import { uuidv7 } from '../saga/ids.js';
import type { AnySagaType } from '../saga/saga-type.js';
import type { StartRequest, StartResult } from '../saga-intake.js';
import { IntakeOutcomeUnknown } from '../saga-intake.js';
import { OrderDesk, type Decided } from '../operator/orders.js';
import { Lotes } from '../operator/lotes.js';
import { verifyToken, type Operator, type Rol } from '../operator/tokens.js';
import { BodyBudget, hasUnstorable, readJsonBody as readBody } from './body.js';
import { HttpError, notFound } from './errors.js';
import { healthRoute } from './health.js';
import { parseOrThrow } from './validation.js';
import type { SagaChanges } from './saga-changes.js';
import type { Faults } from '../faults.js';

export interface SagaApiDeps {
  service: string;
  db: Database;
  /** For operator orders, lotes and tokens. */
  pool: pg.Pool;
  queries: SagaQueries;
  changes: SagaChanges;
  types: readonly AnySagaType[];
  /** Records a new saga (the BFF through the intake, the orchestrator running it at once). */
  start: (req: StartRequest) => Promise<StartResult>;
  log: Logger;
  /** How long an operator request waits for its order to be decided before answering 202. */
  orderWaitMs: number;
  /** Contract routes need a token too (cliente, operador or lector; creating needs cliente or operador). */
  authContract: boolean;
  /** Bytes of request bodies this app reads at once (past it: 503 with Retry-After). */
  bodyBudget?: BodyBudget;
  /** Bugs switched on for the chaos suite (src/faults.ts): unknown-outcome-as-unavailable. */
  faults?: Faults;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const intParam = (def: number, min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'debe ser un entero')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional()
    .transform((v) => v ?? def);

const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((v) => !hasUnstorable(v), 'contiene un carácter no permitido');
const instant = text(40).refine((v) => !Number.isNaN(Date.parse(v)), 'debe ser una fecha ISO 8601');

/** A list filter, from query parameters (strings) or a bulk operation's body. */
function filterSchema(types: readonly AnySagaType[]) {
  const states = [...new Set([...LIFECYCLE_STATES, ...types.flatMap((t) => t.states)])];
  const keys = [...new Set(types.flatMap((t) => t.searchKeyNames))];
  return z.object({
    estado: z.enum(states as [string, ...string[]], { message: `debe ser uno de ${states.join(', ')}` }).optional(),
    tipo: text(100).pipe(z.string().min(1)).optional(),
    desde: instant.optional(),
    hasta: instant.optional(),
    atascadas: z.enum(['true', 'false']).optional(),
    ...Object.fromEntries(keys.map((k) => [k, text(200).pipe(z.string().min(1)).optional()])),
  });
}

function toFilter(q: Record<string, string | undefined>, keyNames: readonly string[]): ListFilter {
  const claves = Object.fromEntries(keyNames.flatMap((k) => (q[k] === undefined ? [] : [[k, q[k]]])));
  return {
    ...(q.estado === undefined ? {} : { estado: q.estado }),
    ...(q.tipo === undefined ? {} : { tipo: q.tipo }),
    ...(q.desde === undefined ? {} : { desde: new Date(q.desde).toISOString() }),
    ...(q.hasta === undefined ? {} : { hasta: new Date(q.hasta).toISOString() }),
    ...(q.atascadas === 'true' ? { atascadas: true } : {}),
    ...(Object.keys(claves).length === 0 ? {} : { claves }),
  };
}

/** `?esperar_ms=N` on status: wait up to N ms (at most 30 s) for the saga to end. */
const statusQuerySchema = z.object({ esperar_ms: intParam(0, 0, 30_000) });

const operatorBody = z.object({
  motivo: text(2_000).optional().default(''),
  operacion_id: text(200).pipe(z.string().min(1)).optional(),
  compensacion: text(100).optional(),
  detener_plazo: z.boolean().optional(),
  version: z.number().int().positive().optional(),
});

/** An optional Idempotency-Key: non-empty, at most 200 characters. */
export function idempotencyKeyHeader(raw: string): string | undefined {
  const key = raw.trim();
  if (key === '') return undefined;
  if (key.length > 200 || hasUnstorable(key)) {
    throw new HttpError(400, 'validacion', [{ campo: 'Idempotency-Key', mensaje: 'debe tener como máximo 200 caracteres válidos' }]);
  }
  return key;
}

/** Query parameters as single strings; an empty parameter means "no filter", a repeated one is an error. */
function singleValued(query: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) throw new HttpError(400, 'validacion', [{ campo: name, mensaje: 'no puede repetirse' }]);
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

export function sagaApi(deps: SagaApiDeps): Router {
  const router = new Router();
  const desk = new OrderDesk(deps.pool, deps.changes);
  const lotes = new Lotes(deps.pool);
  const filters = filterSchema(deps.types);
  const keyNames = [...new Set(deps.types.flatMap((t) => t.searchKeyNames))];
  const listQuery = filters.extend({ pagina: intParam(1, 1, 1_000_000), limite: intParam(10, 1, 100) });
  const auth = authenticate(deps.pool);
  const contract = (...roles: Rol[]) => (deps.authContract ? auth(...roles) : pass);
  const budget = deps.bodyBudget;
  const readJsonBody = (ctx: Context) => readBody(ctx, budget === undefined ? {} : { budget });

  // Query parameters PostgreSQL could not compare, on every route.
  router.use(async (ctx, next) => {
    for (const [name, value] of Object.entries(ctx.query)) {
      const values = Array.isArray(value) ? value : [value ?? ''];
      if (hasUnstorable(name) || values.some(hasUnstorable)) {
        throw new HttpError(400, 'validacion', [{ campo: name, mensaje: 'contiene un carácter no permitido' }]);
      }
    }
    ctx.state.requestId = ctx.get('x-request-id').slice(0, 100) || randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId as string);
    await next();
  });

  healthRoute(router, deps.service, deps.db);

  for (const type of deps.types) {
    router.post(type.route, contract('cliente', 'operador'), async (ctx) => {
      const key = idempotencyKeyHeader(ctx.get('idempotency-key'));
      const body = parseOrThrow(type.request, await readJsonBody(ctx));
      const { datos, timeoutMinutos } = type.accept(body);
      let result: StartResult;
      try {
        result = await deps.start({ tipo: type.tipo, datos, timeoutMinutos, ...(key === undefined ? {} : { idempotencyKey: key }) });
      } catch (err) {
        throw intakeFailure(err, deps.log, deps.faults?.has('unknown-outcome-as-unavailable') === true);
      }
      ctx.body = startedBody(result);
    });
  }

  router.get('/saga/:sagaId/status', contract('cliente', 'operador', 'lector'), async (ctx) => {
    const sagaId = sagaIdParam(ctx);
    const { esperar_ms: waitMs } = parseOrThrow(statusQuerySchema, singleValued(ctx.query));
    if (waitMs > 0) {
      // A client may wait for the end instead of polling: registered before the
      // read, so a saga that ends in between still wakes it.
      const wait = deps.changes.wait(sagaId, waitMs, (estado) => TERMINAL_STATES.includes(estado));
      try {
        const estado = await deps.queries.estado(sagaId);
        if (estado === null) throw notFound(`SAGA ${sagaId} no encontrada`);
        if (!TERMINAL_STATES.includes(estado)) await wait.done;
      } finally {
        wait.cancel();
      }
    }
    const view = await deps.queries.status(sagaId);
    if (view === null) throw notFound(`SAGA ${sagaId} no encontrada`);
    ctx.body = view;
  });

  router.get(['/saga', '/saga/'], contract('cliente', 'operador', 'lector'), async (ctx) => {
    const q = parseOrThrow(listQuery, singleValued(ctx.query));
    const { sagas, total } = await deps.queries.list(toFilter(q as unknown as Record<string, string | undefined>, keyNames), q);
    ctx.body = { sagas, total, pagina: q.pagina, limite: q.limite };
  });

  router.get('/saga/:sagaId/eventos', contract('cliente', 'operador', 'lector'), async (ctx) => {
    const sagaId = sagaIdParam(ctx);
    const eventos = await deps.queries.events(sagaId);
    if (eventos === null) throw notFound(`SAGA ${sagaId} no encontrada`);
    ctx.body = { saga_id: sagaId, eventos };
  });

  router.get('/definiciones', contract('cliente', 'operador', 'lector'), async (ctx) => {
    const rows = await deps.queries.definitions();
    const newest = new Map<string, number>();
    for (const r of rows) newest.set(r.tipo, Math.max(newest.get(r.tipo) ?? 0, r.version));
    ctx.body = {
      definiciones: rows.map((r) => ({
        tipo: r.tipo,
        version: r.version,
        vigente: newest.get(r.tipo) === r.version,
        pasos: r.huella.split('|').map((s) => ({ tipo: s.split('>')[0] ?? s, compensacion: s.split('/')[1] ?? null })),
        en_curso: r.en_curso,
      })),
    };
  });

  router.get('/auth/yo', auth('operador', 'lector', 'cliente'), (ctx) => {
    const who = ctx.state.operator as Operator;
    ctx.body = { nombre: who.nombre, rol: who.rol };
  });

  // Bulk first: /saga/lote/<accion> is not a saga id.
  router.post('/saga/lote/:accion', auth('operador'), async (ctx) => {
    const accion = actionParam(ctx);
    const body = parseOrThrow(
      operatorBody.extend({ filtro: filters.default({}), dry_run: z.boolean().optional().default(false) }),
      (await readJsonBody(ctx)) ?? {},
    );
    checkOrder(accion, body);
    const filtro = toFilter(body.filtro, keyNames);
    if (body.dry_run) {
      const { ids, total } = await deps.queries.matching(filtro, 20);
      ctx.body = { dry_run: true, accion, total, primeras: ids };
      return;
    }
    const who = ctx.state.operator as Operator;
    const created = await lotes.create({
      accion,
      filtro,
      motivo: body.motivo,
      quien: who.nombre,
      datos: orderData(body),
      idempotencyKey: idempotencyKeyHeader(ctx.get('idempotency-key')) ?? body.operacion_id ?? null,
      requestId: ctx.state.requestId as string,
    });
    if (created.kind === 'keyReused') throw keyReused();
    ctx.status = 202;
    ctx.body = created.lote;
  });

  router.get('/saga/lote/:loteId', auth('operador', 'lector'), async (ctx) => {
    const loteId = ctx.params.loteId ?? '';
    const lote = UUID.test(loteId) ? await lotes.get(loteId) : null;
    if (lote === null) throw notFound(`Lote ${loteId} no encontrado`);
    ctx.body = lote;
  });

  router.post('/saga/:sagaId/:accion', auth('operador'), async (ctx) => {
    const accion = actionParam(ctx);
    const sagaId = sagaIdParam(ctx);
    const body = parseOrThrow(operatorBody, (await readJsonBody(ctx)) ?? {});
    checkOrder(accion, body);
    const who = ctx.state.operator as Operator;
    const order = {
      operacionId: idempotencyKeyHeader(ctx.get('idempotency-key')) ?? body.operacion_id ?? uuidv7(),
      sagaId,
      accion,
      quien: who.nombre,
      motivo: body.motivo,
      requestId: ctx.state.requestId as string,
      ...(body.compensacion === undefined ? {} : { compensacion: body.compensacion }),
      ...(body.detener_plazo === undefined ? {} : { detenerPlazo: body.detener_plazo }),
      ...(body.version === undefined ? {} : { version: body.version }),
    };
    const submitted = await desk.submit(order);
    if (submitted.kind === 'notFound') throw notFound(`SAGA ${sagaId} no encontrada`);
    if (submitted.kind === 'reused') throw keyReused();
    const decided = submitted.kind === 'decided' ? submitted.operacion : await desk.decision(order, deps.orderWaitMs);
    if (decided === null) {
      ctx.status = 202;
      ctx.body = {
        operacion_id: order.operacionId,
        resultado: 'pendiente',
        detalle: 'La orden está registrada y la SAGA la atenderá; repita la solicitud con la misma Idempotency-Key para ver el resultado',
      };
      return;
    }
    const operacion = operationBody(decided);
    if (decided.resultado === 'rechazada') {
      throw new HttpError(409, 'accion_no_permitida', decided.detalle ?? 'La SAGA no admite esta acción en su estado', { operacion });
    }
    const view = (await deps.queries.status(sagaId)) as SagaView;
    ctx.body = { ...view, operacion };
  });

  return router;
}

const pass = async (_ctx: Context, next: Next): Promise<void> => {
  await next();
};

function sagaIdParam(ctx: Context): string {
  const sagaId = (ctx.params as Record<string, string | undefined>).sagaId ?? '';
  if (!UUID.test(sagaId)) throw notFound(`SAGA ${sagaId} no encontrada`);
  return sagaId.toLowerCase();
}

function actionParam(ctx: Context): OperatorAction {
  const accion = (ctx.params as Record<string, string | undefined>).accion ?? '';
  if (!isOperatorAction(accion)) throw new HttpError(404, 'ruta_no_encontrada', `${ctx.method} ${ctx.path} no existe`);
  return accion;
}

function checkOrder(accion: OperatorAction, body: z.infer<typeof operatorBody>): void {
  if (accion === 'omitir' && body.motivo.trim() === '') {
    throw new HttpError(400, 'validacion', [{ campo: 'motivo', mensaje: 'es obligatorio para omitir' }]);
  }
  if (accion === 'migrar' && body.version === undefined) {
    throw new HttpError(400, 'validacion', [{ campo: 'version', mensaje: 'es obligatorio para migrar' }]);
  }
}

function orderData(body: z.infer<typeof operatorBody>) {
  return {
    ...(body.compensacion === undefined ? {} : { compensacion: body.compensacion }),
    ...(body.detener_plazo === undefined ? {} : { detener_plazo: body.detener_plazo }),
    ...(body.version === undefined ? {} : { version: body.version }),
  };
}

const keyReused = () => new HttpError(422, 'operacion_id_reutilizada', 'Ese id de operación ya se usó para otra acción o SAGA');

function operationBody(d: Decided) {
  return { id: d.id, accion: d.accion, quien: d.quien, motivo: d.motivo, fecha: d.fecha, resultado: d.resultado, detalle: d.detalle };
}

/** Requires `Authorization: Bearer <token>` of one of `roles`; the operator is put in ctx.state. */
function authenticate(pool: pg.Pool) {
  return (...roles: Rol[]) =>
    async (ctx: Context, next: Next): Promise<void> => {
      const m = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'));
      const who = m === null ? null : await verifyToken(pool, m[1]!);
      if (who === null) {
        throw new HttpError(401, 'no_autenticado', 'Falta un token válido: Authorization: Bearer <token>', {}, { 'WWW-Authenticate': 'Bearer' });
      }
      if (!roles.includes(who.rol)) throw new HttpError(403, 'prohibido', `El rol ${who.rol} no puede hacer esto`);
      ctx.state.operator = who;
      await next();
    };
}

function intakeFailure(err: unknown, log: Logger, hideUnknown: boolean): HttpError {
  if (err instanceof IntakeOutcomeUnknown && !hideUnknown) {
    log.error({ err: err.cause, saga_id: err.sagaId }, 'saga intake: outcome unknown');
    return new HttpError(
      503,
      'resultado_desconocido',
      'No se sabe si la SAGA quedó registrada: consulte su estado, o reintente con la misma Idempotency-Key',
      { saga_id: err.sagaId },
      { 'Retry-After': '1' },
    );
  }
  log.error({ err }, 'saga intake failed');
  return new HttpError(503, 'no_disponible', 'No se pudo registrar la SAGA; reintente', {}, { 'Retry-After': '1' });
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
