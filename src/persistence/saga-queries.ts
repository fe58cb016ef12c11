// The read side of the saga log, in the shape of the BFF contract. Lists are
// filtered, ordered and paged in SQL, and the steps of a page are fetched in
// one query per table.
import type { Database } from './database.js';
import {
  SagaCompensacionSchema,
  SagaCountSchema,
  SagaLogSchema,
  SagaPasoSchema,
  type SagaLog,
  type SagaOutcomeRow,
} from './entities/index.js';

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

const STATUS_SQL = `
  select l.id as saga_id, l.estado, l.tipo,
         ${outcomes('saga_pasos')} as pasos,
         ${outcomes('saga_compensaciones')} as compensaciones,
         ${iso('l.fecha_inicio')} as fecha_inicio, ${iso('l.fecha_fin')} as fecha_fin, l.error_message
  from saga_log l where l.id = ?`;

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
    const em = this.db.em.fork();
    const where = {
      ...(filter.estado === undefined ? {} : { estado: filter.estado }),
      ...(filter.tipo === undefined ? {} : { tipo: filter.tipo }),
    };
    const [rows, counts] = await Promise.all([
      em.find(SagaLogSchema, where, {
        exclude: ['snapshot', 'datos'],
        orderBy: { fechaInicio: 'desc', id: 'desc' },
        limit: filter.limite,
        offset: (filter.pagina - 1) * filter.limite,
      }),
      // From the counters the saga log's triggers keep: a few rows, whatever the history.
      em.fork().find(SagaCountSchema, where),
    ]);
    const total = counts.reduce((sum, c) => sum + Number(c.n), 0);
    return { sagas: await this.withOutcomes(rows), total };
  }

  private async withOutcomes(sagas: Omit<SagaLog, 'snapshot' | 'datos'>[]): Promise<SagaView[]> {
    if (sagas.length === 0) return [];
    const sagaId = { $in: sagas.map((s) => s.id) };
    const em = this.db.em.fork();
    const [pasos, compensaciones] = await Promise.all([
      em.find(SagaPasoSchema, { sagaId }, { orderBy: { orden: 'asc' } }),
      em.fork().find(SagaCompensacionSchema, { sagaId }, { orderBy: { orden: 'asc' } }),
    ]);
    const bySaga = (rows: SagaOutcomeRow[]) => {
      const m = new Map<string, OutcomeView[]>();
      for (const r of rows) {
        const list = m.get(r.sagaId) ?? [];
        list.push({
          id: r.id,
          tipo: r.tipo,
          exitoso: r.exitoso,
          error: r.error,
          fecha_ejecucion: r.fechaEjecucion.toISOString(),
          resultado: r.resultado ?? null,
        });
        m.set(r.sagaId, list);
      }
      return m;
    };
    const pasosBy = bySaga(pasos);
    const compBy = bySaga(compensaciones);
    return sagas.map((s) => ({
      saga_id: s.id,
      estado: s.estado,
      tipo: s.tipo,
      pasos: pasosBy.get(s.id) ?? [],
      compensaciones: compBy.get(s.id) ?? [],
      fecha_inicio: s.fechaInicio.toISOString(),
      fecha_fin: s.fechaFin?.toISOString() ?? null,
      error_message: s.errorMessage,
    }));
  }
}
