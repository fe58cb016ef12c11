// Bugs that can be switched on in the real code path, one at a time, so that
// the chaos suite can show each of its invariants catching the fault it is
// about (scripts/chaos/injections.ts says which). Every one is off unless
// SAGA_FAULTS names it, and a process with any on says so at start. Each entry
// is the bug as it would appear in a change that broke the guarantee.
import { PRODUCTION_RULES, type MachineRules } from './saga/rules.js';
import { insertEvents, type WriterHooks } from './persistence/saga-writer.js';
import { storableJson } from './persistence/storable.js';

export const FAULTS = {
  'drop-idempotency-key': 'the participant gateway sends no Idempotency-Key with its calls',
  'no-fence': 'the saga-log writer does not check the shard lease, and a process that lost a lease keeps running its sagas',
  'compensate-forward': 'the compensation plan undoes the steps in the order they ran instead of the reverse',
  'forget-unknown-outcomes': 'the compensation plan leaves out the steps whose call had an unknown outcome (a timeout)',
  'outbox-after-commit': 'events are written to the outbox after the snapshot commits, in a transaction of their own, a little later',
  'no-takeover-resume': 'a process that takes over a shard does not resume the unfinished sagas it finds there',
  'cancel-after-end': 'an operator cancel is accepted on a saga that already ended, and compensates it',
  'forget-deadline-on-resume': 'a resumed saga does not check or re-arm its timeout_minutos deadline',
  'ignore-idempotency-key': 'a new saga is recorded without the Idempotency-Key of its request',
  'unknown-outcome-as-unavailable': 'a POST whose write has an unknown outcome is answered 503 no_disponible, without the saga id',
  'unknown-outcome-dropped': 'a 4xx on a retry removes the step from the undo plan even though an earlier attempt had an unknown outcome',
  'resume-after-order': 'an actor that took an operator order and started its call then counts that call as interrupted and calls again',
  'skip-left-alone': 'a saga whose park write failed once is skipped by this process for the rest of its life',
  'order-decided-twice': 'after a commit with an unknown outcome the actor reloads the saga and decides the same operator order again',
} as const;

export type Fault = keyof typeof FAULTS;

/** The faults switched on in a process (usually none). */
export type Faults = ReadonlySet<Fault>;

export const NO_FAULTS: Faults = new Set<Fault>();

export const isFault = (name: string): name is Fault => Object.hasOwn(FAULTS, name);

/** `SAGA_FAULTS` as a set; an unknown name is a configuration error. */
export function parseFaults(raw: string | undefined): Faults {
  const names = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((n) => !isFault(n));
  if (unknown.length > 0) throw new Error(`unknown fault(s) ${unknown.join(', ')}; known: ${Object.keys(FAULTS).join(', ')}`);
  return new Set(names as Fault[]);
}

/** The machine's rules with the faults that break them switched off: production's when none is on. */
export function machineRules(faults: Faults): MachineRules {
  if (faults.size === 0) return PRODUCTION_RULES;
  return {
    deadlineOnResume: !faults.has('forget-deadline-on-resume'),
    refuseCancelAfterEnd: !faults.has('cancel-after-end'),
    undoUnknownOutcomes: !faults.has('forget-unknown-outcomes'),
    undoInReverse: !faults.has('compensate-forward'),
    keepUndoAfterUncertainRefusal: !faults.has('unknown-outcome-dropped'),
  };
}

/** The fence clause of the group commit: `no-fence` removes it. */
const FENCE_CLAUSE = `    and exists (select 1 from held h where h.shard = t.shard and h.owner = t.owner and h.epoch = t.epoch)\n`;

/** The writer's hooks for the faults switched on: none in production. */
export function writerHooks(faults: Faults): WriterHooks {
  const hooks: WriterHooks = {};
  if (faults.has('no-fence')) {
    hooks.statement = {
      name: 'saga_group_commit_unfenced',
      rewrite: (sql) => {
        const unfenced = sql.replace(FENCE_CLAUSE, '');
        if (unfenced === sql) throw new Error('the no-fence fault no longer matches the group commit SQL');
        return unfenced;
      },
    };
  }
  if (faults.has('outbox-after-commit')) {
    // A dual write: the events go in a transaction of their own a moment after the writes were acknowledged,
    // and nobody waits for it (a crash or a lost connection meanwhile loses them).
    const late = insertEvents(1, 'true');
    hooks.eventsOutside = (pool, events) => {
      if (events.length === 0) return;
      setTimeout(() => {
        pool.query(late, [storableJson(events)]).catch(() => undefined);
      }, 200);
    };
  }
  return hooks;
}
