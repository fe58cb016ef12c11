// A saga's snapshot as saga_log stores it. Each step's result is written once,
// in its saga_pasos row (exitoso), in the transaction that records the step;
// the stored snapshot leaves `results` empty, and a load puts them back. Before
// this, every later step rewrote the earlier results with the whole snapshot:
// most of the bytes, WAL and jsonb parsing of a step's write. Snapshots stored
// before keep their results; a load adds those of saga_pasos to them.
import type { SagaSnapshot } from '../saga/snapshot.js';

/** The snapshot to store: `s` without its step results. */
export function storedSnapshot(s: SagaSnapshot): SagaSnapshot {
  return Object.keys(s.results).length === 0 ? s : { ...s, results: {} };
}

/**
 * The snapshot of saga_log `l` as the machine needs it, in SQL: its stored
 * results (none, unless stored before) and the result of each step that succeeded.
 */
export const LOADED_SNAPSHOT_SQL = `case when r.results is null then l.snapshot
    else jsonb_set(l.snapshot, '{results}', coalesce(l.snapshot->'results', '{}'::jsonb) || r.results) end`;

/** The join that LOADED_SNAPSHOT_SQL reads (`r`), after `from saga_log l`. */
export const STEP_RESULTS_JOIN = `left join lateral (
    select jsonb_object_agg(p.tipo, coalesce(p.resultado, 'null'::jsonb) order by p.orden) as results
      from saga_pasos p where p.saga_id = l.id and p.exitoso) r on true`;
