// The benchmark's check that it measured correct work: every saga ended where it
// should, in the saga log and at the participants. A completed saga leaves three
// live resources; a failed one a cancelled campaign, a reverted payment and no
// report. Resource ids are the ones the orchestrator derives from the saga id.
import type pg from 'pg';
import { derivedUuid } from '../../src/saga/ids.js';
import type { SagaRun } from './drivers.js';

export interface ParticipantUrls {
  campaigns: string;
  pagos: string;
  reporting: string;
}

const EXPECTED = {
  ok: { estado: 'COMPLETADA', campana: 'ACTIVA', pago: 'PROCESADO', reporte: 'GENERADO' },
  failing: { estado: 'COMPENSADA', campana: 'CANCELADA', pago: 'REVERTIDO', reporte: null },
} as const;

/** Each saga's end as the system recorded it, by saga id. */
export type EndsOf = (sagaIds: readonly string[]) => Promise<Map<string, string>>;

/** Our engine's record of the ends: saga_log.estado. */
export function sagaLogEnds(pool: pg.Pool): EndsOf {
  return async (sagaIds) => {
    const { rows } = await pool.query<{ id: string; estado: string }>('select id, estado from saga_log where id = any($1::uuid[])', [sagaIds]);
    return new Map(rows.map((r) => [r.id, r.estado]));
  };
}

/**
 * Returns the problems found (empty when every outcome is right). `endsOf` reads
 * each saga's recorded end (a DBOS workflow's output, for the comparison), which
 * must be COMPLETADA or COMPENSADA as for our saga log.
 */
export async function checkOutcomes(endsOf: EndsOf, urls: ParticipantUrls, runs: readonly SagaRun[]): Promise<string[]> {
  const problems: string[] = [];
  const estados = await endsOf(runs.map((r) => r.sagaId));
  let next = 0;
  const worker = async () => {
    while (next < runs.length && problems.length < 20) {
      const run = runs[next++]!;
      const want = run.failing ? EXPECTED.failing : EXPECTED.ok;
      const id = run.sagaId;
      if (estados.get(id) !== want.estado) problems.push(`saga ${id}: ${estados.get(id) ?? 'missing'}, expected ${want.estado}`);
      const found = await Promise.all([
        estadoOf(`${urls.campaigns}/api/campaigns/${derivedUuid(id, 'CREAR_CAMPANA')}`),
        estadoOf(`${urls.pagos}/pagos/${derivedUuid(id, 'PROCESAR_PAGO')}`),
        estadoOf(`${urls.reporting}/reporting/${derivedUuid(id, 'GENERAR_REPORTE')}`),
      ]);
      const expected = [want.campana, want.pago, want.reporte];
      if (found.some((f, k) => f !== expected[k])) {
        problems.push(`saga ${id}: participants hold ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return problems;
}

/** The resource's estado, or null when the participant has no such resource. */
async function estadoOf(url: string): Promise<string | null> {
  const res = await fetch(url);
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  const body = (await res.json()) as { estado?: unknown };
  return typeof body.estado === 'string' ? body.estado : `HTTP ${res.status}`;
}
