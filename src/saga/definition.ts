// A saga is data: an ordered list of steps, each with the command it sends to a
// participant, the compensation that undoes it, its call policy and the state it
// reaches. Steps return commands; they never perform I/O themselves.
import type { SagaState } from './states.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Which participant service a command goes to; the actor maps it to a base URL. */
export type ParticipantName = 'campaigns' | 'pagos' | 'reporting';

/** A call to a participant, described but not performed. */
export interface ParticipantCommand {
  participant: ParticipantName;
  method: 'POST' | 'PATCH';
  path: string;
  body?: Json;
}

/** What a participant's answer means to the saga. */
export type CallOutcome =
  | { kind: 'ok'; status: number; resultado: Json }
  /** A business answer (4xx): the call was refused and had no effect. */
  | { kind: 'rejected'; status: number; error: string }
  /** Network error, timeout or 5xx: the call may or may not have taken effect. */
  | { kind: 'transient'; error: string };

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export interface RetryPolicy {
  /** Total attempts, the first one included. */
  maxAttempts: number;
  backoff: BackoffPolicy;
}

export interface CallPolicy {
  /** How long one call may take before its outcome is declared unknown. */
  timeoutMs: number;
  retry: RetryPolicy;
}

/** What a step's command may depend on: all pure data. */
export interface StepInput<D> {
  sagaId: string;
  datos: D;
  /** The id this step's resource gets: derived from saga and step, known before the call. */
  resourceId: string;
  /** Results of the steps completed so far, by step tipo. */
  results: Readonly<Record<string, Json>>;
}

export interface StepDefinition<D> {
  /** Name of the step in saga_pasos, e.g. CREAR_CAMPANA. */
  tipo: string;
  /** State the saga reaches when this step succeeds. */
  reaches: SagaState;
  /** Event written when this step succeeds, e.g. SagaCampañaCreada. */
  event: string;
  action: (input: StepInput<D>) => ParticipantCommand;
  policy: CallPolicy;
  compensation: {
    /** Name of the compensation in saga_compensaciones, e.g. CANCELAR_CAMPANA. */
    tipo: string;
    action: (input: StepInput<D>) => ParticipantCommand;
    policy: CallPolicy;
  };
}

export interface SagaDefinition<D> {
  tipo: string;
  steps: readonly StepDefinition<D>[];
}

/** Any saga definition, whatever its data type: what a registry of sagas holds. */
export type AnySagaDefinition = SagaDefinition<never>;
