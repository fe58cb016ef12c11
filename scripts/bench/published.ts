// What a measurement with Pulsar reads off the saga log about publishing (columns of
// saga_events, migrations/Migration20261128000001_saga_log.ts and …20261129000001_outbox_relay.ts):
//  - fecha: the event's time, set by the orchestrator when the saga made the event
//    (before its write commits); the same column saga_outbox_lag_seconds measures from;
//  - publicado_en: now() of the relay's transaction that records the broker's
//    acknowledgement; null until then;
//  - descartado_en: set when the relay set the event aside (dead letter) instead.
// Only the events of the given sagas count (a run's, not its warm-up's).
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'>;

/** The database's clock now: a run's start, on the clock publicado_en is written with. */
export async function databaseNow(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('select clock_timestamp() as now');
  return rows[0]!.now;
}

/** Events of `sagaIds` neither published nor set aside. */
export async function unpublished(db: Queryable, sagaIds: readonly string[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'select count(*)::int as n from saga_events where saga_id = any($1::uuid[]) and publicado_en is null and descartado_en is null',
    [sagaIds],
  );
  return rows[0]?.n ?? 0;
}

/** Waits until every event of `sagaIds` is published or set aside, at most `boundMs`; returns how many were left. */
export async function waitPublished(db: Queryable, sagaIds: readonly string[], boundMs: number): Promise<number> {
  const until = Date.now() + boundMs;
  for (;;) {
    const left = await unpublished(db, sagaIds);
    if (left === 0 || Date.now() >= until) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface PublishFigures {
  /** Events of the sagas. */
  events: number;
  published: number;
  /** Set aside by the relay (dead letters). */
  setAside: number;
  /** Published events per second, from `since` to the last publicado_en of the sagas' events. */
  eventsPerSecond: number;
  /**
   * p99 over the events not set aside of publicado_en − fecha, seconds; an event still
   * unpublished counts as published now (a lower bound of its lag).
   */
  lagP99S: number;
  lagMaxS: number;
}

/**
 * `events_per_second` is the published events of `sagaIds` divided by the time from
 * `since` (the run's first saga, on the database's clock) to the last of their
 * publicado_en: a relay that falls behind stretches it. The lag is publicado_en − fecha,
 * with now in place of publicado_en for an event not yet published (so the events a
 * bounded wait left behind raise the p99 rather than drop out of it).
 */
export async function publishFigures(db: Queryable, sagaIds: readonly string[], since: Date): Promise<PublishFigures> {
  const { rows } = await db.query<{ events: number; published: number; set_aside: number; span: number | null; p99: number | null; max: number | null }>(
    `select count(*)::int as events,
            count(publicado_en)::int as published,
            count(descartado_en)::int as set_aside,
            extract(epoch from max(publicado_en) - $2::timestamptz)::float8 as span,
            (percentile_disc(0.99) within group (order by extract(epoch from coalesce(publicado_en, clock_timestamp()) - fecha)::float8)
               filter (where descartado_en is null))::float8 as p99,
            max(extract(epoch from coalesce(publicado_en, clock_timestamp()) - fecha)) filter (where descartado_en is null)::float8 as max
       from saga_events where saga_id = any($1::uuid[])`,
    [sagaIds, since],
  );
  const r = rows[0]!;
  return {
    events: r.events,
    published: r.published,
    setAside: r.set_aside,
    eventsPerSecond: r.span === null || r.span <= 0 ? 0 : r.published / r.span,
    lagP99S: r.p99 ?? 0,
    lagMaxS: r.max ?? 0,
  };
}
