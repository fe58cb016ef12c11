// The SQL of the outbox relay. Each function is one statement, so one short
// transaction of its own: the relay never holds a transaction open while it talks
// to the broker. One statement serves every shard the process holds: each is fenced
// by its own lease, numbered by its own counter. src/events/outbox-relay.ts says why
// each rule is there.
import type { ShardLease } from '../cluster/shards.js';
import type { Queryable } from '../persistence/sql.js';

/** A saga_events row as the relay publishes it. */
export interface OutboxRow {
  id: string; // bigserial: pg returns int8 as a string
  saga_id: string;
  secuencia: number;
  tipo: string;
  estado: string;
  payload: unknown;
  fecha: Date;
  epoch: string | null; // int8
  secuencia_envio: string; // int8
  /** The saga's shard: the row goes out on that shard's producer, under its sequence. */
  shard: number;
}

/** An event's columns, from saga_events aliased `e`; its sequence id comes from its shard's saga_relay_shards row. */
const EVENT_COLUMNS = 'e.id, e.saga_id, e.secuencia, e.tipo, e.estado, e.payload, e.fecha, e.epoch, e.shard';

/** A shard's producer name: the saga log's (or PULSAR_PRODUCER_NAME) and the shard. */
export function shardProducerName(prefix: string, shard: number): string {
  return `${prefix}-${shard}`;
}

/** The leases given as parameters $first (shards), +1 (owners), +2 (epochs), as rows (shard, owner, epoch). */
const leaseRows = (first: number) =>
  `select * from unnest($${first}::int[], $${first + 1}::text[], $${first + 2}::bigint[])`;

/**
 * The fence of every write of the relay, as a CTE named `held`: the shards among
 * `among` (a query of shard numbers) whose saga_shards row says one of the leases
 * ($first…, see leaseRows) is the shard's unexpired lease, read FOR SHARE (in shard
 * order, as the group commit locks them), so a take-over (an UPDATE of that row) waits
 * for the statement to commit, and a statement that runs after a take-over does not
 * find the shard. Only the shards the statement touches are locked.
 */
const heldCte = (first: number, among: string) => `held as materialized (
       select s.shard from saga_shards s
        where s.shard in (${among}) and s.lease_until > now()
          and (s.shard, s.owner, s.epoch) in (${leaseRows(first)})
        order by s.shard
        for share
     )`;

const leaseParams = (leases: readonly ShardLease[]) => [leases.map((l) => l.shard), leases.map((l) => l.owner), leases.map((l) => l.epoch)];

/** The relay's identity on the broker: the prefix of its shards' producer names. */
export async function producerName(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ productor: string }>('select productor from saga_outbox_relay where id = 1');
  const name = rows[0]?.productor;
  if (name === undefined) throw new Error('saga_outbox_relay has no row: are the migrations applied?');
  return name;
}

/** Orders rows by shard, then by sequence id: each shard's rows in the order they go out. */
const byShardThenSequence = (a: OutboxRow, b: OutboxRow) => a.shard - b.shard || Number(a.secuencia_envio) - Number(b.secuencia_envio);

/**
 * The batches in flight of `leases`' shards: rows given a sequence id and not yet
 * acknowledged (a pass that failed, a relay that crashed or lost the shard left them),
 * as each shard's saga_relay_shards row lists them (en_vuelo, en_vuelo_secuencias).
 * They go again with the same ids, under each shard's producer name. Only the shards
 * whose lease is held; at most `limit` rows, by shard then sequence id, so each
 * shard's rows are the first of its own (all of them, but perhaps for the last
 * shard's when `limit` rows came back).
 */
export async function inFlight(db: Queryable, limit: number, leases: readonly ShardLease[]): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxRow>(
    `select ${EVENT_COLUMNS}, f.secuencia_envio
       from saga_relay_shards r
       cross join lateral unnest(r.en_vuelo, r.en_vuelo_secuencias) as f(id, secuencia_envio)
       join saga_events e on e.id = f.id
      where r.shard = any($2::int[]) and e.publicado_en is null and e.descartado_en is null
        and r.shard in (select s.shard from saga_shards s
                         where s.lease_until > now() and (s.shard, s.owner, s.epoch) in (${leaseRows(2)}))
      order by r.shard, f.secuencia_envio
      limit $1`,
    [limit, ...leaseParams(leases)],
  );
  return rows;
}

/** What `claim` took, by shard then sequence id; `lost`: shards with events to take whose lease is not (or no longer) held: nothing of theirs was taken. */
export interface Claimed {
  rows: OutboxRow[];
  lost: number[];
}

/**
 * Takes a new batch and numbers it, for every shard of `leases` at once. The window:
 * the first `limit` rows of those shards, in (transaccion, id) order (oldest first, so
 * no saga or shard starves), that are pending, not in flight, and inserted by a
 * transaction older than every transaction still running (below the xmin horizon of a
 * fresh snapshot), so no row can commit later and belong before them. Of the window,
 * a row is taken when every pending event of its saga before it is in the window too
 * and has never been refused: each saga's taken events are then the unbroken run of
 * its next pending events, all of them at once, and a saga whose next event was
 * refused sends that event alone (its later events wait for it, as a retry must not
 * be overtaken). The probe of a saga's earlier events is a range on the
 * (saga_id, secuencia) key: a handful of rows per saga.
 *
 * Only the rows of shards whose lease is held (the `held` fence, checked for the
 * shards with rows in the window): a shard whose lease was lost gives nothing, and
 * comes back in `lost`; the others' rows are taken all the same.
 *
 * Sequence ids go on from the last one given in each shard (saga_relay_shards), saga
 * by saga (sagas in the order of their oldest taken event, so the batch follows the
 * transactions) and within a saga in secuencia order: a saga's events reach its
 * shard's producer, and so the broker, in their order, whatever order the
 * transactions that wrote them had. The rows taken, and their ids, are appended to
 * their shard's in-flight lists (en_vuelo, en_vuelo_secuencias): one update of the
 * shard's row, and none of the events' rows.
 */
export async function claim(db: Queryable, limit: number, leases: readonly ShardLease[]): Promise<Claimed> {
  const { rows } = await db.query<OutboxRow & { lost: number[] }>(
    `with horizon as materialized (
       select pg_snapshot_xmin(pg_current_snapshot()) as xmin
     ),
     flying as materialized (
       select unnest(r.en_vuelo) as id from saga_relay_shards r where r.shard = any($2::int[])
     ),
     windowed as materialized (
       select e.id, e.saga_id, e.secuencia, e.transaccion, e.shard
         from saga_events e, horizon h
        where e.shard = any($2::int[]) and e.publicado_en is null and e.descartado_en is null
          and e.transaccion < h.xmin
          and not exists (select 1 from flying f where f.id = e.id)
        order by e.transaccion, e.id
        limit $1
     ),
     ${heldCte(2, 'select shard from windowed')},
     candidates as (
       select w.id, w.saga_id, w.secuencia, w.transaccion, w.shard
         from windowed w
        where w.shard in (select shard from held)
          and not exists (
          select 1 from saga_events p
           where p.saga_id = w.saga_id and p.secuencia < w.secuencia
             and coalesce(p.publicado_en, p.descartado_en) is null
             and (p.intentos_envio > 0 or not exists (select 1 from windowed q where q.id = p.id)))
     ),
     numbered as (
       select id, shard, row_number() over (partition by shard order by first_tx, first_id, secuencia) as n
         from (select id, shard, secuencia,
                      first_value(transaccion) over saga as first_tx,
                      first_value(id) over saga as first_id
                 from candidates
               window saga as (partition by saga_id order by transaccion, id)) c
     ),
     counts as (
       select shard, count(*) as k, array_agg(id order by n) as ids from numbered group by shard
     ),
     counter as (
       update saga_relay_shards r
          set ultima_secuencia_envio = r.ultima_secuencia_envio + counts.k,
              en_vuelo = r.en_vuelo || counts.ids,
              en_vuelo_secuencias = r.en_vuelo_secuencias
                || array(select r.ultima_secuencia_envio + g from generate_series(1::bigint, counts.k) g order by g)
         from counts
        where r.shard = counts.shard
        returning r.shard, r.ultima_secuencia_envio - counts.k as base
     ),
     taken as (
       select ${EVENT_COLUMNS}, counter.base + numbered.n as secuencia_envio
         from numbered
         join counter on counter.shard = numbered.shard
         join saga_events e on e.id = numbered.id
     )
     select array(select distinct w.shard from windowed w where w.shard not in (select shard from held))::int[] as lost, taken.*
       from (select 1) one left join taken on true`,
    [limit, ...leaseParams(leases)],
  );
  const lost = rows[0]?.lost ?? [];
  const taken = rows.filter((r) => r.id !== null).map(({ lost: _, ...row }) => row);
  return { rows: taken.sort(byShardThenSequence), lost };
}

export interface Refusal {
  id: string;
  error: string;
}

export interface Recorded {
  published: number;
  /** Refused rows that go again later, under a new sequence id. */
  retried: number;
  deadLettered: number;
  renumbered: number;
  /** The shards whose lease was held: their rows were recorded; the others' were left as they were. */
  held: number[];
}

/**
 * Records what became of a batch, in one statement, for every shard in it:
 *  - `published` rows are marked;
 *  - `refused` rows count an attempt: at `maxAttempts` they go to saga_events_descartados,
 *    before that they lose their sequence id and are taken again, numbered anew;
 *  - `renumbered` rows (not stored, while a later sequence id of their shard was) lose
 *    their sequence id too: the broker would now drop their old one as a duplicate;
 *  - `overtaken` rows (refused while a later event of their saga was stored) count an
 *    attempt and go to saga_events_descartados at once: sent again, they would reach
 *    consumers after that later event.
 * All of these leave their shard's in-flight lists; rows left out stay there, keep
 * their sequence id and go again as they are. (`not in` over the ids gone is a hashed
 * lookup, built once per statement; a correlated `not exists` compared every id in
 * flight with every id gone, shard by shard, and cost the record 15 % more.)
 * A row is recorded only while its shard's lease (among `leases`) is held (the `held`
 * fence, per shard): a shard lost meanwhile keeps its batch in flight, and its new
 * holder replays it under the same sequence ids and producer name (the broker drops the
 * copies it has), while the other shards' rows are recorded.
 */
export async function record(
  db: Queryable,
  outcome: { published: string[]; refused: Refusal[]; renumbered: string[]; overtaken?: Refusal[] },
  maxAttempts: number,
  leases: readonly ShardLease[],
): Promise<Recorded> {
  const { rows } = await db.query<{ published: number; retried: number; dead: number; renumbered: number; held: number[] }>(
    `with ${heldCte(5, 'select unnest($5::int[])')},
     published as (
       update saga_events set publicado_en = now()
        where id = any($1::bigint[]) and publicado_en is null and shard in (select shard from held)
        returning id
     ),
     refused as (
       update saga_events e
          set intentos_envio = e.intentos_envio + 1,
              descartado_en = case when e.intentos_envio + 1 >= $4 or r.final then now() end
         from jsonb_to_recordset($2::jsonb) as r(id bigint, error text, final boolean)
        where e.id = r.id and e.publicado_en is null and e.descartado_en is null and e.shard in (select shard from held)
        returning e.id, e.saga_id, e.secuencia, e.tipo, e.intentos_envio, e.descartado_en, r.error
     ),
     dead as (
       insert into saga_events_descartados (evento_id, saga_id, secuencia, tipo, intentos, error, descartado_en)
       select id, saga_id, secuencia, tipo, intentos_envio, error, descartado_en from refused
        where descartado_en is not null
       returning evento_id
     ),
     renumbered as (
       select f.id from saga_relay_shards r, unnest(r.en_vuelo) as f(id)
        where r.shard in (select shard from held) and f.id = any($3::bigint[])
     ),
     gone as materialized (
       select unnest($1::bigint[] || $3::bigint[]) as id
       union all select (x->>'id')::bigint from jsonb_array_elements($2::jsonb) x
     ),
     landed as (
       update saga_relay_shards r
          set (en_vuelo, en_vuelo_secuencias) = (
            select coalesce(array_agg(f.id order by f.o), '{}'), coalesce(array_agg(f.s order by f.o), '{}')
              from unnest(r.en_vuelo, r.en_vuelo_secuencias) with ordinality as f(id, s, o)
             where f.id not in (select g.id from gone g where g.id is not null))
        where r.shard in (select shard from held) and cardinality(r.en_vuelo) > 0
     )
     select (select count(*) from published)::int as published,
            (select count(*) from refused where descartado_en is null)::int as retried,
            (select count(*) from dead)::int as dead,
            (select count(*) from renumbered)::int as renumbered,
            array(select shard from held)::int[] as held`,
    [
      outcome.published,
      JSON.stringify([
        ...outcome.refused.map((r) => ({ ...r, final: false })),
        ...(outcome.overtaken ?? []).map((r) => ({ ...r, final: true })),
      ]),
      outcome.renumbered,
      maxAttempts,
      ...leaseParams(leases),
    ],
  );
  const r = rows[0]!;
  return { published: r.published, retried: r.retried, deadLettered: r.dead, renumbered: r.renumbered, held: r.held };
}

/**
 * Seconds since the oldest event still to publish was written; 0 when there is none.
 * With `shards`, only those shards' events (a process's relay answers for its own).
 */
export async function lagSeconds(db: Queryable, shards?: readonly number[]): Promise<number> {
  const { rows } = await db.query<{ lag: number | null }>(
    `select extract(epoch from (clock_timestamp() - min(fecha)))::float8 as lag
       from saga_events
      where publicado_en is null and descartado_en is null and ($1::int[] is null or shard = any($1::int[]))`,
    [shards ?? null],
  );
  return Math.max(0, rows[0]?.lag ?? 0);
}

export async function deadLetterCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from saga_events_descartados');
  return rows[0]?.n ?? 0;
}
