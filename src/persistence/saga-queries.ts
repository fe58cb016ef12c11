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

export class SagaQueries {
  constructor(private readonly db: Database) {}

  async status(sagaId: string): Promise<SagaView | null> {
    const em = this.db.em.fork();
    const saga = await em.findOne(SagaLogSchema, { id: sagaId }, { exclude: ['snapshot', 'datos'] });
    if (!saga) return null;
    const [view] = await this.withOutcomes([saga]);
    return view ?? null;
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
