// What the relay records after a batch, given what the transport answered.
import test from 'ava';
import { planRecord } from '../src/events/publish-plan.js';
import type { PublishOutcome } from '../src/events/transport.js';

const stored: PublishOutcome = { kind: 'stored' };
const down: PublishOutcome = { kind: 'unavailable', error: 'TimeOut' };
const tooBig: PublishOutcome = { kind: 'refused', error: 'MessageTooBig' };

test('stored messages are published; a failed tail goes again under the same sequence ids', (t) => {
  const plan = planRecord(['1', '2', '3'], [stored, down, down]);
  t.deepEqual(plan.published, ['1']);
  t.deepEqual(plan.replay, ['2', '3']);
  t.deepEqual(plan.renumbered, []);
  t.is(plan.unavailable, 'TimeOut');
});

test('a message not stored while a later one was is renumbered: its sequence id is spent', (t) => {
  const plan = planRecord(['1', '2', '3', '4'], [stored, down, stored, down]);
  t.deepEqual(plan.published, ['1', '3']);
  t.deepEqual(plan.renumbered, ['2']);
  t.deepEqual(plan.replay, ['4']);
});

test('a refused message is recorded as a refusal, whatever follows it', (t) => {
  const plan = planRecord(['1', '2', '3'], [tooBig, stored, stored]);
  t.deepEqual(plan.refused, [{ id: '1', error: 'MessageTooBig' }]);
  t.deepEqual(plan.published, ['2', '3']);
  t.is(plan.unavailable, undefined);
});

test("a refused message is set aside at once when a later message of its saga was stored, and retried when none was", (t) => {
  const plan = planRecord(['1', '2', '3', '4'], [tooBig, stored, tooBig, down], ['A', 'A', 'B', 'B']);
  t.deepEqual(plan.overtaken.map((r) => r.id), ['1'], "A's later event got through: sending 1 again would reorder A");
  t.deepEqual(plan.refused.map((r) => r.id), ['3'], "nothing of B's after it was stored: 3 is retried");
  t.deepEqual(plan.published, ['2']);
  t.deepEqual(plan.replay, ['4']);
});

test('rows and outcomes must match one to one', (t) => {
  t.throws(() => planRecord(['1'], []), { message: /1 rows but 0 outcomes/ });
});
