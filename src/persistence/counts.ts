// The list's per-(tipo, estado) counters: the saga log's triggers append
// deltas in every write transaction (no shared row is locked, so writers never
// wait for each other or deadlock on them), and this folds the deltas into
// saga_counts now and then; readers sum both through the view saga_totals.
import type pg from 'pg';
import type { Logger } from '../log.js';

/** Folds the pending deltas (one process at a time; the others return 0); returns how many were folded. */
export async function foldCounts(pool: Pick<pg.Pool, 'query'>, log?: Logger): Promise<number> {
  try {
    const { rows } = await pool.query<{ n: string }>('select saga_counts_fold() as n');
    return Number(rows[0]?.n ?? 0);
  } catch (err) {
    log?.warn({ err: (err as Error).message }, 'could not fold the list counters; will retry');
    return 0;
  }
}
