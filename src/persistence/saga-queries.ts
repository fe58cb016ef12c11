// The read side of the saga log, in the shape of the BFF contract. Status and
// lists render a saga with the same SQL (its steps and compensations as
// json_agg), one query each; lists are filtered, ordered and paged in SQL.
import type { Database } from './database.js';
import { SagaCountSchema } from './entities/index.js';

export interface OutcomeView {
  id: string;
  tipo: string;
  exitoso: boolean;
  error: string | null;
  fecha_ejecucion: string;
  resultado: unknown;
}

export interface SagaView {
  saga_id: string;
  estado: string;
  tipo: string;
  pasos: OutcomeView[];
  compensaciones: OutcomeView[];
  fecha_inicio: string;
  fecha_fin: string | null;
  error_message: string | null;
}

export interface ListFilter {
  estado?: string;
  tipo?: string;
  pagina: number;
  limite: number;
}

/** A timestamp as JavaScript's toISOString writes it (UTC, milliseconds, Z). */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const outcomes = (table: string) => `coalesce((
    select json_agg(json_build_object('id', o.id, 'tipo', o.tipo, 'exitoso', o.exitoso, 'error', o.error,
                                      'fecha_ejecucion', ${iso('o.fecha_ejecucion')}, 'resultado', o.resultado)
                    order by o.orden)
    from ${table} o where o.saga_id = l.id), '[]'::json)`;

/** A saga in the contract's shape, from saga_log aliased `l`. */
const VIEW_COLUMNS = `l.id as saga_id, l.estado, l.tipo,
         ${outcomes('saga_pasos')} as pasos,
         ${outcomes('saga_compensaciones')} as compensaciones,
         ${iso('l.fecha_inicio')} as fecha_inicio, ${iso('l.fecha_fin')} as fecha_fin, l.error_message`;

const STATUS_SQL = `select ${VIEW_COLUMNS} from saga_log l where l.id = ?`;

/**
 * A page, newest first. The page's ids are chosen first, so the steps are
 * rendered for its rows only, not for the rows an OFFSET skips.
 */
const listSql = (conditions: string[]) => `
  with page as (
    select id, fecha_inicio from saga_log
    ${conditions.length === 0 ? '' : `where ${conditions.join(' and ')}`}
    order by fecha_inicio desc, id desc limit ? offset ?
  )
  select ${VIEW_COLUMNS} from page p join saga_log l on l.id = p.id
  order by p.fecha_inicio desc, p.id desc`;

export class SagaQueries {
  constructor(private readonly db: Database) {}

  /**
   * One saga in the contract's shape, in one query: clients poll or wait on
   * this route, so it costs one round trip and no entity hydration.
   */
  async status(sagaId: string): Promise<SagaView | null> {
    const rows = await this.db.em.getConnection().execute<SagaView[]>(STATUS_SQL, [sagaId], 'all');
    return rows[0] ?? null;
  }

  async list(filter: ListFilter): Promise<{ sagas: SagaView[]; total: number }> {
    const where = {
      ...(filter.estado === undefined ? {} : { estado: filter.estado }),
      ...(filter.tipo === undefined ? {} : { tipo: filter.tipo }),
    };
    const conditions = Object.keys(where).map((column) => `${column} = ?`);
    const params = [...Object.values(where), filter.limite, (filter.pagina - 1) * filter.limite];
    const [sagas, counts] = await Promise.all([
      this.db.em.getConnection().execute<SagaView[]>(listSql(conditions), params, 'all'),
      // From the counters the saga log's triggers keep: a few rows, whatever the history.
      this.db.em.fork().find(SagaCountSchema, where),
    ]);
    const total = counts.reduce((sum, c) => sum + Number(c.n), 0);
    return { sagas, total };
  }
}
