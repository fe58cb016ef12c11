// The deterministic simulator (npm run test:sim) replays a seed exactly, and
// its checks catch a known bug switched on in the real code.
import test from 'ava';
import { runSeed } from '../scripts/sim/world.js';

test('the same seed gives the same trace digest on every run', async (t) => {
  const a = await runSeed(7, { keepTrace: 0 });
  const b = await runSeed(7, { keepTrace: 0 });
  t.is(a.digest, b.digest);
  t.deepEqual(a.choices, b.choices);
});

test('two seeds give two different runs', async (t) => {
  const a = await runSeed(7, { keepTrace: 0 });
  const b = await runSeed(8, { keepTrace: 0 });
  t.not(a.digest, b.digest);
});

test('a run replayed from its recorded choices is the same run', async (t) => {
  const a = await runSeed(11, { keepTrace: 0 });
  const b = await runSeed(11, { keepTrace: 0, replay: a.choices });
  t.is(b.digest, a.digest);
});

test('a 4xx on a retry that drops the undo of an unknown outcome is caught by the undo and unknown invariants', async (t) => {
  let caught: string[] = [];
  for (let seed = 1; seed <= 60 && caught.length === 0; seed++) {
    const r = await runSeed(seed, { inject: 'unknown-outcome-dropped', keepTrace: 0 });
    caught = r.violations.map((v) => v.invariant);
  }
  t.true(caught.includes('unknown'), `caught by: ${caught.join(', ') || 'nothing'}`);
});
