// The zod schemas of the saga routes: what they parse (path, query, body) and
// what they answer. The routes parse with them (src/http/saga-api.ts) and the
// OpenAPI document is generated from them (src/http/openapi.ts): one source of
// truth. Answer objects are loose: the contract adds fields and never renames one.
// Schemas that depend on the saga types served (states, search keys) are built
// by `sagaSchemas(types)`.
import { z } from 'zod';
import { ROLES } from '../operator/tokens.js';
import { OPERATOR_ACTIONS } from '../saga/operations.js';
import type { AnySagaType } from '../saga/saga-type.js';
import { LIFECYCLE_STATES } from '../saga/states.js';
import { hasUnstorable } from './body.js';
import type { ResponseSpec } from './route-spec.js';

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

/** Text PostgreSQL can store, at most `max` characters. */
export const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((v) => !hasUnstorable(v), 'contiene un carácter no permitido');

/** Text PostgreSQL can store, at least one character and at most `max`. */
export const nonEmptyText = (max: number) => text(max).pipe(z.string().min(1));

/** The saga tipo filter of the list, the bulk filters and the statistics. */
export const tipoFilter = nonEmptyText(100).optional().meta({ description: 'Solo las SAGAs de este tipo' });

/**
 * The instants a query may name: years 0001 to 9999. JavaScript parses dates
 * from -271821 to +275760, but PostgreSQL's timestamptz holds none before
 * 4713 BC and reads no signed six-digit year: such a date would reach the
 * database and fail there (a 500), so it is refused here, naming the parameter.
 */
const FIRST_INSTANT_MS = new Date('0001-01-01T00:00:00Z').getTime();
const LAST_INSTANT_MS = new Date('9999-12-31T23:59:59.999Z').getTime();

/** An instant in a query or filter (ISO 8601), as the list, bulk filters and statistics take it. */
export const instant = text(40)
  .refine((v) => !Number.isNaN(Date.parse(v)), 'debe ser una fecha ISO 8601')
  .refine((v) => {
    const ms = Date.parse(v);
    return Number.isNaN(ms) || (ms >= FIRST_INSTANT_MS && ms <= LAST_INSTANT_MS);
  }, 'debe estar entre los años 0001 y 9999')
  .meta({ format: 'date-time' });

const isoTime = z.string().meta({ format: 'date-time' });

/** Every state a list may be filtered by: the lifecycle's and each type's own. */
export const statesOf = (types: readonly AnySagaType[]): string[] => [
  ...new Set([...LIFECYCLE_STATES, ...types.flatMap((t) => t.states)]),
];

/**
 * The longest search key value a filter takes: the longest a saga's own text
 * fields are (1,000 characters), so that every saga can be found by its keys.
 * The saga log indexes a key's hash, never the value (migration 20261204000001).
 */
export const MAX_SEARCH_KEY_LENGTH = 1_000;

/** The business attributes sagas can be searched by (id_afiliado, referencia_pago, …). */
export const searchKeysOf = (types: readonly AnySagaType[]): string[] => [...new Set(types.flatMap((t) => t.searchKeyNames))];

/** `?esperar_ms=N` on status: wait up to N ms (at most 30 s) for the saga to end. */
export const statusQuerySchema = z.object({
  esperar_ms: intParam(0, 0, 30_000, 'Espera hasta N ms a que la SAGA termine antes de contestar'),
});

export const sagaIdParams = z.object({ saga_id: z.string().max(36).meta({ description: 'Id de la SAGA (UUID)' }) });

const accion = z.enum(OPERATOR_ACTIONS).meta({ description: 'La acción de operador' });
export const actionParams = z.object({ saga_id: sagaIdParams.shape.saga_id, accion });
export const bulkParams = z.object({ accion });
export const loteParams = z.object({ lote_id: z.string().max(36).meta({ description: 'Id del lote (UUID)' }) });

/** An optional Idempotency-Key header: a repeat returns the first answer. */
export const idempotencyHeaders = z.object({
  'Idempotency-Key': z
    .string()
    .max(200)
    .optional()
    .meta({ description: 'Un reintento con la misma clave devuelve la primera respuesta y actúa una vez' }),
});

/** The body of an operator action (single or bulk). */
export const operatorBody = z
  .object({
    motivo: text(2_000).optional().default('').meta({ description: 'Por qué (queda en la auditoría); obligatorio para omitir' }),
    operacion_id: nonEmptyText(200)
      .optional()
      .meta({ description: 'Id de la operación, si no va en la cabecera Idempotency-Key' }),
    compensacion: text(100).optional().meta({ description: 'omitir: qué compensación (su tipo, p. ej. REVERTIR_PAGO)' }),
    detener_plazo: z.boolean().optional().meta({ description: 'pausar: timeout_minutos deja de contar mientras está pausada' }),
    version: z.number().int().positive().optional().meta({ description: 'migrar: la versión de la definición destino' }),
  })
  .meta({ title: 'AccionDeOperador' });

export type OperatorBody = z.infer<typeof operatorBody>;

export const outcome = z.looseObject({
  id: z.string(),
  tipo: z.string(),
  exitoso: z.boolean(),
  error: z.string().nullable(),
  fecha_ejecucion: isoTime,
  resultado: z.unknown(),
  manual: z.boolean().optional().meta({ description: 'true: un operador la declaró hecha a mano (omitir)' }),
});

/** An operator action as audited: who, when, why, and what the saga decided. */
export const operation = z
  .looseObject({
    id: z.string(),
    accion: z.string(),
    quien: z.string(),
    motivo: z.string(),
    fecha: isoTime,
    resultado: z.string(),
    detalle: z.string().nullable(),
  })
  .meta({ title: 'Operacion' });

export const healthSchema = z
  .looseObject({
    status: z.enum(['healthy', 'unhealthy']),
    service: z.string(),
    database: z.enum(['ok', 'error']),
  })
  .meta({ title: 'Salud' });

export const eventsSchema = z
  .looseObject({
    saga_id: z.uuid(),
    eventos: z.array(
      z.looseObject({
        secuencia: z.number().int().min(1),
        tipo: z.string(),
        estado: z.string(),
        fecha: isoTime,
        payload: z.unknown(),
        publicado: z.boolean(),
      }),
    ),
  })
  .meta({ title: 'EventosSaga' });

export const definitionsSchema = z
  .looseObject({
    definiciones: z.array(
      z.looseObject({
        tipo: z.string(),
        version: z.number().int(),
        vigente: z.boolean(),
        pasos: z.array(
          z.looseObject({
            tipo: z.string(),
            compensacion: z.string().nullable(),
            en_curso: z.number().int().min(0).meta({ description: 'SAGAs de esta versión que están en este paso' }),
            compensando: z.number().int().min(0).meta({ description: 'SAGAs de esta versión que están deshaciendo este paso (su compensación)' }),
          }),
        ),
        en_curso: z.number().int().min(0).meta({ description: 'SAGAs de esta versión que no han terminado' }),
      }),
    ),
  })
  .meta({ title: 'Definiciones' });

export const whoAmISchema = z.looseObject({ nombre: z.string(), rol: z.enum(ROLES) }).meta({ title: 'Sesion' });

export const pendingSchema = z
  .looseObject({ operacion_id: z.string(), resultado: z.literal('pendiente'), detalle: z.string() })
  .meta({ title: 'OperacionPendiente' });

export const dryRunSchema = z
  .looseObject({ dry_run: z.literal(true), accion: z.string(), total: z.number().int().min(0), primeras: z.array(z.uuid()) })
  .meta({ title: 'Simulacion' });

export const loteSchema = z
  .looseObject({
    lote_id: z.uuid(),
    accion: z.string(),
    estado: z.enum(['en_curso', 'terminado']),
    total: z.number().int().min(0),
    procesadas: z.number().int().min(0),
    aceptadas: z.number().int().min(0),
    rechazadas: z.number().int().min(0),
    pendientes: z.number().int().min(0),
    quien: z.string(),
    motivo: z.string(),
    filtro: z.record(z.string(), z.unknown()),
    creado_en: isoTime,
    terminado_en: isoTime.nullable(),
  })
  .meta({ title: 'Lote' });

export const fieldProblemSchema = z.looseObject({ campo: z.string(), mensaje: z.string() });

export const errorSchema = z
  .looseObject({
    error: z.string().meta({ description: 'Código estable del error' }),
    detalle: z.union([z.string(), z.array(fieldProblemSchema)]),
    detail: z.string().meta({ description: 'La misma información que detalle, en una línea' }),
  })
  .meta({ title: 'Error' });

/** An error answer of a route, as its spec documents it. */
export const errorResponse = (description: string): ResponseSpec => ({ description, schema: errorSchema });

/** A refused operator action: the reason, and the audited operation. */
export const refusedSchema = errorSchema.extend({ operacion: operation }).meta({ title: 'AccionRechazada' });

/** The schemas that depend on the saga types an app serves. */
export function sagaSchemas(types: readonly AnySagaType[]) {
  const states = statesOf(types);
  const estado = z.enum(states as [string, ...string[]], { message: `debe ser uno de ${states.join(', ')}` });

  /** A list filter, from query parameters (strings) or a bulk operation's body. */
  const filter = z.object({
    estado: estado.optional().meta({ description: 'Solo las SAGAs en este estado' }),
    tipo: tipoFilter,
    desde: instant.optional().meta({ description: 'fecha_inicio en o después de este instante (ISO 8601)' }),
    hasta: instant.optional().meta({ description: 'fecha_inicio antes de este instante (ISO 8601)' }),
    atascadas: z
      .enum(['true', 'false'])
      .optional()
      .meta({ description: 'true: solo las atascadas (aparcadas, esperando versión o sin avanzar cuando deberían)' }),
    ...Object.fromEntries(
      searchKeysOf(types).map((k) => [k, nonEmptyText(MAX_SEARCH_KEY_LENGTH).optional().meta({ description: `Dato de negocio ${k}` })]),
    ),
  });

  const listQuery = filter.extend({
    pagina: intParam(1, 1, 1_000_000, 'Página, desde 1'),
    limite: intParam(10, 1, 100, 'SAGAs por página, hasta 100'),
  });

  const bulkBody = operatorBody
    .extend({
      filtro: filter.default({}).meta({ description: 'El filtro de la lista; vacío: todas las SAGAs' }),
      dry_run: z.boolean().optional().default(false).meta({ description: 'true: solo cuenta y muestra las primeras, sin actuar' }),
    })
    .meta({ title: 'AccionEnLote' });

  const sagaStatus = z
    .looseObject({
      saga_id: z.uuid(),
      estado,
      revision: z
        .number()
        .int()
        .min(1)
        .meta({ description: 'Crece con cada cambio de la SAGA: de dos respuestas, la de revision mayor es la más reciente' }),
      tipo: z.string(),
      pasos: z.array(outcome),
      compensaciones: z.array(outcome),
      fecha_inicio: isoTime,
      fecha_fin: isoTime.nullable(),
      error_message: z.string().nullable(),
      version_definicion: z.number().int(),
      pausada: z.boolean(),
      aparcada: z.looseObject({ motivo: z.string(), fecha: isoTime.nullable() }).nullable(),
      esperando_version: z.boolean(),
      atascada: z.boolean(),
      plan_compensacion: z.array(
        z.looseObject({ tipo: z.string(), estado: z.enum(['hecha', 'fallida', 'omitida', 'no_intentada', 'en_curso']) }),
      ),
      operaciones: z.array(operation),
      paso_actual: z
        .looseObject({
          paso: z.string().meta({ description: 'El paso en curso (al compensar: el paso que se deshace)' }),
          fase: z.enum(['avance', 'compensacion']),
          intento: z.number().int().min(0).meta({ description: 'Intentos empezados de la llamada en curso' }),
          desde: isoTime.nullable().meta({ description: 'Cuándo empezó el primer intento de la llamada en curso' }),
          en_vuelo: z.boolean().meta({ description: 'true: un intento espera respuesta; false: espera para reintentar o para empezar' }),
          reintento: isoTime.nullable().meta({ description: 'Cuándo toca el próximo intento, si espera para reintentar' }),
        })
        .nullable()
        .meta({ description: 'Dónde está una SAGA que no ha terminado; null cuando terminó' }),
    })
    .meta({ title: 'EstadoSaga' });

  return {
    estado,
    filter,
    listQuery,
    bulkBody,
    sagaStatus,
    sagaList: z
      .looseObject({
        sagas: z.array(sagaStatus),
        total: z.number().int().min(0),
        pagina: z.number().int().min(1),
        limite: z.number().int().min(1),
      })
      .meta({ title: 'ListaSagas' }),
    sagaStarted: z
      .looseObject({
        exito: z.literal(true),
        saga_id: z.uuid(),
        estado,
        mensaje: z.string(),
        datos_iniciales: z.record(z.string(), z.unknown()),
      })
      .meta({ title: 'SagaIniciada' }),
    actionAnswer: sagaStatus.extend({ operacion: operation }).meta({ title: 'SagaConOperacion' }),
  };
}

export type SagaSchemas = ReturnType<typeof sagaSchemas>;
