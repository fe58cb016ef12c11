// The lifecycle states every saga passes through, whatever its business: the
// engine's own vocabulary, spelled exactly as the clients read them. The
// states a saga reaches as its steps succeed (CAMPAÑA_CREADA, …) belong to its
// definition, not here.
export const Lifecycle = {
  INICIADA: 'INICIADA',
  COMPLETADA: 'COMPLETADA',
  FALLIDA: 'FALLIDA',
  COMPENSANDO: 'COMPENSANDO',
  COMPENSADA: 'COMPENSADA',
  /** A compensation kept failing after all its retries: an operator must look. */
  COMPENSACION_FALLIDA: 'COMPENSACION_FALLIDA',
} as const;

/** A saga's estado: a lifecycle state or a state its definition's steps reach. */
export type SagaState = string;

export const LIFECYCLE_STATES: readonly string[] = Object.values(Lifecycle);

/** States a saga does not leave by itself; its actor is stopped once it reaches one. */
export const TERMINAL_STATES: readonly string[] = [
  Lifecycle.COMPLETADA,
  Lifecycle.COMPENSADA,
  Lifecycle.COMPENSACION_FALLIDA,
];
