// The routes the BFF (8090) and the orchestrator (8091) both serve: the team's
// contract (start a saga, status, list, events, health), the live stream and
// statistics, the operator views and actions, and the definitions. Each route
// is registered from its RouteSpec (saga-api-specs.ts: its path, who may call
// it, the schemas it parses with), the same specs /openapi.json is made of.
// Everything is read from or written to the saga log; nothing here knows a
// saga's business: each saga type brings its route and request schema.
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type pg from 'pg';
import type { Logger } from '../log.js';
import type { Registry } from 'prom-client';
import { registerBoundMetrics, type IntakeMetrics } from '../metrics.js';
import type { Database } from '../persistence/database.js';
import type { ListFilter, SagaQueries, SagaView } from '../persistence/saga-queries.js';
import { SagaStatsQueries } from '../persistence/saga-stats.js';
import { TERMINAL_STATES } from '../saga/states.js';
import { orderArguments, orderData, type OperatorAction } from '../saga/operations.js';
import { uuidv7 } from '../saga/ids.js';
import type { AnySagaType } from '../saga/saga-type.js';
import type { StartRequest, StartResult } from '../saga-intake.js';
import { IntakeOutcomeUnknown } from '../saga-intake.js';
import { OrderDesk, type Decided } from '../operator/orders.js';
import { Lotes } from '../operator/lotes.js';
import { verifyToken, type Operator, type Rol } from '../operator/tokens.js';
import { BodyBudget, defaultBodyBudget, hasUnstorable, readJsonBody as readBody } from './body.js';
import { HttpError, notFound } from './errors.js';
import { guardFor, route, type Guard, type RouteSpec } from './route-spec.js';
import { rateLimitedGuard, type RateLimiter } from './rate-limit.js';
import { allSpecs, sagaApiSpecs } from './saga-api-specs.js';
import { operatorBody, searchKeysOf, statusQuerySchema, type OperatorBody } from './schemas.js';
import { mountSagaStream, StreamLimits } from './sse.js';
import { mountStatistics, StatsCache } from './statistics.js';
import { parseOrThrow, parseQuery } from './validation.js';
import { healthHandler } from './health.js';
import { actionParam, isUuid, sagaIdParam } from './params.js';
import type { SagaChanges } from '../cluster/saga-changes.js';
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
  /** Counts the sagas this app records. */
  metrics?: IntakeMetrics;
  /** Bugs switched on for the chaos suite (src/faults.ts): unknown-outcome-as-unavailable. */
  faults?: Faults;
  /** The open event streams' bounds (default: 32 per client, 1,000 in all). */
  streams?: StreamLimits;
  /** /estadisticas, cached and bounded (default: over `pool`, 5 s cache, 5 s statement timeout). */
  stats?: StatsCache;
  /** Where the bounds' metrics go (docs/SECURITY-bounds.md). */
  registry?: Registry;
  /** Limits POST and operator requests per token and per address (none when absent). */
  rateLimiter?: RateLimiter;
  /** GET /metrics needs an operador or lector token (METRICS_AUTH). */
  metricsAuth?: boolean;
}

/** A parsed list or bulk filter as the read side takes it. */
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

/** An optional Idempotency-Key: non-empty, at most 200 characters. */
export function idempotencyKeyHeader(raw: string): string | undefined {
  const key = raw.trim();
  if (key === '') return undefined;
  if (key.length > 200 || hasUnstorable(key)) {
    throw new HttpError(400, 'validacion', [{ campo: 'Idempotency-Key', mensaje: 'debe tener como máximo 200 caracteres válidos' }]);
  }
  return key;
}

/** The saga routes on a new router, and the specs they were registered from (for the app's document). */
export function sagaApi(deps: SagaApiDeps): { router: Router; specs: RouteSpec[]; guard: Guard } {
  const router = new Router();
  const desk = new OrderDesk(deps.pool, deps.changes);
  const lotes = new Lotes(deps.pool);
  const specs = sagaApiSpecs(deps.types, deps.service);
  const { schemas } = specs;
  const keyNames = searchKeysOf(deps.types);
  const guard: Guard = rateLimitedGuard(guardFor(authenticate(deps.pool), deps.authContract), deps.rateLimiter);
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

  route(router, guard, specs.health, healthHandler(deps.service, deps.db));

  deps.types.forEach((type, i) => {
    route(router, guard, specs.start[i]!, async (ctx) => {
      const key = idempotencyKeyHeader(ctx.get('idempotency-key'));
      const body = parseOrThrow(type.request, await readJsonBody(ctx));
      const { datos, timeoutMinutos } = type.accept(body);
      let result: StartResult;
      const ticket = deps.changes.beginStart();
      try {
        result = await deps.start({ tipo: type.tipo, datos, timeoutMinutos, ...(key === undefined ? {} : { idempotencyKey: key }) });
      } catch (err) {
        deps.changes.started(ticket, undefined);
        throw intakeFailure(err, deps.log, deps.faults?.has('unknown-outcome-as-unavailable') === true);
      }
      deps.changes.started(ticket, result.kind === 'started' ? result.sagaId : undefined);
      if (result.kind === 'started') deps.metrics?.started(type.tipo);
      ctx.body = startedBody(result);
    });
  });

  route(router, guard, specs.status, async (ctx) => {
    const sagaId = sagaIdParam(ctx);
    const { esperar_ms: waitMs } = parseQuery(statusQuerySchema, ctx.query);
    if (waitMs > 0) {
      // A client may wait for the end instead of polling: registered before the
      // read, so a saga that ends in between still wakes it.
      const wait = deps.changes.wait(sagaId, waitMs, (estado) => TERMINAL_STATES.includes(estado));
      try {
        // A saga started here, of which nothing was heard since, is running: no read before waiting.
        if (deps.changes.unchangedSinceStarted(sagaId)) await wait.done;
        else {
          const estado = await deps.queries.estado(sagaId);
          if (estado === null) throw notFound(`SAGA ${sagaId} no encontrada`);
          if (!TERMINAL_STATES.includes(estado)) await wait.done;
        }
      } finally {
        wait.cancel();
      }
    }
    const view = await deps.queries.status(sagaId);
    if (view === null) throw notFound(`SAGA ${sagaId} no encontrada`);
    ctx.body = view;
  });

  route(router, guard, specs.list, async (ctx) => {
    const q = parseQuery(schemas.listQuery, ctx.query);
    const { sagas, total } = await deps.queries.list(toFilter(q as unknown as Record<string, string | undefined>, keyNames), q);
    ctx.body = { sagas, total, pagina: q.pagina, limite: q.limite };
  });

  route(router, guard, specs.events, async (ctx) => {
    const sagaId = sagaIdParam(ctx);
    const eventos = await deps.queries.events(sagaId);
    if (eventos === null) throw notFound(`SAGA ${sagaId} no encontrada`);
    ctx.body = { saga_id: sagaId, eventos };
  });

  const streams = deps.streams ?? new StreamLimits(32, 1_000);
  mountSagaStream(router, guard, { queries: deps.queries, changes: deps.changes, limits: streams });

  route(router, guard, specs.definitions, async (ctx) => {
    const rows = await deps.queries.definitions();
    const newest = new Map<string, number>();
    for (const r of rows) newest.set(r.tipo, Math.max(newest.get(r.tipo) ?? 0, r.version));
    ctx.body = {
      definiciones: rows.map((r) => {
        const at = (paso: string, fase: 'avance' | 'compensacion') =>
          r.por_paso.find((p) => p.paso === paso && p.fase === fase)?.n ?? 0;
        return {
          tipo: r.tipo,
          version: r.version,
          vigente: newest.get(r.tipo) === r.version,
          pasos: r.huella.split('|').map((s) => {
            const tipo = s.split('>')[0] ?? s;
            // Its running sagas: on the step, and undoing it (the dashboard's graph of the version counts them by node).
            return { tipo, compensacion: s.split('/')[1] ?? null, en_curso: at(tipo, 'avance'), compensando: at(tipo, 'compensacion') };
          }),
          en_curso: r.en_curso,
        };
      }),
    };
  });

  const statsQueries = new SagaStatsQueries(deps.pool);
  const stats = deps.stats ?? new StatsCache(statsQueries, 5_000);
  mountStatistics(router, guard, { stats: statsQueries, cache: stats });
  if (deps.registry !== undefined) {
    registerBoundMetrics(deps.registry, { bodies: budget ?? defaultBodyBudget, streams, stats });
  }

  route(router, guard, specs.whoAmI, (ctx) => {
    const who = ctx.state.operator as Operator;
    ctx.body = { nombre: who.nombre, rol: who.rol };
  });

  // Bulk first: /saga/lote/<accion> is not a saga id.
  route(router, guard, specs.bulk, async (ctx) => {
    const accion = actionParam(ctx);
    const body = parseOrThrow(schemas.bulkBody, (await readJsonBody(ctx)) ?? {});
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
      datos: orderData(orderArguments(body)),
      idempotencyKey: idempotencyKeyHeader(ctx.get('idempotency-key')) ?? body.operacion_id ?? null,
      requestId: ctx.state.requestId as string,
    });
    if (created.kind === 'keyReused') throw keyReused();
    ctx.status = 202;
    ctx.body = created.lote;
  });

  route(router, guard, specs.lote, async (ctx) => {
    const loteId = (ctx.params as Record<string, string | undefined>).lote_id ?? '';
    const lote = isUuid(loteId) ? await lotes.get(loteId) : null;
    if (lote === null) throw notFound(`Lote ${loteId} no encontrado`);
    ctx.body = lote;
  });

  route(router, guard, specs.action, async (ctx) => {
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
      ...orderArguments(body),
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

  return { router, specs: allSpecs(specs), guard };
}

function checkOrder(accion: OperatorAction, body: OperatorBody): void {
  if (accion === 'omitir' && body.motivo.trim() === '') {
    throw new HttpError(400, 'validacion', [{ campo: 'motivo', mensaje: 'es obligatorio para omitir' }]);
  }
  if (accion === 'migrar' && body.version === undefined) {
    throw new HttpError(400, 'validacion', [{ campo: 'version', mensaje: 'es obligatorio para migrar' }]);
  }
}

const keyReused = () => new HttpError(422, 'operacion_id_reutilizada', 'Ese id de operación ya se usó para otra acción o SAGA');

function operationBody(d: Decided) {
  return { id: d.id, accion: d.accion, quien: d.quien, motivo: d.motivo, fecha: d.fecha, resultado: d.resultado, detalle: d.detalle };
}

/** Requires `Authorization: Bearer <token>` of one of `roles`; the operator is put in ctx.state. */
function authenticate(pool: pg.Pool) {
  return (roles: readonly Rol[]) =>
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
