// What the saga log's gauges read at each scrape (src/metrics.ts registers the
// gauges; the wiring hands it these reads): sagas per (tipo, estado) from the
// trigger-kept counters, stuck sagas by reason, and the shard leases. None of
// them counts the whole log: saga_totals is the folded counters plus pending
// deltas, and only running sagas are read for the stuck ones (partial indexes).
import type { Database } from './database.js';
import { STUCK_MOTIVOS, STUCK_REASON_SQL, STUCK_SQL } from './saga-queries.js';
import { RUNNING_SQL } from './sql.js';

/**
 * Stuck sagas by tipo and motivo: every known motivo for every tipo the log
 * knows (registered or with sagas), 0 where none is stuck, so a dashboard shows
 * 0 rather than no data.
 */
const STUCK_COUNT_SQL = `
  with tipos as (select tipo from saga_definiciones union select tipo from saga_totals),
       motivos(motivo) as (values ${STUCK_MOTIVOS.map((m) => `('${m}')`).join(', ')}),
       stuck as (select l.tipo, ${STUCK_REASON_SQL} as motivo, count(*) as n
                   from saga_log l where ${STUCK_SQL} group by 1, 2)
  select t.tipo, m.motivo, coalesce(s.n, 0) as n
    from tipos t cross join motivos m left join stuck s on s.tipo = t.tipo and s.motivo = m.motivo
  union all
  select s.tipo, s.motivo, s.n from stuck s where s.tipo not in (select tipo from tipos)`;

/** Running sagas (parked ones aside) in a shard whose live holder does not run their version (the shard plan's `waiting`). */
const SHARD_VERSION_MISSING_SQL = `
  select l.shard, l.tipo || '@' || l.version_definicion as version, count(*) as n
    from saga_log l
    join saga_shards s on s.shard = l.shard and s.lease_until > now()
    join saga_nodes n on n.node_id = s.owner
   where l.${RUNNING_SQL} and l.aparcada is null
     and not (l.tipo || '@' || l.version_definicion) = any (n.definiciones)
   group by 1, 2`;

/** The reads, shaped as src/metrics.ts's SagaLogReads (the wiring passes them in). */
export function sagaLogGaugeReads(db: Database) {
  const sql = <R>(text: string) => db.em.getConnection().execute<R[]>(text);
  return {
    async totals() {
      const rows = await sql<{ tipo: string; estado: string; n: string }>('select tipo, estado, n from saga_totals');
      return rows.map((r) => ({ tipo: r.tipo, estado: r.estado, n: Number(r.n) }));
    },
    async stuck() {
      const rows = await sql<{ tipo: string; motivo: string; n: string }>(STUCK_COUNT_SQL);
      return rows.map((r) => ({ tipo: r.tipo, motivo: r.motivo, n: Number(r.n) }));
    },
    async leaseChanges() {
      const [row] = await sql<{ n: string | null }>('select sum(epoch) as n from saga_shards');
      return Number(row?.n ?? 0);
    },
    async shardsHeld() {
      const rows = await sql<{ owner: string; n: string }>(
        'select owner, count(*) as n from saga_shards where owner is not null and lease_until > now() group by owner',
      );
      return rows.map((r) => ({ owner: r.owner, n: Number(r.n) }));
    },
    async versionMissing() {
      const rows = await sql<{ shard: number; version: string; n: string }>(SHARD_VERSION_MISSING_SQL);
      return rows.map((r) => ({ shard: r.shard, version: r.version, n: Number(r.n) }));
    },
  };
}
