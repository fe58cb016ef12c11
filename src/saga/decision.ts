// What the saga machine decides, and what it is told: its messages, its
// effects, the rows and events it writes, and the environment a decision runs
// in. Shared by the machine (machine.ts) and the parts of its draft.
import type { AnySagaDefinition, CallOutcome, Json, ParticipantCommand } from './definition.js';
import type { OperationRecord, OperatorOrder } from './operations.js';
import type { MachineRules } from './rules.js';
import type { SagaSnapshot } from './snapshot.js';

export type { SagaSnapshot, Phase, CompensationStatus, CompensationEntry } from './snapshot.js';

/** Identifies one attempt of one call, so that late answers to old attempts are ignored. */
export interface CallRef {
  phase: 'forward' | 'compensating';
  step: string;
  attempt: number;
}

export type SagaMessage =
  /**
   * The actor (re)starts: issue or schedule whatever is due. `fresh`: the saga
   * was just accepted and nobody has acted on its first intent yet, so the
   * call in flight is its first attempt, not an interrupted one. `orders`:
   * operator orders wait in the mailbox (the actor takes them first).
   * `callingHere`: the call in flight was started by this very actor (an
   * order it took before this resume started it): its answer is on its way,
   * so it is neither interrupted nor made again.
   */
  | { type: 'resume'; fresh?: boolean; orders?: boolean; callingHere?: boolean }
  | { type: 'callCompleted'; call: CallRef; outcome: CallOutcome }
  | { type: 'retryDue'; call: CallRef }
  | { type: 'deadlineReached' }
  /** `target`: for `migrar`, the definition version to move to, if this process has it. */
  | { type: 'operator'; order: OperatorOrder; target?: AnySagaDefinition };

export type Effect =
  | {
      type: 'call';
      call: CallRef;
      /** The step or compensation tipo, for logs. */
      tipo: string;
      command: ParticipantCommand;
      idempotencyKey: string;
      timeoutMs: number;
    }
  | { type: 'scheduleRetry'; call: CallRef; delayMs: number }
  | { type: 'armDeadline'; delayMs: number }
  /** Nothing will happen without a new order (terminal or parked): the actor can stop. */
  | { type: 'stop' };

/** A row of saga_pasos or saga_compensaciones. */
export interface OutcomeRecord {
  id: string;
  /** The step's position in its definition (pasos) or in the compensation plan (compensaciones), from 1. */
  orden: number;
  tipo: string;
  exitoso: boolean;
  error: string | null;
  resultado: Json;
  intentos: number;
  /** Done by hand, declared by an operator (omitir), not by a call. */
  manual: boolean;
  fechaEjecucion: string;
}

/** A row of saga_events. */
export interface EventRecord {
  secuencia: number;
  tipo: string;
  estado: string;
  payload: Json;
  fecha: string;
}

/** What an operator order got: the answer its requester waits for. */
export interface OrderReply {
  orderId: string;
  resultado: 'aceptada' | 'rechazada';
  detalle: string | null;
}

export interface Decision {
  snapshot: SagaSnapshot;
  /** The snapshot or records changed: they must be committed before the effects run. */
  changed: boolean;
  pasos: OutcomeRecord[];
  compensaciones: OutcomeRecord[];
  events: EventRecord[];
  operaciones: OperationRecord[];
  effects: Effect[];
  reply: OrderReply | null;
}

export interface DecisionEnv {
  now: Date;
  random: () => number;
  newId: () => string;
  /** The machine's rules; production's (PRODUCTION_RULES) unless a fault was switched on at start (src/faults.ts). */
  rules?: MachineRules;
}

export const EVENT = {
  iniciada: 'SagaIniciada',
  pasoEjecutado: 'SagaPasoEjecutado',
  completada: 'SagaCompletada',
  fallida: 'SagaFallida',
  compensacionIniciada: 'SagaCompensacionIniciada',
  compensacionCompletada: 'SagaCompensacionCompletada',
  compensacionFallida: 'SagaCompensacionFallida',
  aparcada: 'SagaAparcada',
  /** Followed by the action, capitalised: SagaOperacionCancelar, … */
  operacion: 'SagaOperacion',
} as const;
