// The body of POST /saga/crear-campana-completa. Only shape and types are checked
// here: business rules (amount limits, dates, report types) belong to the
// participants, and their refusals are what the saga compensates.
import { z } from 'zod';

const text = z.string().trim().min(1);
const dateText = z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'debe ser una fecha');

export const crearCampanaCompletaSchema = z.object({
  campana: z.object({
    nombre: text,
    tipo: text,
    presupuesto: z.object({ monto: z.number(), moneda: text }),
    fecha_inicio: dateText,
    fecha_fin: dateText,
    id_afiliado: text,
    descripcion: z.string().optional(),
  }),
  pago: z.object({
    id_afiliado: text,
    monto: z.number(),
    moneda: text,
    referencia_pago: text,
  }),
  reporte: z
    .object({
      tipo_reporte: text,
      filtros: z.record(z.string(), z.unknown()).optional(),
      // The team's web front end sends the report's dates here, beside tipo_reporte.
      fecha_inicio: z.string().optional(),
      fecha_fin: z.string().optional(),
    })
    .transform(withDatesAsFiltros),
  timeout_minutos: z.number().positive().finite().default(30),
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
