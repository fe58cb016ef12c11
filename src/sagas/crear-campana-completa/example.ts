import type { CrearCampanaCompletaRequest } from './request.js';

/**
 * The seed's example body of POST /saga/crear-campana-completa: what the smoke
 * script sends, and the base of the tests' and the chaos suite's requests.
 */
export function exampleRequest(): CrearCampanaCompletaRequest {
  return {
    campana: {
      nombre: 'Campaña Test',
      tipo: 'PROMOCIONAL',
      presupuesto: { monto: 1000.0, moneda: 'USD' },
      fecha_inicio: '2025-01-01T00:00:00',
      fecha_fin: '2025-12-31T23:59:59',
      id_afiliado: 'afiliado_test',
      descripcion: 'Campaña de prueba',
    },
    pago: { id_afiliado: 'afiliado_test', monto: 1000.0, moneda: 'USD', referencia_pago: 'ref_test' },
    reporte: { tipo_reporte: 'metricas_generales', filtros: { fecha_inicio: '2025-01-01', fecha_fin: '2025-12-31' } },
    timeout_minutos: 30,
  };
}
