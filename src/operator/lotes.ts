// Bulk operator actions ("lotes"): one action on every saga a filter matches.
// A lote is recorded first (with how many sagas it covers), then worked through
// in bounded batches by whichever orchestrator holds its lease: each batch puts
// one order per saga in the mailbox and moves the lote's cursor, in one
// transaction, so a lote survives the crash of its worker and no saga gets its
// order twice (the order id is the lote's id and the saga's). Each order is
// then decided by its saga's actor like a single action.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../log.js';
import { SAGA_LOTE_CHANNEL, SAGA_ORDER_CHANNEL } from '../cluster/notifications.js';
import { filterSql, type ListFilter } from '../persistence/saga-queries.js';
import { isoSql, type Queryable } from '../persistence/sql.js';
import type { OperatorAction, OrderData } from '../saga/operations.js';


export interface LoteRequest {
  accion: OperatorAction;
  filtro: ListFilter;
  motivo: string;
  quien: string;
  datos: OrderData;
  idempotencyKey: string | null;
  requestId: string | null;
}

export interface LoteView {
  lote_id: string;
  accion: string;
  estado: 'en_curso' | 'terminado';
  total: number;
  procesadas: number;
  aceptadas: number;
  rechazadas: number;
  pendientes: number;
  quien: string;
  motivo: string;
  filtro: ListFilter;
  creado_en: string;
  terminado_en: string | null;
}

/** `?` placeholders (as the read side writes them) numbered for pg, from `first`. */
function numbered(sql: string, first: number): string {
  let i = first - 1;
  return sql.replace(/\?/g, () => `$${++i}`);
}


const VIEW_SQL = `
  select b.id as lote_id, b.accion, b.estado, b.total, b.enviadas as procesadas,
         count(o.id) filter (where o.resultado = 'aceptada')::int as aceptadas,
         count(o.id) filter (where o.resultado = 'rechazada')::int as rechazadas,
         b.quien, b.motivo, b.filtro, ${isoSql('b.creado_en')} as creado_en, ${isoSql('b.terminado_en')} as terminado_en
    from saga_lotes b left join saga_operaciones o on o.lote_id = b.id
   where b.id = $1
   group by b.id`;

export class Lotes {
  constructor(private readonly db: Queryable) {}

  /**
   * Records a lote over the sagas matching its filter that have started by now;
   * a repeat with the same Idempotency-Key returns the first one.
   */
  async create(req: LoteRequest): Promise<{ kind: 'created' | 'existing'; lote: LoteView } | { kind: 'keyReused' }> {
    if (req.idempotencyKey !== null) {
      const { rows } = await this.db.query<{ id: string; accion: string; filtro: unknown }>(
        'select id, accion, filtro from saga_lotes where idempotency_key = $1',
        [req.idempotencyKey],
      );
      const seen = rows[0];
      if (seen !== undefined) {
        if (seen.accion !== req.accion || JSON.stringify(seen.filtro) !== JSON.stringify(req.filtro)) return { kind: 'keyReused' };
        return { kind: 'existing', lote: (await this.get(seen.id))! };
      }
    }
    const { conditions, params } = filterSql(req.filtro);
    const where = conditions.length === 0 ? '' : `where ${conditions.join(' and ')}`;
    const id = randomUUID();
    const base = [id, req.accion, req.filtro, req.motivo, req.quien, req.datos, req.idempotencyKey, req.requestId];
    // The orchestrators' lote workers look for work rarely when idle: the insert wakes them (SAGA_LOTE_CHANNEL).
    await this.db.query(
      `with created as (
         insert into saga_lotes (id, accion, filtro, motivo, quien, datos, idempotency_key, request_id, creado_en,
                                 hasta_inicio, total, estado)
         select $1, $2, $3, $4, $5, $6, $7, $8, now(), now(), count(*), 'en_curso'
           from saga_log l ${numbered(where, base.length + 2)}
         on conflict (idempotency_key) do nothing
         returning id
       )
       select pg_notify($9, id::text) from created`,
      [...base, SAGA_LOTE_CHANNEL, ...params],
    );
    const lote = await this.get(id);
    if (lote === null) return this.create(req); // the same key raced in: answer with that lote
    return { kind: 'created', lote };
  }

  async get(id: string): Promise<LoteView | null> {
    const { rows } = await this.db.query<Omit<LoteView, 'pendientes'>>(VIEW_SQL, [id]);
    const r = rows[0];
    return r === undefined ? null : { ...r, pendientes: r.procesadas - r.aceptadas - r.rechazadas };
  }
}

export interface LoteWorkerOptions {
  pool: pg.Pool;
  owner: string;
  log: Logger;
  /** Orders per transaction. */
  batch?: number;
  /** Pause between batches. */
  pauseMs?: number;
  /** Pause between looks for work when there is none (`wake` cuts it short); 5 × pauseMs by default. */
  idleMs?: number;
  /** How long a worker's claim on a lote lasts without progress. */
  leaseMs?: number;
}

/** Works through the lotes in progress, one batch at a time. Runs in every orchestrator. */
export class LoteWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly batch: number;
  private readonly pauseMs: number;
  private readonly idleMs: number;
  private readonly leaseMs: number;
  private loop: (() => void) | undefined;
  private idle = false;

  constructor(private readonly opts: LoteWorkerOptions) {
    this.batch = opts.batch ?? 100;
    this.pauseMs = opts.pauseMs ?? 200;
    this.idleMs = opts.idleMs ?? this.pauseMs * 5;
    this.leaseMs = opts.leaseMs ?? 30_000;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.idle = false;
      this.running = this.step()
        .catch((err: unknown) => this.opts.log.warn({ err }, 'lote worker: batch failed; will retry'))
        .then((worked) => {
          if (this.stopped) return;
          this.idle = worked !== true;
          this.timer = setTimeout(loop, worked === true ? this.pauseMs : this.idleMs);
        });
    };
    this.loop = loop;
    loop();
  }

  /** A lote was recorded: look for work now if idle, rather than at the end of the idle pause. */
  wake(): void {
    if (!this.idle || this.stopped || this.loop === undefined) return;
    clearTimeout(this.timer);
    this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One batch of one lote; false when there was nothing to do. */
  async step(): Promise<boolean> {
    const client = await this.opts.pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query<{ id: string; accion: string; filtro: ListFilter; motivo: string; quien: string; datos: unknown; request_id: string | null; hasta_inicio: Date; cursor: string | null }>(
        `select id, accion, filtro, motivo, quien, datos, request_id, hasta_inicio, cursor from saga_lotes
          where estado = 'en_curso' and (owner is null or owner = $1 or lease_until < now())
          order by creado_en limit 1 for update skip locked`,
        [this.opts.owner],
      );
      const lote = rows[0];
      if (lote === undefined) {
        await client.query('commit');
        return false;
      }
      const { conditions, params } = filterSql(lote.filtro);
      conditions.push('l.fecha_inicio <= ?', '(?::uuid is null or l.id > ?::uuid)');
      params.push(lote.hasta_inicio, lote.cursor, lote.cursor);
      const base = [lote.id, lote.accion, lote.quien, lote.motivo, lote.datos, lote.request_id, this.batch, SAGA_ORDER_CHANNEL];
      const { rows: sent } = await client.query<{ saga_id: string }>(
        `with page as (
           select l.id, l.shard from saga_log l where ${numbered(conditions.join(' and '), base.length + 1)}
           order by l.id limit $7),
         placed as (
           insert into saga_ordenes (id, saga_id, shard, accion, quien, motivo, datos, request_id, lote_id, fecha_solicitud)
           select $1 || ':' || p.id, p.id, p.shard, $2, $3, $4, $5, $6, $1::uuid, now() from page p
            where not exists (select 1 from saga_operaciones o where o.id = $1 || ':' || p.id)
           on conflict (id) do nothing
           returning saga_id, shard),
         told as (select pg_notify($8, shard || ':' || saga_id) from placed)
         select p.id as saga_id, (select count(*) from told) as n from page p order by p.id`,
        [...base, ...params],
      );
      const last = sent.at(-1)?.saga_id ?? lote.cursor;
      const done = sent.length < this.batch;
      await client.query(
        `update saga_lotes set cursor = $2, enviadas = enviadas + $3, owner = $4,
                lease_until = now() + $5 * interval '1 millisecond',
                estado = case when $6 then 'terminado' else 'en_curso' end,
                terminado_en = case when $6 then now() else null end
          where id = $1`,
        [lote.id, last, sent.length, this.opts.owner, this.leaseMs, done],
      );
      await client.query('commit');
      if (sent.length > 0) this.opts.log.info({ lote: lote.id, accion: lote.accion, enviadas: sent.length, terminado: done }, 'lote batch sent');
      return true;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}
