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

/**
 * An order's arguments as the HTTP body names them and as saga_ordenes.datos and
 * saga_operaciones.datos store them; each is present only when given.
 */
export interface OrderData {
  compensacion?: string;
  detener_plazo?: boolean;
  version?: number;
}

/** An order's arguments as they are stored (and named in the HTTP body). */
export function orderData(o: Pick<OperatorOrder, 'compensacion' | 'detenerPlazo' | 'version'>): OrderData {
  return {
    ...(o.compensacion == null ? {} : { compensacion: o.compensacion }),
    ...(o.detenerPlazo === undefined ? {} : { detener_plazo: o.detenerPlazo }),
    ...(o.version === undefined ? {} : { version: o.version }),
  };
}

/** Stored (or HTTP) arguments as an order's fields. */
export function orderArguments(d: OrderData): { compensacion?: string; detenerPlazo?: boolean; version?: number } {
  return {
    ...(d.compensacion === undefined ? {} : { compensacion: d.compensacion }),
    ...(d.detener_plazo === undefined ? {} : { detenerPlazo: d.detener_plazo }),
    ...(d.version === undefined ? {} : { version: d.version }),
  };
}

/** A row of saga_operaciones: the order and what the machine decided. */
export interface OperationRecord extends OperatorOrder {
  decididaEn: string;
  resultado: 'aceptada' | 'rechazada';
  detalle: string | null;
}
