// Version 1 of the campaign saga: create the campaign, process the payment,
// generate the report. A running saga keeps the version it started on, so
// these steps change only in a new version file (docs/operations.md: "Changing a saga safely").
import type { Json, SagaDefinition, StepDefinition } from '../../saga/definition.js';
import type { defaultPolicies } from '../../saga/saga-type.js';
import type { CrearCampanaCompleta } from './request.js';
import { Estado } from './states.js';

export const TIPO_CREAR_CAMPANA_COMPLETA = 'CREAR_CAMPANA_COMPLETA';

type Policies = ReturnType<typeof defaultPolicies>;
type Step = StepDefinition<CrearCampanaCompleta>;

/** The id a completed step's participant gave its resource. */
export const idOf = (results: Readonly<Record<string, Json>>, tipo: string): Json => {
  const r = results[tipo];
  return r !== null && typeof r === 'object' && !Array.isArray(r) ? (r.id ?? null) : null;
};

export const crearCampana = ({ step, compensation }: Policies): Step => ({
  tipo: 'CREAR_CAMPANA',
  reaches: Estado.CAMPANA_CREADA,
  event: 'SagaCampañaCreada',
  action: ({ sagaId, datos, resourceId }) => ({
    participant: 'campaigns',
    method: 'POST',
    path: '/api/campaigns',
    body: { ...datos.campana, id: resourceId, saga_id: sagaId },
  }),
  policy: step,
  compensation: {
    tipo: 'CANCELAR_CAMPANA',
    action: ({ resourceId }) => ({ participant: 'campaigns', method: 'PATCH', path: `/api/campaigns/${resourceId}/cancel` }),
    policy: compensation,
  },
});

export const procesarPago = ({ step, compensation }: Policies): Step => ({
  tipo: 'PROCESAR_PAGO',
  reaches: Estado.PAGO_PROCESADO,
  event: 'SagaPagoProcesado',
  action: ({ sagaId, datos, resourceId, results }) => ({
    participant: 'pagos',
    method: 'POST',
    path: '/pagos',
    body: { ...datos.pago, id: resourceId, id_campana: idOf(results, 'CREAR_CAMPANA'), saga_id: sagaId },
  }),
  policy: step,
  compensation: {
    tipo: 'REVERTIR_PAGO',
    action: ({ resourceId }) => ({ participant: 'pagos', method: 'PATCH', path: `/pagos/${resourceId}/revertir` }),
    policy: compensation,
  },
});

export const generarReporte = ({ step, compensation }: Policies): Step => ({
  tipo: 'GENERAR_REPORTE',
  reaches: Estado.REPORTE_GENERADO,
  event: 'SagaReporteGenerado',
  action: ({ sagaId, datos, resourceId, results }) => ({
    participant: 'reporting',
    method: 'POST',
    path: '/reporting',
    body: {
      tipo_reporte: datos.reporte.tipo_reporte,
      filtros: (datos.reporte.filtros ?? {}) as Json,
      id: resourceId,
      id_campana: idOf(results, 'CREAR_CAMPANA'),
      saga_id: sagaId,
    },
  }),
  policy: step,
  compensation: {
    tipo: 'CANCELAR_REPORTE',
    action: ({ resourceId }) => ({ participant: 'reporting', method: 'PATCH', path: `/reporting/${resourceId}/cancel` }),
    policy: compensation,
  },
});

export function version1(policies: Policies): SagaDefinition<CrearCampanaCompleta> {
  return {
    tipo: TIPO_CREAR_CAMPANA_COMPLETA,
    version: 1,
    steps: [crearCampana(policies), procesarPago(policies), generarReporte(policies)],
  };
}
