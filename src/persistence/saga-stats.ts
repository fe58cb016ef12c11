// Statistics for the dashboard, in SQL over a time window of fecha_inicio, so
// that each query walks the saga_log_fecha_idx range of that window and the
// steps of those sagas only, never the whole history. Sagas per state come
// from the trigger-kept counters (the view saga_totals), never a count of the log.
//
// Bounded (issue 17: 8 calls at once over 366 days took 9-10 s each and /health
// 6 s meanwhile): the four queries of one answer run in one read-only
// transaction with a statement timeout (STATS_STATEMENT_TIMEOUT_MS), on a
// connection of their own pool, so they never hold the connections the status
// reads need. A query past the timeout is cancelled by PostgreSQL (57014) and
// the answer is a StatsTimeout.
import type pg from 'pg';
import { isoSql } from './sql.js';

export interface StatsWindow {
  desde: Date;
  hasta: Date;
  tipo?: string;
}

export interface SagaStats {
  desde: string;
  hasta: string;
  /** Width of each bucket of `en_el_tiempo`. */
  intervalo_segundos: number;
  /** Every saga in the log by (tipo, estado): all time. */
  por_estado: { tipo: string; estado: string; n: number }[];
  /** Sagas started in each bucket of the window, by how they ended (so far). */
  en_el_tiempo: {
    inicio: string;
    total: number;
    completadas: number;
    compensadas: number;
    compensacion_fallida: number;
    en_curso: number;
  }[];
  /** Duration from start to end of the sagas of the window that ended, by tipo and final estado. */
  duracion_segundos: { tipo: string; estado: string; n: number; p50: number; p95: number; p99: number }[];
  /** Steps and compensations of the window's sagas with the most failed outcomes. */
  pasos_que_mas_fallan: { clase: 'paso' | 'compensacion'; paso: string; fallos: number; total: number }[];
}

/** Bucket widths the charts use: the narrowest that gives at most MAX_BUCKETS buckets. */
const BUCKETS = [60, 300, 900, 3_600, 6 * 3_600, 86_400, 7 * 86_400] as const;
const MAX_BUCKETS = 120;

export function bucketSeconds(desde: Date, hasta: Date): number {
  const span = Math.max(1, (hasta.getTime() - desde.getTime()) / 1000);
  return BUCKETS.find((b) => span / b <= MAX_BUCKETS) ?? 7 * 86_400;
}


// $1 desde, $2 hasta, $3 tipo or null: the window every query below shares.
const WINDOW = `l.fecha_inicio >= ?::timestamptz and l.fecha_inicio < ?::timestamptz and (?::text is null or l.tipo = ?::text)`;

const OVER_TIME_SQL = `
  with agg as (
    select date_bin(make_interval(secs => ?), l.fecha_inicio, timestamptz '2000-01-01') as inicio,
           count(*) as total,
           count(*) filter (where l.estado = 'COMPLETADA') as completadas,
           count(*) filter (where l.estado = 'COMPENSADA') as compensadas,
           count(*) filter (where l.estado = 'COMPENSACION_FALLIDA') as compensacion_fallida
    from saga_log l where ${WINDOW}
    group by 1
  )
  select ${isoSql('s.inicio')} as inicio,
         coalesce(a.total, 0)::int as total, coalesce(a.completadas, 0)::int as completadas,
         coalesce(a.compensadas, 0)::int as compensadas, coalesce(a.compensacion_fallida, 0)::int as compensacion_fallida
  from generate_series(date_bin(make_interval(secs => ?), ?::timestamptz, timestamptz '2000-01-01'),
                       ?::timestamptz - interval '1 microsecond', make_interval(secs => ?)) as s(inicio)
  left join agg a on a.inicio = s.inicio
  order by s.inicio`;

const DURATION_SQL = `
  select l.tipo, l.estado, count(*)::int as n,
         percentile_cont(array[0.5, 0.95, 0.99]) within group (order by extract(epoch from l.fecha_fin - l.fecha_inicio)) as p
  from saga_log l where ${WINDOW} and l.fecha_fin is not null
  group by l.tipo, l.estado
  order by l.tipo, l.estado`;

const FAILING_STEPS_SQL = `
  select clase, paso, fallos::int, total::int from (
    select 'paso' as clase, p.tipo as paso, count(*) filter (where not p.exitoso) as fallos, count(*) as total
    from saga_log l join saga_pasos p on p.saga_id = l.id where ${WINDOW} group by p.tipo
    union all
    select 'compensacion', c.tipo, count(*) filter (where not c.exitoso), count(*)
    from saga_log l join saga_compensaciones c on c.saga_id = l.id where ${WINDOW} group by c.tipo
  ) o
  where fallos > 0
  order by fallos desc, fallos::float / total desc, paso
  limit 10`;

/** The statistics took longer than their statement timeout: PostgreSQL cancelled them. */
export class StatsTimeout extends Error {}

/** `?` placeholders as PostgreSQL's `$1, $2, …` (the queries above hold no other question mark). */
const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

export class SagaStatsQueries {
  /** Statistics cancelled by the statement timeout (saga_stats_timeouts_total). */
  timeouts = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: { statementTimeoutMs: number } = { statementTimeoutMs: 5_000 },
  ) {}

  async stats(window: StatsWindow): Promise<SagaStats> {
    const desde = window.desde.toISOString();
    const hasta = window.hasta.toISOString();
    const tipo = window.tipo ?? null;
    const w = [desde, hasta, tipo, tipo];
    const bucket = bucketSeconds(window.desde, window.hasta);
    const client = await this.pool.connect();
    let counts, overTime, durations, failing;
    try {
      await client.query('begin read only');
      await client.query(`set local statement_timeout = ${Math.max(1, Math.floor(this.opts.statementTimeoutMs))}`);
      const run = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => (await client.query<R>(numbered(sql), params)).rows;
      counts = await run<{ tipo: string; estado: string; n: string }>(
        `select tipo, estado, n from saga_totals where n > 0 and (?::text is null or tipo = ?::text) order by tipo, estado`,
        [tipo, tipo],
      );
      overTime = await run<Omit<SagaStats['en_el_tiempo'][number], 'en_curso'>>(OVER_TIME_SQL, [bucket, ...w, bucket, desde, hasta, bucket]);
      durations = await run<{ tipo: string; estado: string; n: number; p: number[] }>(DURATION_SQL, w);
      failing = await run<SagaStats['pasos_que_mas_fallan'][number]>(FAILING_STEPS_SQL, [...w, ...w]);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      if ((err as { code?: string }).code === '57014') {
        this.timeouts += 1;
        throw new StatsTimeout(`estadísticas canceladas tras ${this.opts.statementTimeoutMs} ms`);
      }
      throw err;
    } finally {
      client.release();
    }
    return {
      desde,
      hasta,
      intervalo_segundos: bucket,
      por_estado: counts.map((c) => ({ tipo: c.tipo, estado: c.estado, n: Number(c.n) })),
      en_el_tiempo: overTime.map((b) => ({
        ...b,
        en_curso: b.total - b.completadas - b.compensadas - b.compensacion_fallida,
      })),
      duracion_segundos: durations.map((d) => ({
        tipo: d.tipo,
        estado: d.estado,
        n: d.n,
        p50: round(d.p[0]),
        p95: round(d.p[1]),
        p99: round(d.p[2]),
      })),
      pasos_que_mas_fallan: failing,
    };
  }
}

const round = (seconds: number | undefined) => Math.round((seconds ?? 0) * 1000) / 1000;
