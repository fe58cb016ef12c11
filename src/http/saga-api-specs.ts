// The RouteSpecs of the saga routes both apps serve (src/http/saga-api.ts
// registers each route from its spec): the team's contract (start a saga,
// status, list, events, definitions, health), the live stream and statistics,
// and the operator views and actions. Each app's /openapi.json is generated from
// these plus its own (the dashboard on the BFF; metrics and docs on both).
import { ROLES } from '../operator/tokens.js';
import type { AnySagaType } from '../saga/saga-type.js';
import { CONTRACT_READ, contractRoles, PUBLIC, tokenRoles, type RouteSpec } from './route-spec.js';
import {
  actionParams,
  bulkParams,
  definitionsSchema,
  dryRunSchema,
  errorResponse,
  eventsSchema,
  healthSchema,
  idempotencyHeaders,
  loteParams,
  loteSchema,
  operatorBody,
  pendingSchema,
  refusedSchema,
  sagaIdParams,
  sagaSchemas,
  statusQuerySchema,
  whoAmISchema,
} from './schemas.js';
import { sagaStreamSpec } from './sse.js';
import { statisticsSpec } from './statistics.js';

const CONTRACT = 'Contrato';
const OPERATOR = 'Operación';

export const healthSpec = (service: string): RouteSpec => ({
  method: 'GET',
  path: '/health',
  summary: `Salud del servicio (${service}) y de su base de datos`,
  tag: CONTRACT,
  auth: PUBLIC,
  responses: {
    200: { description: 'En servicio', schema: healthSchema },
    503: { description: 'La base de datos no contesta', schema: healthSchema },
  },
});

/** The specs of every saga route, by name; `start` has one per saga type. */
export function sagaApiSpecs(types: readonly AnySagaType[], service: string) {
  const s = sagaSchemas(types);
  const start = (type: AnySagaType): RouteSpec => ({
    method: 'POST',
    path: type.route,
    summary: `Inicia una SAGA ${type.tipo}`,
    description:
      'Contesta 200 en cuanto la SAGA queda registrada; sigue en segundo plano. Un reintento con la misma ' +
      'Idempotency-Key devuelve la misma SAGA.' +
      (type.requestNotes === undefined ? '' : ` ${type.requestNotes}`),
    tag: CONTRACT,
    auth: contractRoles('cliente', 'operador'),
    headers: idempotencyHeaders,
    body: type.request,
    responses: {
      200: { description: 'La SAGA quedó registrada', schema: s.sagaStarted },
      400: errorResponse('JSON no válido, o campos que faltan o no valen'),
      422: errorResponse('La Idempotency-Key ya se usó con otro cuerpo'),
      503: errorResponse('No se sabe si la SAGA quedó registrada (con su saga_id), o no se pudo registrar: reintente'),
    },
  });
  const status: RouteSpec = {
    method: 'GET',
    path: '/saga/{saga_id}/status',
    summary: 'El estado de una SAGA: pasos, compensaciones, plan de compensación y acciones de operador',
    tag: CONTRACT,
    auth: CONTRACT_READ,
    params: sagaIdParams,
    query: statusQuerySchema,
    responses: {
      200: { description: 'La SAGA', schema: s.sagaStatus },
      400: errorResponse('esperar_ms no válido'),
      404: errorResponse('SAGA desconocida o id mal formado'),
    },
  };
  const list: RouteSpec = {
    method: 'GET',
    path: '/saga/',
    alias: '/saga',
    summary: 'Lista de SAGAs, la más reciente primero, filtrada y paginada en SQL',
    description: 'Un parámetro vacío (`?estado=`) equivale a no filtrar; uno repetido es un 400. También en `/saga`.',
    tag: CONTRACT,
    auth: CONTRACT_READ,
    query: s.listQuery,
    responses: {
      200: { description: 'Una página', schema: s.sagaList },
      400: errorResponse('Parámetros no válidos'),
    },
  };
  const events: RouteSpec = {
    method: 'GET',
    path: '/saga/{saga_id}/eventos',
    summary: 'Los eventos de una SAGA (su outbox), en orden, y si se publicaron',
    tag: CONTRACT,
    auth: CONTRACT_READ,
    params: sagaIdParams,
    responses: {
      200: { description: 'Los eventos', schema: eventsSchema },
      404: errorResponse('SAGA desconocida o id mal formado'),
    },
  };
  const definitions: RouteSpec = {
    method: 'GET',
    path: '/definiciones',
    summary: 'Las versiones de cada definición, la vigente y cuántas SAGAs siguen en cada una',
    tag: CONTRACT,
    auth: CONTRACT_READ,
    responses: { 200: { description: 'Las definiciones', schema: definitionsSchema } },
  };
  const whoAmI: RouteSpec = {
    method: 'GET',
    path: '/auth/yo',
    summary: 'Quién es el token presentado y su rol',
    tag: OPERATOR,
    auth: tokenRoles(...ROLES),
    responses: { 200: { description: 'El nombre y el rol del token', schema: whoAmISchema } },
  };
  const bulk: RouteSpec = {
    method: 'POST',
    path: '/saga/lote/{accion}',
    summary: 'Una acción de operador sobre todas las SAGAs de un filtro (primero con dry_run: cuántas y cuáles)',
    tag: OPERATOR,
    auth: tokenRoles('operador'),
    params: bulkParams,
    headers: idempotencyHeaders,
    body: s.bulkBody,
    responses: {
      200: { description: 'dry_run: cuántas SAGAs coinciden y las primeras 20, sin actuar', schema: dryRunSchema },
      202: { description: 'El lote quedó registrado; los orquestadores lo recorren por tandas', schema: loteSchema },
      400: errorResponse('Cuerpo no válido (p. ej. omitir sin motivo)'),
      404: errorResponse('Acción desconocida'),
      422: errorResponse('El id de operación ya se usó para otra acción o filtro'),
    },
  };
  const lote: RouteSpec = {
    method: 'GET',
    path: '/saga/lote/{lote_id}',
    summary: 'El progreso de un lote',
    tag: OPERATOR,
    auth: tokenRoles('operador', 'lector'),
    params: loteParams,
    responses: {
      200: { description: 'El lote', schema: loteSchema },
      404: errorResponse('Lote desconocido'),
    },
  };
  const action: RouteSpec = {
    method: 'POST',
    path: '/saga/{saga_id}/{accion}',
    summary: 'Una acción de operador sobre una SAGA: cancelar, reintentar, omitir, pausar, reanudar o migrar',
    description:
      'Contesta cuando la SAGA decidió la orden y la decisión quedó registrada (con su fila de auditoría y su evento). ' +
      'Cada acción tiene un id de operación (Idempotency-Key u operacion_id): una repetición devuelve la primera decisión.',
    tag: OPERATOR,
    auth: tokenRoles('operador'),
    params: actionParams,
    headers: idempotencyHeaders,
    body: operatorBody,
    responses: {
      200: { description: 'La acción quedó registrada: el estado de la SAGA y la operación', schema: s.actionAnswer },
      202: { description: 'La orden espera en el buzón de la SAGA; repita con la misma clave para ver el resultado', schema: pendingSchema },
      400: errorResponse('Cuerpo no válido (p. ej. omitir sin motivo, migrar sin versión)'),
      404: errorResponse('SAGA o acción desconocida'),
      409: { description: 'El estado de la SAGA no admite la acción: el motivo, y la operación auditada', schema: refusedSchema },
      422: errorResponse('El id de operación ya se usó para otra acción o SAGA'),
    },
  };
  return {
    /** The schemas these specs document, for the routes to parse with (the same instances). */
    schemas: s,
    start: types.map(start),
    status,
    list,
    events,
    definitions,
    health: healthSpec(service),
    stream: sagaStreamSpec,
    statistics: statisticsSpec,
    whoAmI,
    bulk,
    lote,
    action,
  };
}

export type SagaApiSpecs = ReturnType<typeof sagaApiSpecs>;

/** Every spec of `specs` as a list, in the order the document shows them. */
export const allSpecs = (specs: SagaApiSpecs): RouteSpec[] => [
  ...specs.start,
  specs.status,
  specs.list,
  specs.events,
  specs.stream,
  specs.definitions,
  specs.statistics,
  specs.health,
  specs.whoAmI,
  specs.bulk,
  specs.lote,
  specs.action,
];
