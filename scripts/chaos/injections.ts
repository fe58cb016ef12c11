// The checks of the chaos suite, each proved able to fail: a bug switched on
// in the real code path (src/faults.ts), or a setting that brings an old bug
// back, and the check that must then report violations.
// `npm run test:chaos -- --short --inject <name>` runs the suite with it and
// exits 0 only if the named checks caught it.
import { FAULTS, type Fault } from '../../src/faults.js';

export interface Injection {
  /** What is broken, in words. */
  what: string;
  /** Settings of the orchestrators and of the BFFs for the whole run. */
  orchestrator: Record<string, string>;
  bff: Record<string, string>;
  /** Settings of the i-th orchestrator of the storm alone. */
  orchestratorEach?: (i: number) => Record<string, string>;
  /** The checks that must report violations. */
  caughtBy: string[];
}

const fault = (name: Fault, caughtBy: string[], where: ('orchestrator' | 'bff')[] = ['orchestrator']): Injection => ({
  what: FAULTS[name],
  orchestrator: where.includes('orchestrator') ? { SAGA_FAULTS: name } : {},
  bff: where.includes('bff') ? { SAGA_FAULTS: name } : {},
  caughtBy,
});

export const INJECTIONS: Record<string, Injection> = {
  'drop-idempotency-key': fault('drop-idempotency-key', ['I2']),
  'no-fence': fault('no-fence', ['I5']),
  'compensate-forward': fault('compensate-forward', ['I3']),
  'forget-unknown-outcomes': fault('forget-unknown-outcomes', ['I3']),
  'outbox-after-commit': fault('outbox-after-commit', ['I4']),
  'no-takeover-resume': fault('no-takeover-resume', ['I1']),
  // The issue's own finding: steps gave up after about 1.4 s of refused connections.
  'short-step-budget': {
    what: 'steps retry transient failures for 1 s only (SAGA_STEP_BUDGET_MS=1000), as the old four attempts did',
    orchestrator: { SAGA_STEP_BUDGET_MS: '1000' },
    bff: {},
    caughtBy: ['I1'],
  },
  'cancel-after-end': fault('cancel-after-end', ['S3']),
  'forget-deadline-on-resume': fault('forget-deadline-on-resume', ['S6']),
  'ignore-idempotency-key': fault('ignore-idempotency-key', ['S7'], ['orchestrator', 'bff']),
  'unknown-outcome-as-unavailable': fault('unknown-outcome-as-unavailable', ['S8'], ['bff']),
  // The relay's producer name is its deduplication identity: one per process (as the old default,
  // saga-orchestrator-relay-<hostname>, gave on separate hosts) and a relay that takes over re-sends
  // what its predecessor sent but did not record under a name the broker has no history for.
  'relay-producer-per-process': {
    what: 'each orchestrator publishes under a producer name of its own (PULSAR_PRODUCER_NAME per process)',
    orchestrator: {},
    bff: {},
    orchestratorEach: (i) => ({ PULSAR_PRODUCER_NAME: `saga-relay-orchestrator-${i + 1}` }),
    caughtBy: ['R1'],
  },
};
