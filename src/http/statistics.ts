// GET /estadisticas: the dashboard's charts. A window of fecha_inicio (default
// the last 24 hours, at most 366 days), optionally one saga tipo. A contract
// read: a token only with AUTH_CONTRATO=on.
//
// Bounded (issue 17): an answer is reused for STATS_CACHE_MS for the same
// query (desde, hasta, tipo as given: a window ending "now" is so at most that
// stale), one computation serves every request for it meanwhile, at most
// MAX_STATS_IN_FLIGHT different windows are computed at once (503 with
// Retry-After past that), and each computation has a statement timeout
// (src/persistence/saga-stats.ts; past it, 503).
import type Router from '@koa/router';
import { z } from 'zod';
import { StatsTimeout, type SagaStats, type SagaStatsQueries, type StatsWindow } from '../persistence/saga-stats.js';
import { badRequest, HttpError } from './errors.js';
import { CONTRACT_READ, route, type Guard, type RouteSpec } from './route-spec.js';
import { errorResponse, instant, tipoFilter } from './schemas.js';
import { parseQuery } from './validation.js';

const MAX_WINDOW_MS = 366 * 86_400_000;
const DEFAULT_WINDOW_MS = 86_400_000;

export const statsQuerySchema = z.object({
  desde: instant.optional().meta({ description: 'Inicio de la ventana (fecha_inicio >= desde); por defecto 24 h antes de hasta' }),
  hasta: instant.optional().meta({ description: 'Fin de la ventana (fecha_inicio < hasta); por defecto ahora' }),
  tipo: tipoFilter,
});

const count = z.number().int().min(0);

export const statsSchema = z
  .looseObject({
    desde: z.string(),
    hasta: z.string(),
    intervalo_segundos: z.number().int().positive(),
    por_estado: z.array(z.looseObject({ tipo: z.string(), estado: z.string(), n: count })),
    en_el_tiempo: z.array(
      z.looseObject({
        inicio: z.string(),
        total: count,
        completadas: count,
        compensadas: count,
        compensacion_fallida: count,
        en_curso: count,
      }),
    ),
    duracion_segundos: z.array(
      z.looseObject({ tipo: z.string(), estado: z.string(), n: count, p50: z.number(), p95: z.number(), p99: z.number() }),
    ),
    pasos_que_mas_fallan: z.array(
      z.looseObject({ clase: z.enum(['paso', 'compensacion']), paso: z.string(), fallos: count, total: count }),
    ),
  })
  .meta({ title: 'Estadisticas' });

export const statisticsSpec: RouteSpec = {
  method: 'GET',
  path: '/estadisticas',
  summary: 'Estadísticas para el panel: SAGAs por estado, tasas en el tiempo, percentiles de duración, pasos que más fallan',
  tag: 'Contrato',
  auth: CONTRACT_READ,
  query: statsQuerySchema,
  responses: {
    200: { description: 'Las estadísticas de la ventana', schema: statsSchema },
    400: errorResponse('Ventana no válida'),
    503: errorResponse('Demasiadas estadísticas en cálculo, o la ventana tardó más que STATS_STATEMENT_TIMEOUT_MS (con Retry-After)'),
  },
};

/** Windows computed at once; more distinct ones wait outside (503). */
export const MAX_STATS_IN_FLIGHT = 2;

/** Answers of /estadisticas by query, each for `ttlMs`; the computation in progress is shared. */
export class StatsCache {
  private readonly entries = new Map<string, { at: number; answer: Promise<SagaStats> }>();
  private inFlight = 0;
  /** Answers served from the cache, and computed (saga_stats_cache_total). */
  readonly counts = { acierto: 0, fallo: 0 };
  /** Computations refused because MAX_STATS_IN_FLIGHT were running. */
  refused = 0;

  constructor(
    private readonly stats: Pick<SagaStatsQueries, 'stats'> & { readonly timeouts?: number },
    readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Computations the statement timeout cancelled. */
  timeouts(): number {
    return this.stats.timeouts ?? 0;
  }

  get(key: string, window: () => StatsWindow): Promise<SagaStats> {
    const now = this.clock();
    for (const [k, e] of this.entries) if (now - e.at >= this.ttlMs) this.entries.delete(k);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.counts.acierto += 1;
      return hit.answer;
    }
    if (this.inFlight >= MAX_STATS_IN_FLIGHT) {
      this.refused += 1;
      throw new HttpError(503, 'sobrecargado', 'Se están calculando otras estadísticas; reintente en un momento', {}, { 'Retry-After': '1' });
    }
    this.counts.fallo += 1;
    this.inFlight += 1;
    const answer = this.stats.stats(window()).finally(() => (this.inFlight -= 1));
    this.entries.set(key, { at: now, answer });
    // A failure is not kept: the next request computes again.
    answer.catch(() => this.entries.get(key)?.answer === answer && this.entries.delete(key));
    return answer;
  }
}

export function mountStatistics(
  router: Router,
  guard: Guard,
  deps: { stats: Pick<SagaStatsQueries, 'stats'>; now?: () => Date; cache?: StatsCache },
): void {
  const cache = deps.cache ?? new StatsCache(deps.stats, 5_000);
  route(router, guard, statisticsSpec, async (ctx) => {
    const q = parseQuery(statsQuerySchema, ctx.query);
    const hasta = q.hasta === undefined ? (deps.now?.() ?? new Date()) : new Date(q.hasta);
    const desde = q.desde === undefined ? new Date(hasta.getTime() - DEFAULT_WINDOW_MS) : new Date(q.desde);
    if (desde >= hasta) throw badRequest([{ campo: 'desde', mensaje: 'debe ser anterior a hasta' }]);
    if (hasta.getTime() - desde.getTime() > MAX_WINDOW_MS) throw badRequest([{ campo: 'desde', mensaje: 'la ventana puede ser de 366 días como máximo' }]);
    const key = JSON.stringify([q.desde ?? null, q.hasta ?? null, q.tipo ?? null]);
    try {
      ctx.body = await cache.get(key, () => ({ desde, hasta, ...(q.tipo === undefined ? {} : { tipo: q.tipo }) }));
    } catch (err) {
      if (!(err instanceof StatsTimeout)) throw err;
      throw new HttpError(503, 'sobrecargado', 'Las estadísticas de esta ventana tardan demasiado; pruebe una ventana más corta', {}, { 'Retry-After': '5' });
    }
  });
}
