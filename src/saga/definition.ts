// A saga is data: a versioned, ordered list of steps, each with the command it
// sends to a participant, the compensation that undoes it, its call policy and
// the state it reaches. Steps return commands; they never perform I/O themselves.
// Nothing here names a business: the sagas live under src/sagas/.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A call to a participant, described but not performed. `participant` names a base URL of the definition. */
export interface ParticipantCommand {
  participant: string;
  method: 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  body?: Json;
}

/** What a participant's answer means to the saga. */
export type CallOutcome =
  | { kind: 'ok'; status: number; resultado: Json }
  /** A business answer (4xx): the call was refused and had no effect. */
  | { kind: 'rejected'; status: number; error: string }
  /**
   * The outcome is unknown or the call can succeed later: a network error, a
   * timeout, a 5xx, a "try again" 4xx, or an answer that says our side is
   * misconfigured (401, 403, 3xx), which an operator can fix while we retry.
   */
  | { kind: 'transient'; error: string };

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export interface RetryPolicy {
  /**
   * How long a call is retried, from its first attempt, before giving up. A
   * step never retries past its saga's deadline (timeout_minutos) either.
   */
  budgetMs: number;
  /** Total attempts, the first one and every attempt a crash interrupted included. */
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
  /** Name of the step in saga_pasos, e.g. CREAR_CAMPANA. Snapshots refer to steps by it. */
  tipo: string;
  /** State the saga reaches when this step succeeds. */
  reaches: string;
  /** Event written when this step succeeds. */
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
  /**
   * The version of these steps. A saga runs to its end on the version it
   * started on; change the steps only in a new version (docs/operations.md: "Changing a saga safely").
   */
  version: number;
  steps: readonly StepDefinition<D>[];
}

/** Any saga definition, whatever its data type: what a registry of sagas holds. */
export type AnySagaDefinition = SagaDefinition<never>;

/** The structure of a version: what must not change while the version keeps its number. */
export function fingerprintOf(def: AnySagaDefinition): string {
  return def.steps.map((s) => `${s.tipo}>${s.reaches}>${s.event}/${s.compensation.tipo}`).join('|');
}
