// Operator orders: what a person asks of one saga. Each is a message to the
// saga's actor, decided by the machine like any other, and committed with its
// audit row (saga_operaciones) and its event.

export const OPERATOR_ACTIONS = ['cancelar', 'reintentar', 'omitir', 'pausar', 'reanudar', 'migrar'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

export const isOperatorAction = (s: string): s is OperatorAction => (OPERATOR_ACTIONS as readonly string[]).includes(s);

export interface OperatorOrder {
  /** The operation id: the requester's Idempotency-Key or operacion_id, unique across sagas. */
  id: string;
  accion: OperatorAction;
  /** Who asked: the name of the operator's token. */
  quien: string;
  motivo: string;
  /** When it was asked (ISO time). */
  fecha: string;
  /** omitir: which compensation (its tipo, e.g. REVERTIR_PAGO). */
  compensacion?: string | null;
  /** pausar: timeout_minutos stops counting while paused. */
  detenerPlazo?: boolean;
  /** migrar: the definition version to move to. */
  version?: number;
  /** The HTTP request that carried it, for the audit. */
  requestId?: string | null;
  /** The bulk operation it belongs to, if any. */
  loteId?: string | null;
}

/** A row of saga_operaciones: the order and what the machine decided. */
export interface OperationRecord extends OperatorOrder {
  decididaEn: string;
  resultado: 'aceptada' | 'rechazada';
  detalle: string | null;
}
