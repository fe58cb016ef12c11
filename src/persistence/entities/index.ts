// The saga log's tables as MikroORM entities. Their columns are created by the
// migrations; these schemas only map them.
import { EntitySchema } from '@mikro-orm/core';
import type { SagaSnapshot } from '../../saga/machine.js';

export interface SagaLog {
  id: string;
  tipo: string;
  estado: string;
  datos: unknown;
  snapshot: SagaSnapshot;
  version: number;
  timeoutMinutos: number;
  fechaLimite: Date;
  errorMessage: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  fechaInicio: Date;
  fechaActualizacion: Date;
  fechaFin: Date | null;
  shard: number;
}

/** A step's or a compensation's outcome; both tables have this shape. */
export interface SagaOutcomeRow {
  id: string;
  sagaId: string;
  orden: number;
  tipo: string;
  exitoso: boolean;
  error: string | null;
  resultado: unknown;
  intentos: number;
  fechaEjecucion: Date;
}
export type SagaPaso = SagaOutcomeRow;
export type SagaCompensacion = SagaOutcomeRow;

export interface SagaEvent {
  id: string;
  sagaId: string;
  secuencia: number;
  tipo: string;
  estado: string;
  payload: unknown;
  fecha: Date;
  publicadoEn: Date | null;
  epoch: number | null;
}

export const SagaLogSchema = new EntitySchema<SagaLog>({
  name: 'SagaLog',
  tableName: 'saga_log',
  properties: {
    id: { type: 'uuid', primary: true },
    tipo: { type: 'text' },
    estado: { type: 'text' },
    datos: { type: 'json' },
    snapshot: { type: 'json' },
    version: { type: 'integer' },
    timeoutMinutos: { type: 'double', fieldName: 'timeout_minutos' },
    fechaLimite: { type: 'Date', fieldName: 'fecha_limite' },
    errorMessage: { type: 'text', nullable: true, fieldName: 'error_message' },
    idempotencyKey: { type: 'text', nullable: true, fieldName: 'idempotency_key' },
    requestHash: { type: 'text', nullable: true, fieldName: 'request_hash' },
    fechaInicio: { type: 'Date', fieldName: 'fecha_inicio' },
    fechaActualizacion: { type: 'Date', fieldName: 'fecha_actualizacion' },
    fechaFin: { type: 'Date', nullable: true, fieldName: 'fecha_fin' },
    shard: { type: 'integer' },
  },
});

function outcomeSchema(name: string, tableName: string): EntitySchema<SagaOutcomeRow> {
  return new EntitySchema<SagaOutcomeRow>({
    name,
    tableName,
    properties: {
      id: { type: 'uuid', primary: true },
      sagaId: { type: 'uuid', fieldName: 'saga_id' },
      orden: { type: 'integer' },
      tipo: { type: 'text' },
      exitoso: { type: 'boolean' },
      error: { type: 'text', nullable: true },
      resultado: { type: 'json', nullable: true },
      intentos: { type: 'integer' },
      fechaEjecucion: { type: 'Date', fieldName: 'fecha_ejecucion' },
    },
  });
}

export const SagaPasoSchema = outcomeSchema('SagaPaso', 'saga_pasos');
export const SagaCompensacionSchema = outcomeSchema('SagaCompensacion', 'saga_compensaciones');

export const SagaEventSchema = new EntitySchema<SagaEvent>({
  name: 'SagaEvent',
  tableName: 'saga_events',
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    sagaId: { type: 'uuid', fieldName: 'saga_id' },
    secuencia: { type: 'integer' },
    tipo: { type: 'text' },
    estado: { type: 'text' },
    payload: { type: 'json' },
    fecha: { type: 'Date' },
    publicadoEn: { type: 'Date', nullable: true, fieldName: 'publicado_en' },
    epoch: { type: 'bigint', nullable: true },
  },
});

/** Sagas per (tipo, estado), kept by triggers on saga_log (see its migration). */
export interface SagaCount {
  tipo: string;
  estado: string;
  n: string;
}

export const SagaCountSchema = new EntitySchema<SagaCount>({
  name: 'SagaCount',
  tableName: 'saga_counts',
  properties: {
    tipo: { type: 'text', primary: true },
    estado: { type: 'text', primary: true },
    n: { type: 'bigint' },
  },
});

export const sagaEntities = [SagaLogSchema, SagaPasoSchema, SagaCompensacionSchema, SagaEventSchema, SagaCountSchema];
