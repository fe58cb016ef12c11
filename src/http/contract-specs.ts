// The RouteSpecs of both apps' routes: the contract the team's clients use
// (create, status, list, health) and what the BFF adds for people (dashboard,
// statistics, live status, docs, metrics). Each app's /openapi.json is
// generated from its list. New routes add their spec here.
import { crearCampanaCompletaSchema } from '../sagas/crear-campana-completa/request.js';
import { dashboardSpecs } from './dashboard.js';
import { metricsRouteSpec } from './metrics-route.js';
import { openApiRouteSpecs, type OpenApiInfo } from './openapi.js';
import type { RouteSpec } from './route-spec.js';
import {
  errorSchema,
  healthSchema,
  idempotencyHeaders,
  listQuerySchema,
  sagaIdParams,
  sagaListSchema,
  sagaStartedSchema,
  sagaStatusSchema,
  statusQuerySchema,
} from './schemas.js';
import { sagaStreamSpec } from './sse.js';
import { statisticsSpec } from './statistics.js';

const CONTRACT = 'Contrato';

const error = (description: string) => ({ description, schema: errorSchema });

const createSpec = (forwarded: boolean): RouteSpec => {
  const responses: RouteSpec['responses'] = {
    200: { description: 'La SAGA quedó registrada', schema: sagaStartedSchema },
    400: error('JSON no válido o campos que faltan o sobran'),
    413: error('El cuerpo supera 1 MB'),
    422: error('La Idempotency-Key ya se usó con otro cuerpo'),
  };
  if (forwarded) responses[503] = error('El orquestador no está disponible');
  return {
    method: 'POST',
    path: '/saga/crear-campana-completa',
    summary: 'Inicia una SAGA de campaña completa: campaña, pago y reporte',
    description:
      'Contesta 200 en cuanto la SAGA queda registrada; sigue en segundo plano. `reporte` puede traer `fecha_inicio` y ' +
      '`fecha_fin` junto a `tipo_reporte` (sin `filtros`): pasan a ser los filtros del reporte.',
    tag: CONTRACT,
    auth: 'ninguno',
    headers: idempotencyHeaders,
    body: crearCampanaCompletaSchema,
    responses,
  };
};

const healthSpec = (service: string): RouteSpec => ({
  method: 'GET',
  path: '/health',
  summary: `Salud ${service} y de su base de datos`,
  tag: CONTRACT,
  auth: 'ninguno',
  responses: {
    200: { description: 'En servicio', schema: healthSchema },
    503: { description: 'La base de datos no contesta', schema: healthSchema },
  },
});

export const bffRouteSpecs: RouteSpec[] = [
  createSpec(true),
  {
    method: 'GET',
    path: '/saga/{saga_id}/status',
    summary: 'El estado de una SAGA con sus pasos y compensaciones',
    tag: CONTRACT,
    auth: 'ninguno',
    params: sagaIdParams,
    query: statusQuerySchema,
    responses: {
      200: { description: 'La SAGA', schema: sagaStatusSchema },
      400: error('esperar_ms no válido'),
      404: error('SAGA desconocida o id mal formado'),
    },
  },
  {
    method: 'GET',
    path: '/saga/',
    summary: 'Lista de SAGAs, la más reciente primero, filtrada y paginada en SQL',
    description: 'Un parámetro vacío (`?estado=`) equivale a no filtrar. También en `/saga`.',
    tag: CONTRACT,
    auth: 'ninguno',
    query: listQuerySchema,
    responses: {
      200: { description: 'Una página', schema: sagaListSchema },
      400: error('Parámetros no válidos'),
    },
  },
  healthSpec('del BFF'),
  sagaStreamSpec,
  statisticsSpec,
  ...dashboardSpecs,
  {
    method: 'GET',
    path: '/',
    summary: 'Redirige al panel (/ui)',
    tag: 'Panel',
    auth: 'ninguno',
    responses: { 302: { description: 'A /ui' } },
  },
  metricsRouteSpec('Operación'),
  ...openApiRouteSpecs('Operación'),
];

export const orchestratorRouteSpecs: RouteSpec[] = [
  createSpec(false),
  healthSpec('del orquestador'),
  metricsRouteSpec('Operación'),
  ...openApiRouteSpecs('Operación'),
];

const VERSION = '0.1.0';

export const BFF_INFO: OpenApiInfo = {
  title: 'Aeropartners SAGA · BFF',
  version: VERSION,
  description:
    'El contrato que usan el front end y los clientes del equipo (puerto 8090), el panel y sus datos. ' +
    'Los errores son siempre JSON `{error, detalle, detail}`.',
};

export const ORCHESTRATOR_INFO: OpenApiInfo = {
  title: 'Aeropartners SAGA · Orquestador',
  version: VERSION,
  description: 'La API del orquestador (puerto 8091): el BFF le reenvía las SAGAs nuevas.',
};

