// The benchmark's open loop (`npm run bench -- --rate R`, scripts/bench/drivers.ts):
// sagas start on their schedule whatever the earlier ones are doing, and each
// saga's latency counts from the moment it was due, so a stall is not hidden
// (no coordinated omission). The driver here stands in for the saga system,
// which these tests are not about: it answers after a set time, measuring from
// the start it is given, as the real drivers do.
import test from 'ava';
import { driveOpen, type Driver } from '../scripts/bench/drivers.js';

/** A driver whose sagas take `ms` each; `during(i)` runs synchronously when the i-th starts. */
function fakeDriver(ms: number, during: (i: number) => void = () => undefined): Driver {
  return {
    async runOne(body, startedAt) {
      const t0 = startedAt ?? performance.now();
      const i = Number(body.pago.referencia_pago.split('-').at(-1));
      during(i);
      await new Promise((r) => setTimeout(r, ms));
      return { sagaId: `saga-${i}`, latencyMs: performance.now() - t0 };
    },
  };
}

/** Keeps this process busy, as a stalled benchmark or system would, for `ms`. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

test('sagas start at the rate whatever the earlier ones are doing: slow sagas pile up in flight', async (t) => {
  // 40 sagas at 100/s, each taking 300 ms: a closed loop would have one in flight.
  const { runs, peakInFlight } = await driveOpen(fakeDriver(300), 40, 100, 'open');
  t.is(runs.length, 40);
  t.true(peakInFlight >= 10, `at most ${peakInFlight} in flight`);
});

test('a saga delayed by a stall counts its latency from when it was due, not from when it started', async (t) => {
  // 30 sagas at 100/s, 1 ms each; the 5th start stalls the process for 300 ms, so the
  // 6th, due 10 ms after the 5th, can only start some 290 ms late.
  const { runs } = await driveOpen(
    fakeDriver(1, (i) => {
      if (i === 5) stall(300);
    }),
    30,
    100,
    'stall',
  );
  const sixth = runs.find((r) => r.sagaId === 'saga-6');
  t.truthy(sixth);
  t.true(sixth!.latencyMs >= 250, `the 6th saga took ${sixth!.latencyMs.toFixed(1)} ms`);
});
