// The saga states of the contract, spelled exactly as the clients read them.
export const SagaState = {
  INICIADA: 'INICIADA',
  CAMPANA_CREADA: 'CAMPAÑA_CREADA',
  PAGO_PROCESADO: 'PAGO_PROCESADO',
  REPORTE_GENERADO: 'REPORTE_GENERADO',
  COMPLETADA: 'COMPLETADA',
  FALLIDA: 'FALLIDA',
  COMPENSANDO: 'COMPENSANDO',
  COMPENSADA: 'COMPENSADA',
  /** A compensation kept failing after all its retries: an operator must look. */
  COMPENSACION_FALLIDA: 'COMPENSACION_FALLIDA',
} as const;

export type SagaState = (typeof SagaState)[keyof typeof SagaState];

export const ALL_STATES: readonly SagaState[] = Object.values(SagaState);

/** States a saga never leaves; its actor is stopped once it reaches one. */
export const TERMINAL_STATES: readonly SagaState[] = [
  SagaState.COMPLETADA,
  SagaState.COMPENSADA,
  SagaState.COMPENSACION_FALLIDA,
];

export const isTerminal = (s: SagaState): boolean => TERMINAL_STATES.includes(s);

export function isSagaState(s: string): s is SagaState {
  return (ALL_STATES as readonly string[]).includes(s);
}
