// HTTP errors are values: every failure leaves as a JSON body
// `{ error: <code>, detalle: <message or field list>, detail: <the same, as text> }`,
// and a 5xx never carries internals (only errors marked `expose` show their
// message). `detail` is for clients written against a FastAPI server, which
// show `result.detail`; `detalle` stays as it was for everyone else.
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

export type ErrorBody = {
  error: string;
  detalle: unknown;
  /** The same information as `detalle`, as one readable line. */
  detail: string;
};

/** The error body of the contract, with `detail` derived from `detalle`. */
export function errorBody(error: string, detalle: string | FieldProblem[]): ErrorBody {
  return { error, detalle, detail: detailText(detalle) };
}

/** `detalle` as one line: a field list reads `campo: mensaje; campo: mensaje`. */
export function detailText(detalle: string | FieldProblem[]): string {
  return typeof detalle === 'string' ? detalle : detalle.map((p) => `${p.campo}: ${p.mensaje}`).join('; ');
}

/**
 * Koa middleware that turns anything thrown below it into a JSON error answer,
 * and so does an error status that a router or Koa set with no body (405, 501).
 */
export function jsonErrors(log: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status >= 400 && (ctx.body === undefined || ctx.body === null)) throw statusError(ctx);
    } catch (err) {
      const { status, body } = toErrorAnswer(err);
      if (err instanceof HttpError) ctx.set(err.headers);
      if (status >= 500) log.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = status;
      ctx.body = body;
    }
  };
}

/** An error status left without a body by what ran below: named by its status. */
function statusError(ctx: Context): HttpError {
  switch (ctx.status) {
    case 404:
      return new HttpError(404, 'ruta_no_encontrada', `${ctx.method} ${ctx.path} no existe`);
    case 405:
      return new HttpError(405, 'metodo_no_permitido', `${ctx.method} no se admite en ${ctx.path}; se admite: ${ctx.response.get('Allow')}`);
    case 501:
      return new HttpError(501, 'no_implementado', `El método ${ctx.method} no está implementado`);
    default:
      return new HttpError(ctx.status, ctx.status >= 500 ? 'interno' : 'solicitud_invalida', STATUS_TEXT[ctx.status] ?? 'Solicitud no válida');
  }
}

const STATUS_TEXT: Record<number, string> = { 400: 'Solicitud no válida', 500: 'Error interno del servidor' };

function toErrorAnswer(err: unknown): { status: number; body: ErrorBody & Record<string, unknown> } {
  if (err instanceof HttpError) return { status: err.status, body: { ...err.extra, ...errorBody(err.code, err.detalle) } };
  // Errors raised by Koa itself (ctx.throw) carry a status and `expose` for 4xx.
  const e = err as { status?: unknown; expose?: unknown; message?: unknown };
  const status = typeof e.status === 'number' && e.status >= 400 && e.status < 600 ? e.status : 500;
  if (status < 500 && e.expose === true && typeof e.message === 'string') {
    return { status, body: errorBody('solicitud_invalida', e.message) };
  }
  return { status, body: errorBody('interno', 'Error interno del servidor') };
}
