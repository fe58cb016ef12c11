// What the relay records after sending a batch: a pure function of the batch and
// the transport's outcomes, so every rule about sequence ids is in one place.
import type { PublishOutcome } from './transport.js';
import type { Refusal } from './outbox-queries.js';

export interface PlannedRecord {
  published: string[];
  /** Refused, and tried again later under a new sequence id (until the attempts run out). */
  refused: Refusal[];
  /**
   * Refused while a later event of the same saga was stored: sending it again would put
   * it after that event, so it is set aside at once (a dead letter), never reordered.
   */
  overtaken: Refusal[];
  /** Not stored, while a later sequence id of the batch was: its own id is spent. */
  renumbered: string[];
  /** Rows that go again with the sequence id they have (nothing later was stored). */
  replay: string[];
  /** The first transport failure, when there was one: the relay then backs off. */
  unavailable: string | undefined;
}

/**
 * `ids` and `outcomes` in sequence-id order; `keys` (the saga id of each row), when
 * given, lets a refusal overtaken by its own saga be told apart. With deduplication,
 * the broker drops a message whose sequence id is not above the highest it stored for
 * the producer, so a message may go again under its old id only while nothing after it
 * was stored.
 */
export function planRecord(ids: readonly string[], outcomes: readonly PublishOutcome[], keys?: readonly string[]): PlannedRecord {
  if (ids.length !== outcomes.length) throw new Error(`${ids.length} rows but ${outcomes.length} outcomes`);
  if (keys !== undefined && keys.length !== ids.length) throw new Error(`${ids.length} rows but ${keys.length} keys`);
  const lastStored = outcomes.findLastIndex((o) => o.kind === 'stored');
  // For each key, the index of its last stored message.
  const lastStoredOfKey = new Map<string, number>();
  if (keys !== undefined) outcomes.forEach((o, i) => o.kind === 'stored' && lastStoredOfKey.set(keys[i]!, i));
  const plan: PlannedRecord = { published: [], refused: [], overtaken: [], renumbered: [], replay: [], unavailable: undefined };
  outcomes.forEach((o, i) => {
    const id = ids[i]!;
    if (o.kind === 'stored') plan.published.push(id);
    else if (o.kind === 'refused') {
      const overtaken = keys !== undefined && (lastStoredOfKey.get(keys[i]!) ?? -1) > i;
      if (overtaken) plan.overtaken.push({ id, error: `${o.error} (set aside at once: a later event of its saga was stored)` });
      else plan.refused.push({ id, error: o.error });
    } else {
      plan.unavailable ??= o.error;
      if (i < lastStored) plan.renumbered.push(id);
      else plan.replay.push(id);
    }
  });
  return plan;
}
