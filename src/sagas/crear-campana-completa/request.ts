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
  reporte: z.object({
    tipo_reporte: text,
    filtros: z.record(z.string(), z.unknown()).optional(),
  }),
  timeout_minutos: z.number().positive().finite().default(30),
});

export type CrearCampanaCompletaRequest = z.infer<typeof crearCampanaCompletaSchema>;
/** The saga's data: the request less its timeout, which the saga keeps itself. */
export type CrearCampanaCompleta = Omit<CrearCampanaCompletaRequest, 'timeout_minutos'>;
