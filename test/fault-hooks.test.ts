// The fault catalogue reaches the machine and the writer only through the
// tables they take at start (machine rules, writer hooks): production gets
// none, and each fault switches off the one guarantee it names.
import test from 'ava';
import type pg from 'pg';
import { machineRules, parseFaults, writerHooks } from '../src/faults.js';
import { SagaWriter } from '../src/persistence/saga-writer.js';
import { PRODUCTION_RULES } from '../src/saga/rules.js';

test('with no fault on, the machine runs production rules and the writer gets no hooks', (t) => {
  t.is(machineRules(parseFaults('')), PRODUCTION_RULES);
  t.deepEqual(writerHooks(parseFaults('')), {});
});

test('each machine fault switches off exactly its rule', (t) => {
  const off = (fault: string) =>
    Object.entries(machineRules(parseFaults(fault)))
      .filter(([, on]) => !on)
      .map(([rule]) => rule);
  t.deepEqual(off('forget-deadline-on-resume'), ['deadlineOnResume']);
  t.deepEqual(off('cancel-after-end'), ['refuseCancelAfterEnd']);
  t.deepEqual(off('forget-unknown-outcomes'), ['undoUnknownOutcomes']);
  t.deepEqual(off('compensate-forward'), ['undoInReverse']);
  t.deepEqual(off('unknown-outcome-dropped'), ['keepUndoAfterUncertainRefusal']);
});

test('no-fence removes the lease check from the group commit statement, under a statement name of its own', (t) => {
  const hooks = writerHooks(parseFaults('no-fence'));
  const variant = hooks.statement!;
  t.is(variant.name, 'saga_group_commit_unfenced');
  // The writer applies the rewrite at construction: a statement the rewrite no longer matches throws there.
  t.notThrows(() => new SagaWriter({} as pg.Pool, { hooks }));
  t.throws(() => variant.rewrite('select 1'), { message: /no longer matches/ });
});

test('outbox-after-commit takes the events out of the commit', (t) => {
  t.is(typeof writerHooks(parseFaults('outbox-after-commit')).eventsOutside, 'function');
});
