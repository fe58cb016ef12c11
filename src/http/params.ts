// Path parameters of the saga routes, checked before anything is read: a saga
// id that is not a UUID cannot exist (404, like an unknown one), and an action
// that does not exist is an unknown route.
import type { Context } from 'koa';
import { isOperatorAction, type OperatorAction } from '../saga/operations.js';
import { HttpError, notFound } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string): boolean => UUID.test(s);

const param = (ctx: Context, name: string): string => (ctx.params as Record<string, string | undefined>)[name] ?? '';

/** The route's `saga_id`, lower-cased; a 404 when it cannot be a saga's. */
export function sagaIdParam(ctx: Context): string {
  const sagaId = param(ctx, 'saga_id');
  if (!isUuid(sagaId)) throw notFound(`SAGA ${sagaId} no encontrada`);
  return sagaId.toLowerCase();
}

/** The route's `accion`; a 404 for one that does not exist. */
export function actionParam(ctx: Context): OperatorAction {
  const accion = param(ctx, 'accion');
  if (!isOperatorAction(accion)) throw new HttpError(404, 'ruta_no_encontrada', `${ctx.method} ${ctx.path} no existe`);
  return accion;
}
