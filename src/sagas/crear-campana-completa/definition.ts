// The campaign saga of the Aeropartners team, as data. To add a step, add an
// entry here (and, if it is a new participant, its base URL in config).
import type { CallPolicy, Json, SagaDefinition } from '../../saga/definition.js';
import { SagaState } from '../../saga/states.js';
import type { CrearCampanaCompleta } from './request.js';

export const TIPO_CREAR_CAMPANA_COMPLETA = 'CREAR_CAMPANA_COMPLETA';

export interface PolicyOptions {
  /** Multiplies every backoff delay; tests use a small value. */
  backoffScale?: number;
  /** Per-call timeout for steps and compensations. */
  callTimeoutMs?: number;
}

function policies(opts: PolicyOptions): { step: CallPolicy; compensation: CallPolicy } {
  const scale = opts.backoffScale ?? 1;
  const timeoutMs = opts.callTimeoutMs ?? 5_000;
  return {
    // A step gives up after a few seconds of trying: the saga then fails and compensates.
    step: { timeoutMs, retry: { maxAttempts: 4, backoff: { initialMs: 200 * scale, maxMs: 5_000 * scale, factor: 2 } } },
    // An undo is retried for several minutes before an operator is asked to look.
    compensation: {
      timeoutMs,
      retry: { maxAttempts: 12, backoff: { initialMs: 500 * scale, maxMs: 60_000 * scale, factor: 2 } },
    },
  };
}

const idOf = (results: Readonly<Record<string, Json>>, tipo: string): Json => {
  const r = results[tipo];
  return r !== null && typeof r === 'object' && !Array.isArray(r) ? (r.id ?? null) : null;
};

export function crearCampanaCompleta(opts: PolicyOptions = {}): SagaDefinition<CrearCampanaCompleta> {
  const { step, compensation } = policies(opts);
  return {
    tipo: TIPO_CREAR_CAMPANA_COMPLETA,
    steps: [
      {
        tipo: 'CREAR_CAMPANA',
        reaches: SagaState.CAMPANA_CREADA,
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
      },
      {
        tipo: 'PROCESAR_PAGO',
        reaches: SagaState.PAGO_PROCESADO,
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
      },
      {
        tipo: 'GENERAR_REPORTE',
        reaches: SagaState.REPORTE_GENERADO,
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
      },
    ],
  };
}
