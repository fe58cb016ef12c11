// The body of POST /saga/crear-campana-completa. Only shape and types are checked
// here: business rules (amount limits, dates, report types) belong to the
// participants, and their refusals are what the saga compensates.
import { z } from 'zod';

const text = z.string().trim().min(1).max(1_000);
const dateText = z.string().max(100).refine((v) => !Number.isNaN(Date.parse(v)), 'debe ser una fecha');

/**
 * A money amount, as a shape: a positive number of whole cents, at most 10^12.
 * Whether the amount is acceptable (a maximum, a currency) is the participant's rule.
 */
const amount = z
  .number()
  .finite()
  .min(0.01, 'debe ser al menos 0.01')
  .max(1e12, 'debe ser como máximo 1000000000000')
  .refine((v) => Math.abs(v * 100 - Math.round(v * 100)) < 1e-6, 'debe tener como máximo 2 decimales');

/** A year: longer deadlines are a mistake, and would overflow a timestamp long before they were useful. */
export const MAX_TIMEOUT_MINUTOS = 525_600;

/** Report types the reference Reporting service knows (documentation: which ones it accepts is its rule). */
const REPORT_TYPES = ['metricas_generales', 'rendimiento_campana', 'conversiones', 'pagos_afiliado'];

export const crearCampanaCompletaSchema = z.object({
  campana: z.object({
    nombre: text.describe('Nombre'),
    tipo: text.describe('Tipo'),
    presupuesto: z.object({ monto: amount.describe('Presupuesto'), moneda: text.describe('Moneda') }),
    fecha_inicio: dateText.describe('Inicio'),
    fecha_fin: dateText.describe('Fin'),
    id_afiliado: text.describe('Afiliado'),
    descripcion: z.string().max(10_000).optional().describe('Descripción'),
  }).describe('Campaña'),
  pago: z.object({
    id_afiliado: text.describe('Afiliado'),
    monto: amount.describe('Monto'),
    moneda: text.describe('Moneda'),
    referencia_pago: text.describe('Referencia de pago'),
  }).describe('Pago'),
  reporte: z
    .object({
      tipo_reporte: text.meta({ description: 'Tipo de reporte', examples: REPORT_TYPES }),
      filtros: z
        .record(z.string().max(200), z.unknown())
        .refine((f) => JSON.stringify(f).length <= 16_384, 'debe ocupar como máximo 16 KB')
        .optional()
        .describe('Filtros'),
      // The team's web front end sends the report's dates here, beside tipo_reporte.
      fecha_inicio: z.string().max(100).optional().describe('Desde (sin filtros)'),
      fecha_fin: z.string().max(100).optional().describe('Hasta (sin filtros)'),
    })
    .transform(withDatesAsFiltros)
    .describe('Reporte'),
  timeout_minutos: z.number().positive().finite().max(MAX_TIMEOUT_MINUTOS).default(30).describe('Plazo (minutos)'),
});

/**
 * `reporte: {tipo_reporte, fecha_inicio, fecha_fin}` (no `filtros`) means the
 * dates are the report's filters: they become `filtros`, which is what the
 * Reporting service reads. Given `filtros` are left as they are.
 */
function withDatesAsFiltros<R extends { filtros?: Record<string, unknown>; fecha_inicio?: string; fecha_fin?: string }>(
  reporte: R,
): R {
  if (reporte.filtros !== undefined) return reporte;
  const dates = Object.fromEntries(
    (['fecha_inicio', 'fecha_fin'] as const).flatMap((k) => (reporte[k] === undefined || reporte[k] === '' ? [] : [[k, reporte[k]]])),
  );
  return Object.keys(dates).length === 0 ? reporte : { ...reporte, filtros: dates };
}

export type CrearCampanaCompletaRequest = z.infer<typeof crearCampanaCompletaSchema>;
/** The saga's data: the request less its timeout, which the saga keeps itself. */
export type CrearCampanaCompleta = Omit<CrearCampanaCompletaRequest, 'timeout_minutos'>;
