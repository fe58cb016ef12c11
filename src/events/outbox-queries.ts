// The SQL of the outbox relay. Each function is one statement, so one short
// transaction of its own: the relay never holds a transaction open while it talks
// to the broker. src/events/outbox-relay.ts says why each rule is there.
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
}

const COLUMNS = 'id, saga_id, secuencia, tipo, estado, payload, fecha, epoch, secuencia_envio';

/** A shard's producer name: the saga log's (or PULSAR_PRODUCER_NAME) and the shard. */
export function shardProducerName(prefix: string, shard: number): string {
  return `${prefix}-${shard}`;
}

/** The condition on saga_shards that `lease` is the shard's unexpired lease: parameters $first (shard), +1 (owner), +2 (epoch). */
const leaseHeld = (first: number) =>
  `shard = $${first} and owner = $${first + 1} and epoch = $${first + 2} and lease_until > now()`;

/**
 * The fence of every write of the relay, as a CTE named `held`: one row while
 * saga_shards says `lease` is the shard's unexpired lease (`leaseHeld(first)`),
 * read FOR SHARE, so a take-over (an UPDATE of that row) waits for the statement
 * to commit, and a statement that runs after a take-over finds no row.
 */
const heldCte = (first: number) => `held as materialized (
       select shard from saga_shards
        where ${leaseHeld(first)}
        for share
     )`;

const leaseParams = (lease: ShardLease) => [lease.shard, lease.owner, lease.epoch];

/** The relay's identity on the broker: the prefix of its shards' producer names. */
export async function producerName(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ productor: string }>('select productor from saga_outbox_relay where id = 1');
  const name = rows[0]?.productor;
  if (name === undefined) throw new Error('saga_outbox_relay has no row: are the migrations applied?');
  return name;
}

/**
 * The shard's batch in flight: rows given a sequence id and not yet acknowledged (a
 * pass that failed, a relay that crashed or lost the shard left them). They go again
 * with the same ids, under the shard's producer name. None unless `lease` is held.
 */
export async function inFlight(db: Queryable, limit: number, lease: ShardLease): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxRow>(
    `select ${COLUMNS} from saga_events
      where shard = $2 and secuencia_envio is not null and publicado_en is null and descartado_en is null
        and exists (select 1 from saga_shards where ${leaseHeld(2)})
      order by secuencia_envio
      limit $1`,
    [limit, ...leaseParams(lease)],
  );
  return rows;
}

/** What `claim` took; `held` false when the lease is not (or no longer) this relay's: nothing was taken. */
export interface Claimed {
  held: boolean;
  rows: OutboxRow[];
}

/**
 * Takes a new batch and numbers it. The window: the first `limit` rows, in
 * (transaccion, id) order (oldest first, so no saga starves), that are pending, not
 * in flight, and inserted by a transaction older than every transaction still running
 * (below the xmin horizon of a fresh snapshot), so no row can commit later and belong
 * before them. Of the window, a row is taken when every pending event of its saga
 * before it is in the window too and has never been refused: each saga's taken
 * events are then the unbroken run of its next pending events, all of them at once,
 * and a saga whose next event was refused sends that event alone (its later events
 * wait for it, as a retry must not be overtaken). The probe of a saga's earlier events
 * is a range on the (saga_id, secuencia) key: a handful of rows per saga.
 *
 * Only the rows of `lease`'s shard, and only while saga_shards says the lease is held
 * (the `held` fence): a relay that lost the shard takes nothing.
 *
 * Sequence ids go on from the last one given in the shard (saga_relay_shards), saga by
 * saga (sagas in the order of their oldest taken event, so the batch follows the
 * transactions) and within a saga in secuencia order: a saga's events reach the
 * shard's producer, and so the broker, in their order, whatever order the
 * transactions that wrote them had.
 */
export async function claim(db: Queryable, limit: number, lease: ShardLease): Promise<Claimed> {
  const { rows } = await db.query<OutboxRow & { held: boolean }>(
    `with ${heldCte(2)},
     horizon as materialized (
       select pg_snapshot_xmin(pg_current_snapshot()) as xmin
     ),
     windowed as materialized (
       select e.id, e.saga_id, e.secuencia, e.transaccion, e.intentos_envio
         from saga_events e, horizon h
        where e.shard = $2 and e.publicado_en is null and e.descartado_en is null and e.secuencia_envio is null
          and e.transaccion < h.xmin
          and exists (select 1 from held)
        order by e.transaccion, e.id
        limit $1
     ),
     candidates as (
       select w.id, w.saga_id, w.secuencia, w.transaccion
         from windowed w
        where not exists (
          select 1 from saga_events p
           where p.saga_id = w.saga_id and p.secuencia < w.secuencia
             and coalesce(p.publicado_en, p.descartado_en) is null
             and (p.intentos_envio > 0 or not exists (select 1 from windowed q where q.id = p.id)))
     ),
     numbered as (
       select id, row_number() over (order by first_tx, first_id, secuencia) as n
         from (select id, secuencia,
                      first_value(transaccion) over saga as first_tx,
                      first_value(id) over saga as first_id
                 from candidates
               window saga as (partition by saga_id order by transaccion, id)) c
     ),
     counter as (
       update saga_relay_shards
          set ultima_secuencia_envio = ultima_secuencia_envio + (select count(*) from numbered)
        where shard = $2 and exists (select 1 from numbered)
        returning ultima_secuencia_envio - (select count(*) from numbered) as base
     ),
     taken as (
       update saga_events e
          set secuencia_envio = counter.base + numbered.n
         from numbered, counter
        where e.id = numbered.id
        returning ${COLUMNS.split(', ').map((c) => `e.${c}`).join(', ')}
     )
     select exists (select 1 from held) as held, taken.*
       from (select 1) one left join taken on true`,
    [limit, ...leaseParams(lease)],
  );
  const held = rows[0]?.held === true;
  const taken = rows.filter((r) => r.id !== null).map(({ held: _, ...row }) => row);
  return { held, rows: taken.sort((a, b) => Number(a.secuencia_envio) - Number(b.secuencia_envio)) };
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
  /** False when the lease is not (or no longer) this relay's: nothing was recorded. */
  held: boolean;
}

/**
 * Records what became of a batch, in one statement:
 *  - `published` rows are marked;
 *  - `refused` rows count an attempt: at `maxAttempts` they go to saga_events_descartados,
 *    before that they lose their sequence id and are taken again, numbered anew;
 *  - `renumbered` rows (not stored, while a later sequence id was) lose their sequence
 *    id too: the broker would now drop their old one as a duplicate;
 *  - `overtaken` rows (refused while a later event of their saga was stored) count an
 *    attempt and go to saga_events_descartados at once: sent again, they would reach
 *    consumers after that later event.
 * Rows left out keep their sequence id and go again as they are.
 * Nothing is recorded unless `lease` is held (the `held` fence): a relay that lost
 * the shard leaves its batch in flight, and the shard's new holder replays it under
 * the same sequence ids and producer name (the broker drops the copies it has).
 */
export async function record(
  db: Queryable,
  outcome: { published: string[]; refused: Refusal[]; renumbered: string[]; overtaken?: Refusal[] },
  maxAttempts: number,
  lease: ShardLease,
): Promise<Recorded> {
  const { rows } = await db.query<{ published: number; retried: number; dead: number; renumbered: number; held: boolean }>(
    `with ${heldCte(5)},
     published as (
       update saga_events set publicado_en = now()
        where id = any($1::bigint[]) and publicado_en is null and exists (select 1 from held)
        returning id
     ),
     refused as (
       update saga_events e
          set intentos_envio = e.intentos_envio + 1,
              secuencia_envio = null,
              descartado_en = case when e.intentos_envio + 1 >= $4 or r.final then now() end
         from jsonb_to_recordset($2::jsonb) as r(id bigint, error text, final boolean)
        where e.id = r.id and e.publicado_en is null and e.descartado_en is null and exists (select 1 from held)
        returning e.id, e.saga_id, e.secuencia, e.tipo, e.intentos_envio, e.descartado_en, r.error
     ),
     dead as (
       insert into saga_events_descartados (evento_id, saga_id, secuencia, tipo, intentos, error, descartado_en)
       select id, saga_id, secuencia, tipo, intentos_envio, error, descartado_en from refused
        where descartado_en is not null
       returning evento_id
     ),
     renumbered as (
       update saga_events set secuencia_envio = null
        where id = any($3::bigint[]) and publicado_en is null and descartado_en is null and exists (select 1 from held)
        returning id
     )
     select (select count(*) from published)::int as published,
            (select count(*) from refused where descartado_en is null)::int as retried,
            (select count(*) from dead)::int as dead,
            (select count(*) from renumbered)::int as renumbered,
            exists (select 1 from held) as held`,
    [
      outcome.published,
      JSON.stringify([
        ...outcome.refused.map((r) => ({ ...r, final: false })),
        ...(outcome.overtaken ?? []).map((r) => ({ ...r, final: true })),
      ]),
      outcome.renumbered,
      maxAttempts,
      ...leaseParams(lease),
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
