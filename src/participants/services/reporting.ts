// The Reporting service: reports are created GENERADO and cancelled (CANCELADO)
// as the compensation. Only the report types it offers can be requested.
import type pg from 'pg';
import { z } from 'zod';
import { resourceTables, type ResourceRow, type ResourceSpec } from './resources.js';

export const TIPOS_REPORTE: readonly string[] = [
  'metricas_generales',
  'rendimiento_campana',
  'conversiones',
  'pagos_afiliado',
];

export const reportSchema = z.object({
  id: z.guid().nullish(),
  tipo_reporte: z.string().trim().min(1).max(100),
  filtros: z.record(z.string(), z.unknown()).nullish(),
  id_campana: z.string().trim().min(1).max(200).nullish(),
  saga_id: z.string().trim().min(1).max(200).nullish(),
});

export type ReportInput = z.output<typeof reportSchema>;

export interface ReportRow extends ResourceRow {
  tipo_reporte: string;
  filtros: Record<string, unknown>;
  id_campana: string | null;
  saga_id: string | null;
  creado_en: Date;
  cancelado_en: Date | null;
}

export const ReportEstado = { GENERADO: 'GENERADO', CANCELADO: 'CANCELADO' } as const;

export const reportSpec: ResourceSpec<typeof reportSchema, ReportRow> = {
  servicio: 'reporting',
  recurso: 'reporte',
  basePath: '/reporting',
  compensacion: 'cancel',
  tables: resourceTables('reportes'),
  estados: { creado: ReportEstado.GENERADO, compensado: ReportEstado.CANCELADO },
  compensadoEn: 'cancelado_en',
  schema: reportSchema,

  rejection(input) {
    if (!TIPOS_REPORTE.includes(input.tipo_reporte)) {
      return `reporte rechazado: tipo_reporte no ofrecido (${input.tipo_reporte}); ofrecidos: ${TIPOS_REPORTE.join(', ')}`;
    }
    return undefined;
  },

  async insert(client: pg.PoolClient, id, input, solicitudHash) {
    const result = await client.query<ReportRow>(
      `insert into reportes (id, estado, tipo_reporte, filtros, id_campana, saga_id, solicitud_hash)
       values ($1, $2, $3, $4, $5, $6, $7)
       returning *`,
      [
        id,
        ReportEstado.GENERADO,
        input.tipo_reporte,
        JSON.stringify(input.filtros ?? {}),
        input.id_campana ?? null,
        input.saga_id ?? null,
        solicitudHash,
      ],
    );
    return result.rows[0]!;
  },

  toJson(row) {
    return {
      id: row.id,
      estado: row.estado,
      tipo_reporte: row.tipo_reporte,
      filtros: row.filtros,
      id_campana: row.id_campana,
      saga_id: row.saga_id,
      creado_en: row.creado_en.toISOString(),
      cancelado_en: row.cancelado_en?.toISOString() ?? null,
    };
  },
};
