// Every saga type this build can run. Add a folder under src/sagas/ and list it here.
import { callTipos, withRetryBudgets, type AnySagaType, type PolicyOptions } from '../saga/saga-type.js';
import { crearCampanaCompleta } from './crear-campana-completa/index.js';

export function sagaTypes(opts: PolicyOptions = {}): AnySagaType[] {
  const types = [crearCampanaCompleta(opts) as unknown as AnySagaType];
  const known = new Set(types.flatMap(callTipos));
  const unknown = Object.keys(opts.budgetsMs ?? {}).filter((tipo) => !known.has(tipo));
  if (unknown.length > 0) throw new Error(`Invalid configuration: SAGA_RETRY_BUDGETS_MS names ${unknown.join(', ')}, which no step or compensation is`);
  return types.map((t) => withRetryBudgets(t, opts.budgetsMs));
}
