// What the saga log keeps of a running saga (saga_log.snapshot), and the
// upgrade of snapshots written before steps were referred to by tipo.
import type { AnySagaDefinition, Json } from './definition.js';
import { Lifecycle } from './states.js';

export type Phase = 'forward' | 'compensating' | 'finished';

/** Where one compensation of the plan stands. */
export type CompensationStatus = 'pendiente' | 'hecha' | 'fallida' | 'omitida';

export interface CompensationEntry {
  /** The step it undoes. */
  step: string;
  /** The compensation's own tipo, e.g. REVERTIR_PAGO. */
  tipo: string;
  estado: CompensationStatus;
}

export interface SagaSnapshot {
  /** 2: steps referred to by tipo. Snapshots without it are upgraded on load (`upgradeSnapshot`). */
  format: 2;
  sagaId: string;
  tipo: string;
  /** The version of the definition this saga runs on, from start to end (unless an operator moves it). */
  version: number;
  estado: string;
  phase: Phase;
  /** forward: the step being run; compensating: the step whose compensation is being run; finished: null. */
  step: string | null;
  /** Attempts started for the current call (0 before the first). */
  attempt: number;
  /** The current attempt was started and its outcome is not recorded yet. */
  inFlight: boolean;
  /** When the next attempt is due, while waiting to retry (ISO time). */
  retryAt: string | null;
  /** When the first attempt of the current call started: its retry budget runs from here. */
  callSince: string | null;
  /** When the saga should next change if all is well (a call's timeout, a retry); null when idle on purpose. */
  expectBy: string | null;
  /** Steps whose effect may exist: completed, or called with an unknown outcome. */
  mayHaveEffect: string[];
  /**
   * Forward steps with an attempt whose outcome is unknown (a timeout, a 5xx, a
   * lost answer, a crash mid-call). A later refusal (4xx) of that step proves
   * only that the later attempt did nothing: the step stays in the undo plan.
   * Absent in snapshots written before it existed (read as none).
   */
  uncertain?: string[];
  /** The compensation plan: what to undo, in the order to do it (the reverse of the forward order), and where each stands. */
  compensations: CompensationEntry[];
  /** Results of completed steps, by step tipo. */
  results: Record<string, Json>;
  errorMessage: string | null;
  timeoutMinutos: number;
  /** When the saga was accepted (ISO time). */
  startedAt: string;
  /** When the saga fails if it has not completed (ISO time). */
  deadline: string;
  finishedAt: string | null;
  /** Sequence number of the last event written for this saga. */
  lastEventSeq: number;
  /** Paused by an operator: no new call, no retry. `deadlineStopped`: timeout_minutos does not count meanwhile. */
  paused: { since: string; deadlineStopped: boolean } | null;
  /** Parked: its handler crashed or its write can never commit; it waits for an operator. */
  parked: { motivo: string; fecha: string } | null;
  /** An operator cancelled while a call was in flight: compensate once its outcome is known. */
  cancel: { motivo: string; quien: string } | null;
}

/** The fields of a snapshot written before format 2: positions in the definition instead of tipos. */
interface IndexedSnapshot {
  sagaId: string;
  tipo: string;
  estado: string;
  phase: Phase;
  cursor: number;
  attempt: number;
  inFlight: boolean;
  retryAt: string | null;
  mayHaveEffect: number[];
  compensationPlan: number[];
  results: Record<string, Json>;
  errorMessage: string | null;
  timeoutMinutos: number;
  startedAt: string;
  deadline: string;
  finishedAt: string | null;
  lastEventSeq: number;
}

export function isCurrentFormat(raw: unknown): raw is SagaSnapshot {
  return typeof raw === 'object' && raw !== null && (raw as { format?: unknown }).format === 2;
}

/**
 * A snapshot as format 2. Snapshots written by the code before versioned
 * definitions name steps by their position in the saga's only definition,
 * which is version 1 of its tipo: `def` must be that version.
 */
export function upgradeSnapshot(raw: unknown, def: AnySagaDefinition): SagaSnapshot {
  if (isCurrentFormat(raw)) return raw;
  const old = raw as IndexedSnapshot;
  const tipoAt = (i: number): string => {
    const step = def.steps[i];
    if (step === undefined) throw new Error(`saga ${old.sagaId}: ${def.tipo} v${def.version} has no step ${i}`);
    return step.tipo;
  };
  const compensations = old.compensationPlan.map((i, j): CompensationEntry => {
    let status: CompensationStatus = 'pendiente';
    if (old.phase === 'compensating') status = j < old.cursor ? 'hecha' : 'pendiente';
    if (old.phase === 'finished') {
      if (old.estado === Lifecycle.COMPENSADA) status = 'hecha';
      // The old machine stopped at the first failed compensation and left the rest undone.
      else status = j < old.cursor ? 'hecha' : j === old.cursor ? 'fallida' : 'pendiente';
    }
    return { step: tipoAt(i), tipo: def.steps[i]!.compensation.tipo, estado: status };
  });
  const step =
    old.phase === 'forward' ? tipoAt(old.cursor) : old.phase === 'compensating' ? tipoAt(old.compensationPlan[old.cursor]!) : null;
  return {
    format: 2,
    sagaId: old.sagaId,
    tipo: old.tipo,
    version: def.version,
    estado: old.estado,
    phase: old.phase,
    step,
    attempt: old.attempt,
    inFlight: old.inFlight,
    retryAt: old.retryAt,
    callSince: null,
    expectBy: old.retryAt,
    mayHaveEffect: old.mayHaveEffect.map(tipoAt),
    compensations,
    results: old.results,
    errorMessage: old.errorMessage,
    timeoutMinutos: old.timeoutMinutos,
    startedAt: old.startedAt,
    deadline: old.deadline,
    finishedAt: old.finishedAt,
    lastEventSeq: old.lastEventSeq,
    paused: null,
    parked: null,
    cancel: null,
  };
}
