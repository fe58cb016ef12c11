// What the relay records after sending a batch: a pure function of the batch and
// the transport's outcomes, so every rule about sequence ids is in one place.
import type { PublishOutcome } from './transport.js';
import type { Refusal } from './outbox-queries.js';

export interface PlannedRecord {
  published: string[];
  refused: Refusal[];
  /** Not stored, while a later sequence id of the batch was: its own id is spent. */
  renumbered: string[];
  /** Rows that go again with the sequence id they have (nothing later was stored). */
  replay: string[];
  /** The first transport failure, when there was one: the relay then backs off. */
  unavailable: string | undefined;
}

/**
 * `ids` and `outcomes` in sequence-id order. With deduplication, the broker drops a
 * message whose sequence id is not above the highest it stored for the producer, so
 * a message may go again under its old id only while nothing after it was stored.
 */
export function planRecord(ids: readonly string[], outcomes: readonly PublishOutcome[]): PlannedRecord {
  if (ids.length !== outcomes.length) throw new Error(`${ids.length} rows but ${outcomes.length} outcomes`);
  const lastStored = outcomes.findLastIndex((o) => o.kind === 'stored');
  const plan: PlannedRecord = { published: [], refused: [], renumbered: [], replay: [], unavailable: undefined };
  outcomes.forEach((o, i) => {
    const id = ids[i]!;
    if (o.kind === 'stored') plan.published.push(id);
    else if (o.kind === 'refused') plan.refused.push({ id, error: o.error });
    else {
      plan.unavailable ??= o.error;
      if (i < lastStored) plan.renumbered.push(id);
      else plan.replay.push(id);
    }
  });
  return plan;
}
