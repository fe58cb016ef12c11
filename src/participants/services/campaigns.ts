// The Campaigns service: campaigns are created ACTIVA and cancelled (CANCELADA)
// as the compensation of the saga's first step.
import type pg from 'pg';
import { z } from 'zod';
import { resourceTables, type ResourceRow, type ResourceSpec } from './resources.js';

/**
 * A date (2026-01-31) or a date-time, with or without its offset: the seed's
 * own example sends 2025-01-01T00:00:00, read as the server's local time.
 */
const fecha = z.union([z.iso.datetime({ offset: true, local: true }), z.iso.date()], {
  error: 'Debe ser una fecha ISO 8601 (AAAA-MM-DD o fecha-hora)',
});

export const campaignSchema = z.object({
  id: z.guid().nullish(),
  nombre: z.string().trim().min(1).max(200),
  tipo: z.string().trim().min(1).max(100),
  presupuesto: z.object({
    monto: z.number().positive(),
    moneda: z.string().trim().toUpperCase().regex(/^[A-Z]{3}$/, 'Debe ser un código ISO 4217 de 3 letras'),
  }),
  fecha_inicio: fecha,
  fecha_fin: fecha,
  id_afiliado: z.string().trim().min(1).max(200),
  descripcion: z.string().max(2000).nullish(),
  saga_id: z.string().trim().min(1).max(200).nullish(),
});

export type CampaignInput = z.output<typeof campaignSchema>;

export interface CampaignRow extends ResourceRow {
  nombre: string;
  tipo: string;
  presupuesto_monto: string;
  presupuesto_moneda: string;
  fecha_inicio: Date;
  fecha_fin: Date;
  id_afiliado: string;
  descripcion: string | null;
  saga_id: string | null;
  creado_en: Date;
  cancelado_en: Date | null;
}

export const CampaignEstado = { ACTIVA: 'ACTIVA', CANCELADA: 'CANCELADA' } as const;

export const campaignSpec: ResourceSpec<typeof campaignSchema, CampaignRow> = {
  servicio: 'campaigns',
  recurso: 'campaña',
  basePath: '/api/campaigns',
  compensacion: 'cancel',
  tables: resourceTables('campanas'),
  estados: { creado: CampaignEstado.ACTIVA, compensado: CampaignEstado.CANCELADA },
  compensadoEn: 'cancelado_en',
  schema: campaignSchema,

  rejection(input) {
    if (new Date(input.fecha_fin).getTime() < new Date(input.fecha_inicio).getTime()) {
      return 'campaña rechazada: fecha_fin es anterior a fecha_inicio';
    }
    return undefined;
  },

  async insert(client: pg.PoolClient, id, input, solicitudHash) {
    const result = await client.query<CampaignRow>(
      `insert into campanas (id, estado, nombre, tipo, presupuesto_monto, presupuesto_moneda,
         fecha_inicio, fecha_fin, id_afiliado, descripcion, saga_id, solicitud_hash)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       returning *`,
      [
        id,
        CampaignEstado.ACTIVA,
        input.nombre,
        input.tipo,
        input.presupuesto.monto,
        input.presupuesto.moneda,
        new Date(input.fecha_inicio),
        new Date(input.fecha_fin),
        input.id_afiliado,
        input.descripcion ?? null,
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
      nombre: row.nombre,
      tipo: row.tipo,
      presupuesto: { monto: Number(row.presupuesto_monto), moneda: row.presupuesto_moneda },
      fecha_inicio: row.fecha_inicio.toISOString(),
      fecha_fin: row.fecha_fin.toISOString(),
      id_afiliado: row.id_afiliado,
      descripcion: row.descripcion,
      saga_id: row.saga_id,
      creado_en: row.creado_en.toISOString(),
      cancelado_en: row.cancelado_en?.toISOString() ?? null,
    };
  },
};
