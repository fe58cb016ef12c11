// GET /estadisticas: the dashboard's charts. A window of fecha_inicio (default
// the last 24 hours, at most 366 days), optionally one saga tipo. A contract
// read: a token only with AUTH_CONTRATO=on.
import type Router from '@koa/router';
import { z } from 'zod';
import type { SagaStatsQueries } from '../persistence/saga-stats.js';
import { badRequest } from './errors.js';
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
  },
};

export function mountStatistics(router: Router, guard: Guard, deps: { stats: SagaStatsQueries; now?: () => Date }): void {
  route(router, guard, statisticsSpec, async (ctx) => {
    const q = parseQuery(statsQuerySchema, ctx.query);
    const hasta = q.hasta === undefined ? (deps.now?.() ?? new Date()) : new Date(q.hasta);
    const desde = q.desde === undefined ? new Date(hasta.getTime() - DEFAULT_WINDOW_MS) : new Date(q.desde);
    if (desde >= hasta) throw badRequest([{ campo: 'desde', mensaje: 'debe ser anterior a hasta' }]);
    if (hasta.getTime() - desde.getTime() > MAX_WINDOW_MS) throw badRequest([{ campo: 'desde', mensaje: 'la ventana puede ser de 366 días como máximo' }]);
    ctx.body = await deps.stats.stats({ desde, hasta, ...(q.tipo === undefined ? {} : { tipo: q.tipo }) });
  });
}
