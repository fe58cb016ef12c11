// The zod schemas of the HTTP contract: what the routes parse (queries) and
// what they answer (bodies). The routes validate with them and the OpenAPI
// document (src/http/openapi.ts) is generated from them: one source of truth.
// Answer objects are loose: the contract adds fields and never renames one.
import { z } from 'zod';
import { ALL_STATES } from '../saga/states.js';

/**
 * A whole-number query parameter from `min` to `max`, `def` when absent. Only
 * digits are accepted, so `1.5`, `-1` and `1e3` are refused, and a number too
 * large for JavaScript is simply over `max`.
 */
export const intParam = (def: number, min: number, max: number, description: string) =>
  z
    .string()
    .regex(/^\d+$/, 'debe ser un número entero')
    .transform(Number)
    .pipe(z.number().min(min).max(max))
    .optional()
    .transform((v) => v ?? def)
    .meta({ type: 'integer', minimum: min, maximum: max, default: def, description });

export const estadoSchema = z.enum(ALL_STATES as [string, ...string[]], {
  message: `debe ser uno de ${ALL_STATES.join(', ')}`,
});

/** GET /saga/: filters and paging. An empty parameter means no filter (see parseQuery). */
export const listQuerySchema = z.object({
  estado: estadoSchema.optional().meta({ description: 'Solo las SAGAs en este estado' }),
  tipo: z.string().min(1).max(100).optional().meta({ description: 'Solo las SAGAs de este tipo' }),
  pagina: intParam(1, 1, 1_000_000, 'Página, desde 1'),
  limite: intParam(10, 1, 100, 'SAGAs por página, hasta 100'),
});

/** `?esperar_ms=N` on status: wait up to N ms (at most 30 s) for the saga to end. */
export const statusQuerySchema = z.object({
  esperar_ms: intParam(0, 0, 30_000, 'Espera hasta N ms a que la SAGA termine antes de contestar'),
});

export const sagaIdParams = z.object({ saga_id: z.string().meta({ description: 'Id de la SAGA (UUID)' }) });

/** An optional Idempotency-Key header on POSTs that start a saga. */
export const idempotencyHeaders = z.object({
  'Idempotency-Key': z
    .string()
    .max(200)
    .optional()
    .meta({ description: 'Un reintento con la misma clave devuelve la misma SAGA' }),
});

const isoTime = z.string().meta({ format: 'date-time' });

export const outcomeSchema = z.looseObject({
  id: z.string(),
  tipo: z.string(),
  exitoso: z.boolean(),
  error: z.string().nullable(),
  fecha_ejecucion: isoTime,
  resultado: z.unknown(),
});

export const sagaStatusSchema = z
  .looseObject({
    saga_id: z.uuid(),
    estado: estadoSchema,
    tipo: z.string(),
    pasos: z.array(outcomeSchema),
    compensaciones: z.array(outcomeSchema),
    fecha_inicio: isoTime,
    fecha_fin: isoTime.nullable(),
    error_message: z.string().nullable(),
  })
  .meta({ title: 'EstadoSaga' });

export const sagaListSchema = z
  .looseObject({
    sagas: z.array(sagaStatusSchema),
    total: z.number().int().min(0),
    pagina: z.number().int().min(1),
    limite: z.number().int().min(1),
  })
  .meta({ title: 'ListaSagas' });

export const sagaStartedSchema = z
  .looseObject({
    exito: z.literal(true),
    saga_id: z.uuid(),
    estado: estadoSchema,
    mensaje: z.string(),
    datos_iniciales: z.record(z.string(), z.unknown()),
  })
  .meta({ title: 'SagaIniciada' });

export const healthSchema = z
  .looseObject({
    status: z.enum(['healthy', 'unhealthy']),
    service: z.string(),
    database: z.enum(['ok', 'error']),
  })
  .meta({ title: 'Salud' });

export const fieldProblemSchema = z.looseObject({ campo: z.string(), mensaje: z.string() });

export const errorSchema = z
  .looseObject({
    error: z.string().meta({ description: 'Código estable del error' }),
    detalle: z.union([z.string(), z.array(fieldProblemSchema)]),
    detail: z.string().meta({ description: 'La misma información que detalle, en una línea' }),
  })
  .meta({ title: 'Error' });
