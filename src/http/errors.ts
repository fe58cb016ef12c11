// HTTP errors are values: every failure leaves as a JSON body
// `{ error: <code>, detalle: <message or field list> }`, and a 5xx never
// carries internals (only errors marked `expose` show their message).
import type { Context, Next } from 'koa';
import type { Logger } from '../log.js';

export interface FieldProblem {
  campo: string;
  mensaje: string;
}

export class HttpError extends Error {
  readonly expose = true;
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detalle: string | FieldProblem[],
    /** More fields for the body (e.g. the saga id of an unknown outcome), beside error and detalle. */
    readonly extra: Record<string, unknown> = {},
    /** Response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof detalle === 'string' ? detalle : code);
  }
}

export const badRequest = (detalle: string | FieldProblem[]) => new HttpError(400, 'validacion', detalle);
export const notFound = (detalle: string) => new HttpError(404, 'no_encontrada', detalle);

/** Koa middleware that turns anything thrown below it into a JSON error answer. */
export function jsonErrors(log: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HttpError(404, 'ruta_no_encontrada', `${ctx.method} ${ctx.path} no existe`);
      }
    } catch (err) {
      const { status, body } = toErrorAnswer(err);
      if (err instanceof HttpError) ctx.set(err.headers);
      if (status >= 500) log.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = status;
      ctx.body = body;
    }
  };
}

function toErrorAnswer(err: unknown): { status: number; body: { error: string; detalle: unknown } } {
  if (err instanceof HttpError) return { status: err.status, body: { ...err.extra, error: err.code, detalle: err.detalle } };
  // Errors raised by Koa itself (ctx.throw) carry a status and `expose` for 4xx.
  const e = err as { status?: unknown; expose?: unknown; message?: unknown };
  const status = typeof e.status === 'number' && e.status >= 400 && e.status < 600 ? e.status : 500;
  if (status < 500 && e.expose === true && typeof e.message === 'string') {
    return { status, body: { error: 'solicitud_invalida', detalle: e.message } };
  }
  return { status, body: { error: 'interno', detalle: 'Error interno del servidor' } };
}
