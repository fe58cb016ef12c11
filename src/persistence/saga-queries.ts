// The read side of the saga log, in the shape of the BFF contract. Status and
// lists render a saga with the same SQL (its steps, compensations and operator
// actions as json_agg), one query each; lists are filtered, ordered and paged
// in SQL, on indexes.
import type pg from 'pg';
import type { Database } from './database.js';
import { TERMINAL_STATES } from '../saga/states.js';
import { BatchedLookup } from './batched-lookup.js';
import { byIdsStatement, isoSql, RUNNING_SQL } from './sql.js';

export interface OutcomeView {
  id: string;
  tipo: string;
  exitoso: boolean;
  error: string | null;
  fecha_ejecucion: string;
  resultado: unknown;
  manual?: boolean;
}

export interface OperationView {
  id: string;
  accion: string;
  quien: string;
  motivo: string;
  fecha: string;
  resultado: string;
  detalle: string | null;
}

export interface SagaView {
  saga_id: string;
  estado: string;
  /** The saga's snapshot version: it grows with every change, so of two views the higher is the newer. */
  revision: number;
  tipo: string;
  pasos: OutcomeView[];
  compensaciones: OutcomeView[];
  fecha_inicio: string;
  fecha_fin: string | null;
  error_message: string | null;
  version_definicion: number;
  pausada: boolean;
  aparcada: { motivo: string; fecha: string | null } | null;
  esperando_version: boolean;
  atascada: boolean;
  plan_compensacion: { tipo: string; estado: 'hecha' | 'fallida' | 'omitida' | 'no_intentada' | 'en_curso' }[];
  operaciones: OperationView[];
  /** Where a running saga stands: the step it runs (or whose compensation it runs), the attempt, since when; null once it ended. */
  paso_actual: CurrentStepView | null;
}

export interface CurrentStepView {
  /** The step's tipo (while compensating too: the step being undone). */
  paso: string;
  fase: 'avance' | 'compensacion';
  /** Attempts started for the current call (0 before the first). */
  intento: number;
  /** When the first attempt of the current call started (ISO time); null before it. */
  desde: string | null;
  /** An attempt is under way and its outcome is not recorded yet. */
  en_vuelo: boolean;
  /** When the next attempt is due, while waiting to retry (ISO time). */
  reintento: string | null;
}

/** Sagas of one definition version that are running, by the step they are on. */
export interface InFlightByStep {
  paso: string;
  fase: 'avance' | 'compensacion';
  n: number;
}

export interface ListFilter {
  estado?: string;
  tipo?: string;
  /** fecha_inicio at or after (ISO time). */
  desde?: string;
  /** fecha_inicio before (ISO time). */
  hasta?: string;
  /** Business data, by search key (id_afiliado, referencia_pago, …). */
  claves?: Record<string, string>;
  /** Only stuck sagas (parked, waiting for their version, or not moving when they should). */
  atascadas?: boolean;
}

export interface Page {
  pagina: number;
  limite: number;
}

export interface EventView {
  secuencia: number;
  tipo: string;
  estado: string;
  fecha: string;
  payload: unknown;
  publicado: boolean;
}

/** How long past its expected next change a running saga counts as stuck. */
export const STUCK_GRACE = `interval '30 seconds'`;
const LIVE_NODE = `n.last_seen > now() - interval '60 seconds'`;

/** A running saga of `l` whose definition version no live orchestrator has (while some orchestrator lives). */
export const WAITING_FOR_VERSION_SQL = `(l.${RUNNING_SQL}
  and exists (select 1 from saga_nodes n where ${LIVE_NODE})
  and not exists (select 1 from saga_nodes n where ${LIVE_NODE}
                  and (l.tipo || '@' || l.version_definicion) = any (n.definiciones)))`;

/** A running saga of `l` that is not moving and should be. Paused sagas are not stuck. */
export const STUCK_SQL = `(l.${RUNNING_SQL} and not l.pausada
  and (l.aparcada is not null or l.esperado_antes < now() - ${STUCK_GRACE} or ${WAITING_FOR_VERSION_SQL}))`;

/** Every reason a saga can be stuck for (the values of STUCK_REASON_SQL). */
export const STUCK_MOTIVOS = ['sin_progreso', 'aparcada', 'esperando_version'] as const;

/** Why a stuck saga of `l` is stuck: one of STUCK_MOTIVOS. */
export const STUCK_REASON_SQL = `case when l.aparcada is not null then 'aparcada'
  when ${WAITING_FOR_VERSION_SQL} then 'esperando_version' else 'sin_progreso' end`;


const outcomes = (table: string, order: string) => `coalesce((
    select json_agg(json_build_object('id', o.id, 'tipo', o.tipo, 'exitoso', o.exitoso, 'error', o.error,
                                      'fecha_ejecucion', ${isoSql('o.fecha_ejecucion')}, 'resultado', o.resultado,
                                      'manual', o.manual)
                    order by ${order})
    from ${table} o where o.saga_id = l.id), '[]'::json)`;

const planColumn = `coalesce((
    select json_agg(json_build_object('tipo', c->>'tipo', 'estado',
             case when c->>'estado' <> 'pendiente' then c->>'estado'
                  when l.snapshot->>'phase' = 'compensating' and l.snapshot->>'step' = c->>'step' then 'en_curso'
                  else 'no_intentada' end) order by i)
    from jsonb_array_elements(case when jsonb_typeof(l.snapshot->'compensations') = 'array'
                                   then l.snapshot->'compensations' else '[]'::jsonb end) with ordinality as x(c, i)), '[]'::json)`;

/** The snapshot's current call, for a saga that has not ended (snapshots of format 2, which name their step). */
const currentStepColumn = `case when not (l.${RUNNING_SQL}) or l.snapshot->>'step' is null
                                or l.snapshot->>'phase' not in ('forward', 'compensating') then null
    else json_build_object('paso', l.snapshot->>'step',
           'fase', case when l.snapshot->>'phase' = 'forward' then 'avance' else 'compensacion' end,
           'intento', coalesce((l.snapshot->>'attempt')::int, 0),
           'desde', l.snapshot->>'callSince',
           'en_vuelo', coalesce((l.snapshot->>'inFlight')::boolean, false),
           'reintento', l.snapshot->>'retryAt') end`;

const operationsColumn = `coalesce((
    select json_agg(json_build_object('id', o.id, 'accion', o.accion, 'quien', o.quien, 'motivo', o.motivo,
                                      'fecha', ${isoSql('o.fecha')}, 'resultado', o.resultado, 'detalle', o.detalle)
                    order by o.fecha, o.id)
    from saga_operaciones o where o.saga_id = l.id), '[]'::json)`;

/** A saga in the contract's shape, from saga_log aliased `l`. */
const VIEW_COLUMNS = `l.id as saga_id, l.estado, l.version as revision, l.tipo,
         ${outcomes('saga_pasos', 'o.orden')} as pasos,
         ${outcomes('saga_compensaciones', 'o.fecha_ejecucion, o.orden')} as compensaciones,
         ${isoSql('l.fecha_inicio')} as fecha_inicio, ${isoSql('l.fecha_fin')} as fecha_fin, l.error_message,
         l.version_definicion, l.pausada,
         case when l.aparcada is null then null
              else json_build_object('motivo', l.aparcada, 'fecha', l.snapshot->'parked'->>'fecha') end as aparcada,
         ${WAITING_FOR_VERSION_SQL} as esperando_version,
         ${STUCK_SQL} as atascada,
         ${planColumn} as plan_compensacion,
         ${operationsColumn} as operaciones,
         ${currentStepColumn} as paso_actual`;

/**
 * Sagas by id, as prepared statements (byIdsStatement): the status read's plan (2 ms of
 * PostgreSQL's CPU, for 0.4 ms of execution) is made once per connection, not at every read.
 */
const statusStatement = (ids: readonly string[]) =>
  byIdsStatement('saga_status_many', (where) => `select ${VIEW_COLUMNS} from saga_log l where ${where('l.id')}`, ids);
const estadoStatement = (ids: readonly string[]) =>
  byIdsStatement('saga_estado_many', (where) => `select id, estado from saga_log where ${where('id')}`, ids);

/**
 * A page, newest first. The page's ids are chosen first, so the steps are
 * rendered for its rows only, not for the rows an OFFSET skips.
 */
const listSql = (conditions: string[]) => `
  with page as (
    select l.id, l.fecha_inicio from saga_log l
    ${where(conditions)}
    order by l.fecha_inicio desc, l.id desc limit ? offset ?
  )
  select ${VIEW_COLUMNS} from page p join saga_log l on l.id = p.id
  order by p.fecha_inicio desc, p.id desc`;

const where = (conditions: string[]) => (conditions.length === 0 ? '' : `where ${conditions.join(' and ')}`);

/** SQL conditions on saga_log `l` and their parameters, for a filter. */
export function filterSql(filter: ListFilter): { conditions: string[]; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (filter.estado !== undefined) {
    // The same rows as `l.estado = ?`, said so that the planner takes the index of terminal or of running sagas.
    conditions.push(TERMINAL_STATES.includes(filter.estado) ? 'l.estado_final = ?' : `l.${RUNNING_SQL} and l.estado = ?`);
    params.push(filter.estado);
  }
  if (filter.tipo !== undefined) {
    conditions.push('l.tipo = ?');
    params.push(filter.tipo);
  }
  if (filter.desde !== undefined) {
    conditions.push('l.fecha_inicio >= ?');
    params.push(filter.desde);
  }
  if (filter.hasta !== undefined) {
    conditions.push('l.fecha_inicio < ?');
    params.push(filter.hasta);
  }
  for (const [clave, valor] of Object.entries(filter.claves ?? {})) {
    // By the value's hash, as the index holds it, and by the value itself, which a hash alone does not prove.
    conditions.push('l.id in (select k.saga_id from saga_claves k where k.clave = ? and k.valor_hash = md5(?)::uuid and k.valor = ?)');
    params.push(clave, valor, valor);
  }
  if (filter.atascadas === true) conditions.push(STUCK_SQL);
  return { conditions, params };
}

export class SagaQueries {
  private readonly views: BatchedLookup<SagaView>;
  private readonly estados: BatchedLookup<string>;

  /**
   * `pool`: for the reads every client makes (status, estado), as prepared
   * statements; those asked for in one turn of the event loop share one query.
   */
  constructor(
    private readonly db: Database,
    pool: Pick<pg.Pool, 'query'>,
    opts: { batchWindowMs?: number } = {},
  ) {
    const windowMs = opts.batchWindowMs ?? 0;
    this.views = new BatchedLookup(
      async (ids) => {
        const { rows } = await pool.query<SagaView>(statusStatement(ids));
        return new Map(rows.map((r) => [r.saga_id, r]));
      },
      { windowMs },
    );
    this.estados = new BatchedLookup(
      async (ids) => {
        const { rows } = await pool.query<{ id: string; estado: string }>(estadoStatement(ids));
        return new Map(rows.map((r) => [r.id, r.estado]));
      },
      { windowMs },
    );
  }

  /**
   * One saga in the contract's shape: clients poll or wait on this route, so it
   * costs a share of one round trip and no entity hydration.
   */
  status(sagaId: string): Promise<SagaView | null> {
    return this.views.get(sagaId);
  }

  /** A saga's estado alone (one index lookup), or null when there is no such saga. */
  estado(sagaId: string): Promise<string | null> {
    return this.estados.get(sagaId);
  }

  async list(filter: ListFilter, page: Page): Promise<{ sagas: SagaView[]; total: number }> {
    const { conditions, params } = filterSql(filter);
    const conn = this.db.em.getConnection();
    const [sagas, total] = await Promise.all([
      conn.execute<SagaView[]>(listSql(conditions), [...params, page.limite, (page.pagina - 1) * page.limite], 'all'),
      this.count(filter, conditions, params),
    ]);
    return { sagas, total };
  }

  /** The first `limit` ids matching `filter`, oldest first, and how many match (a bulk operation's dry run). */
  async matching(filter: ListFilter, limit: number): Promise<{ ids: string[]; total: number }> {
    const { conditions, params } = filterSql(filter);
    const conn = this.db.em.getConnection();
    const [rows, total] = await Promise.all([
      conn.execute<{ id: string }[]>(`select l.id from saga_log l ${where(conditions)} order by l.id limit ?`, [...params, limit], 'all'),
      this.count(filter, conditions, params),
    ]);
    return { ids: rows.map((r) => r.id), total };
  }

  /** A saga's events from the outbox, in order, with whether each was published. */
  async events(sagaId: string): Promise<EventView[] | null> {
    const conn = this.db.em.getConnection();
    const [exists, rows] = await Promise.all([
      this.estado(sagaId),
      conn.execute<EventView[]>(
        `select secuencia, tipo, estado, ${isoSql('fecha')} as fecha, payload, publicado_en is not null as publicado
           from saga_events where saga_id = ? order by secuencia`,
        [sagaId],
        'all',
      ),
    ]);
    return exists === null ? null : rows;
  }

  /**
   * Every definition version ever registered, with its steps, how many of its
   * sagas still run, and those by the step they are on (forward or compensating).
   */
  async definitions(): Promise<{ tipo: string; version: number; huella: string; en_curso: number; por_paso: InFlightByStep[] }[]> {
    return this.db.em.getConnection().execute(
      `select d.tipo, d.version, d.huella, coalesce(r.n, 0)::int as en_curso, coalesce(r.por_paso, '[]'::json) as por_paso
         from saga_definiciones d
         left join (select tipo, version_definicion, sum(n) as n,
                           json_agg(json_build_object('paso', paso, 'fase', fase, 'n', n) order by paso, fase)
                             filter (where paso is not null) as por_paso
                      from (select tipo, version_definicion, snapshot->>'step' as paso,
                                   case when snapshot->>'phase' = 'compensating' then 'compensacion' else 'avance' end as fase,
                                   count(*)::int as n
                              from saga_log where ${RUNNING_SQL}
                             group by 1, 2, 3, 4) s
                     group by tipo, version_definicion) r
           on r.tipo = d.tipo and r.version_definicion = d.version
        order by d.tipo, d.version`,
      [],
      'all',
    );
  }

  /** The total of a list: from the per-(tipo, estado) counters when only those filter it, else counted. */
  private async count(filter: ListFilter, conditions: string[], params: unknown[]): Promise<number> {
    const conn = this.db.em.getConnection();
    const simple =
      filter.desde === undefined &&
      filter.hasta === undefined &&
      filter.atascadas !== true &&
      Object.keys(filter.claves ?? {}).length === 0;
    if (simple) {
      // The counters the saga log's triggers keep: a few rows, whatever the history.
      const by = { estado: filter.estado, tipo: filter.tipo };
      const keys = (['estado', 'tipo'] as const).filter((k) => by[k] !== undefined);
      const rows = await conn.execute<{ n: string | null }[]>(
        `select sum(n) as n from saga_totals ${where(keys.map((k) => `${k} = ?`))}`,
        keys.map((k) => by[k]),
        'all',
      );
      return Number(rows[0]?.n ?? 0);
    }
    const rows = await conn.execute<{ n: string }[]>(`select count(*) as n from saga_log l ${where(conditions)}`, params, 'all');
    return Number(rows[0]?.n ?? 0);
  }
}
