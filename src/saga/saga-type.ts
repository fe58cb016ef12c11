// A saga type as the rest of the system sees it: its versioned definitions plus
// what the HTTP layer and the configuration need (its route, its request
// schema, its participants and their settings, its searchable business data).
// Each saga type lives in its own folder under src/sagas/; the engine knows it
// only through this interface.
import type { z } from 'zod';
import type { SagaDefinition } from './definition.js';
import type { CallPolicy } from './definition.js';

/** A participant service a saga calls, and the setting that holds its base URL. */
export interface ParticipantSetting {
  /** Environment variable with its base URL, e.g. CAMPAIGNS_URL. */
  env: string;
  defaultUrl: string;
}

export interface SagaType<D = unknown> {
  tipo: string;
  /** The path a client POSTs to start one, e.g. /saga/crear-campana-completa. */
  route: string;
  /** The request body: the saga's data, plus timeout_minutos. */
  request: z.ZodType;
  /** What the API documentation adds about the request body, if anything. */
  requestNotes?: string;
  /** The saga's data and its timeout, from a body `request` accepted. */
  accept(body: unknown): { datos: D; timeoutMinutos: number };
  /** Every version this build can run; the highest is the one new sagas start on. */
  versions: readonly SagaDefinition<D>[];
  /** The states its steps reach, in order (the list's estado filter accepts them). */
  states: readonly string[];
  /** The participants its steps name, by the name the steps use. */
  participants: Readonly<Record<string, ParticipantSetting>>;
  /** Business attributes sagas can be searched by (GET /saga/?<key>=…), read from the saga's data. */
  searchKeys(datos: D): Record<string, string>;
  /** The names `searchKeys` returns, for the list route and its documentation. */
  searchKeyNames: readonly string[];
  /** A valid request body (the smoke script's). */
  example(): unknown;
}

export type AnySagaType = SagaType<never>;

/** Settings every saga type's call policies are built from. */
export interface PolicyOptions {
  /** Multiplies every backoff delay; tests use a small value. */
  backoffScale?: number;
  /** Per-call timeout for steps and compensations. */
  callTimeoutMs?: number;
  /** How long a step keeps retrying transient failures (default 5 minutes; never past the saga's deadline). */
  stepBudgetMs?: number;
  /** How long a compensation keeps retrying before it is declared failed (default 30 minutes). */
  compensationBudgetMs?: number;
  /** Budgets of single steps or compensations, by tipo (e.g. CANCELAR_CAMPANA), over the two above. */
  budgetsMs?: Readonly<Record<string, number>>;
}

/**
 * The default policies. A transient failure (connection refused, timeout, 5xx)
 * is retried with capped, jittered backoff for as long as the budget allows, so
 * an outage shorter than the budget fails no saga. A definition may give a
 * step its own policy.
 */
export function defaultPolicies(opts: PolicyOptions = {}): { step: CallPolicy; compensation: CallPolicy } {
  const scale = opts.backoffScale ?? 1;
  const timeoutMs = opts.callTimeoutMs ?? 5_000;
  return {
    step: {
      timeoutMs,
      retry: {
        budgetMs: opts.stepBudgetMs ?? 5 * 60_000,
        maxAttempts: 60,
        backoff: { initialMs: 200 * scale, maxMs: 10_000 * scale, factor: 2 },
      },
    },
    compensation: {
      timeoutMs,
      retry: {
        budgetMs: opts.compensationBudgetMs ?? 30 * 60_000,
        maxAttempts: 200,
        backoff: { initialMs: 500 * scale, maxMs: 60_000 * scale, factor: 2 },
      },
    },
  };
}

/**
 * The saga type with the steps and compensations named in `budgetsMs` (by
 * tipo) retrying for that long instead of their policy's budget.
 */
export function withRetryBudgets<D>(type: SagaType<D>, budgetsMs: Readonly<Record<string, number>> = {}): SagaType<D> {
  if (Object.keys(budgetsMs).length === 0) return type;
  const budgeted = (tipo: string, policy: CallPolicy): CallPolicy => {
    const ms = budgetsMs[tipo];
    return ms === undefined ? policy : { ...policy, retry: { ...policy.retry, budgetMs: ms } };
  };
  return {
    ...type,
    versions: type.versions.map((def) => ({
      ...def,
      steps: def.steps.map((st) => ({
        ...st,
        policy: budgeted(st.tipo, st.policy),
        compensation: { ...st.compensation, policy: budgeted(st.compensation.tipo, st.compensation.policy) },
      })),
    })),
  };
}

/** The step and compensation tipos of a saga type, every version. */
export function callTipos(type: SagaType<never>): string[] {
  return type.versions.flatMap((def) => def.steps.flatMap((st) => [st.tipo, st.compensation.tipo]));
}
