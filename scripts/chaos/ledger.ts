// What a chaos run asked for and was told, kept to judge the recorded history
// by: the outcome each request should have (by its payment reference, which
// every request has its own of), the faults and when the last one ended, and
// the checks each scenario adds.
import type pg from 'pg';
import { exampleRequest } from '../../src/sagas/crear-campana-completa/example.js';
import type { CrearCampanaCompletaRequest } from '../../src/sagas/crear-campana-completa/request.js';

export type Query = <R extends pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<R[]>;

/** A saga that runs to its end, one whose report is refused (it compensates), or one whose deadline passes. */
export type RequestKind = 'completes' | 'reportRefused' | 'deadline';

export interface Expectation {
  /** The final state, unless an operator's accepted cancel makes it COMPENSADA. */
  outcome: 'COMPLETADA' | 'COMPENSADA';
  scenario: string;
}

export interface CheckResult {
  checked: number;
  violations: string[];
}

/** A check a scenario adds, run on the history once everything has settled. */
export interface Check {
  name: string;
  description: string;
  run(query: Query): Promise<CheckResult>;
}

export type FaultKind =
  | 'orchestratorKills'
  | 'bffKills'
  | 'pauses'
  | 'participantOutages'
  | 'endpointOutages'
  | 'backendTerminations'
  | 'postgresRestarts'
  | 'answersLost'
  | 'faultRules';

export class Ledger {
  /** Expected outcome by referencia_pago. */
  readonly expected = new Map<string, Expectation>();
  readonly checks: Check[] = [];
  /** Figures and facts for the report, by scenario. */
  readonly notes: { scenario: string; line: string }[] = [];
  readonly faultCounts: Record<FaultKind, number> = {
    orchestratorKills: 0,
    bffKills: 0,
    pauses: 0,
    participantOutages: 0,
    endpointOutages: 0,
    backendTerminations: 0,
    postgresRestarts: 0,
    answersLost: 0,
    faultRules: 0,
  };
  /** When the last fault ended: I1's bound runs from here. */
  lastFaultAt = Date.now();
  /** POSTs a client had to send again (its BFF dead, paused, or the database away). */
  postRetries = 0;

  /** A request body of its own, with the outcome it must reach recorded. */
  request(scenario: string, i: number, kind: RequestKind): { ref: string; body: CrearCampanaCompletaRequest } {
    const ref = `caos_${scenario}_${i}`;
    const body = exampleRequest();
    body.campana.nombre = `Campaña caos ${scenario} ${i}`;
    body.pago.referencia_pago = ref;
    body.timeout_minutos = 30;
    if (kind === 'reportRefused') body.reporte.tipo_reporte = 'inexistente';
    if (kind === 'deadline') body.timeout_minutos = 0.03;
    this.expected.set(ref, { outcome: kind === 'completes' ? 'COMPLETADA' : 'COMPENSADA', scenario });
    return { ref, body };
  }

  /** One in ten requests has its report refused. */
  static kindOf(i: number): RequestKind {
    return i % 10 === 9 ? 'reportRefused' : 'completes';
  }

  fault(kind: FaultKind): void {
    this.faultCounts[kind] += 1;
    this.faultEnded();
  }

  faultEnded(): void {
    this.lastFaultAt = Date.now();
  }

  note(scenario: string, line: string): void {
    this.notes.push({ scenario, line });
  }
}
