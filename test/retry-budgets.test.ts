// Retry budgets per step or compensation, from SAGA_RETRY_BUDGETS_MS, over the
// two defaults; and the bugs the chaos suite switches on (SAGA_FAULTS) are
// named, never guessed.
import test from 'ava';
import { loadConfig } from '../src/config.js';
import { policyOptions } from '../src/roles.js';
import { sagaTypes } from '../src/sagas/index.js';

function policiesOf(env: Record<string, string>) {
  const [type] = sagaTypes(policyOptions(loadConfig(env)));
  const steps = type!.versions[0]!.steps;
  return Object.fromEntries(
    steps.flatMap((st) => [
      [st.tipo, st.policy.retry.budgetMs],
      [st.compensation.tipo, st.compensation.policy.retry.budgetMs],
    ]),
  );
}

test('a step or compensation named in SAGA_RETRY_BUDGETS_MS retries for that long; the others keep the defaults', (t) => {
  const budgets = policiesOf({
    SAGA_STEP_BUDGET_MS: '300000',
    SAGA_COMPENSATION_BUDGET_MS: '1800000',
    SAGA_RETRY_BUDGETS_MS: 'CANCELAR_CAMPANA=3000, PROCESAR_PAGO=900000',
  });
  t.deepEqual(budgets, {
    CREAR_CAMPANA: 300_000,
    CANCELAR_CAMPANA: 3_000,
    PROCESAR_PAGO: 900_000,
    REVERTIR_PAGO: 1_800_000,
    GENERAR_REPORTE: 300_000,
    CANCELAR_REPORTE: 1_800_000,
  });
});

test('a malformed SAGA_RETRY_BUDGETS_MS, or one naming no step, stops the process from starting', (t) => {
  t.throws(() => loadConfig({ SAGA_RETRY_BUDGETS_MS: 'CANCELAR_CAMPANA:3000' }), { message: /SAGA_RETRY_BUDGETS_MS/ });
  t.throws(() => policiesOf({ SAGA_RETRY_BUDGETS_MS: 'CANCELAR_CAMPAÑA=3000' }), { message: /SAGA_RETRY_BUDGETS_MS/ });
  t.throws(() => policiesOf({ SAGA_RETRY_BUDGETS_MS: 'CANCELAR_CAMPANIA=3000' }), { message: /CANCELAR_CAMPANIA/ });
});

test('no bug is on unless SAGA_FAULTS names it, and an unknown name is refused', (t) => {
  t.is(loadConfig({}).SAGA_FAULTS.size, 0);
  t.deepEqual([...loadConfig({ SAGA_FAULTS: 'no-fence, drop-idempotency-key' }).SAGA_FAULTS], ['no-fence', 'drop-idempotency-key']);
  t.throws(() => loadConfig({ SAGA_FAULTS: 'no-fence,typo' }), { message: /SAGA_FAULTS/ });
});
