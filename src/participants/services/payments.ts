// The Payments service: payments are created PROCESADO and reverted (REVERTIDO)
// as the compensation. A payment above the configured maximum, or in a currency
// the service does not handle, is refused with a 422.
import type pg from 'pg';
import { z } from 'zod';
import { resourceTables, type ResourceRow, type ResourceSpec } from './resources.js';

export const MONEDAS_SOPORTADAS: readonly string[] = [
  'USD', 'EUR', 'COP', 'MXN', 'ARS', 'BRL', 'CLP', 'PEN', 'GBP', 'CAD',
];

export const DEFAULT_PAGOS_MONTO_MAXIMO = 1_000_000;

export const paymentSchema = z.object({
  id: z.guid().nullish(),
  id_afiliado: z.string().trim().min(1).max(200),
  monto: z.number().positive(),
  moneda: z.string().trim().toUpperCase().min(1).max(10),
  referencia_pago: z.string().trim().min(1).max(200),
  id_campana: z.string().trim().min(1).max(200).nullish(),
  saga_id: z.string().trim().min(1).max(200).nullish(),
});

export type PaymentInput = z.output<typeof paymentSchema>;

export interface PaymentRow extends ResourceRow {
  id_afiliado: string;
  monto: string;
  moneda: string;
  referencia_pago: string;
  id_campana: string | null;
  saga_id: string | null;
  creado_en: Date;
  revertido_en: Date | null;
}

export const PaymentEstado = { PROCESADO: 'PROCESADO', REVERTIDO: 'REVERTIDO' } as const;

export function paymentSpec(montoMaximo: number): ResourceSpec<typeof paymentSchema, PaymentRow> {
  return {
    servicio: 'pagos',
    recurso: 'pago',
    basePath: '/pagos',
    compensacion: 'revertir',
    tables: resourceTables('pagos'),
    estados: { creado: PaymentEstado.PROCESADO, compensado: PaymentEstado.REVERTIDO },
    compensadoEn: 'revertido_en',
    schema: paymentSchema,

    rejection(input) {
      if (input.monto > montoMaximo) return `pago rechazado: monto supera el máximo (${montoMaximo})`;
      if (!MONEDAS_SOPORTADAS.includes(input.moneda)) {
        return `pago rechazado: moneda no soportada (${input.moneda})`;
      }
      return undefined;
    },

    async insert(client: pg.PoolClient, id, input, solicitudHash) {
      const result = await client.query<PaymentRow>(
        `insert into pagos (id, estado, id_afiliado, monto, moneda, referencia_pago, id_campana, saga_id,
           solicitud_hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         returning *`,
        [
          id,
          PaymentEstado.PROCESADO,
          input.id_afiliado,
          input.monto,
          input.moneda,
          input.referencia_pago,
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
        id_afiliado: row.id_afiliado,
        monto: Number(row.monto),
        moneda: row.moneda,
        referencia_pago: row.referencia_pago,
        id_campana: row.id_campana,
        saga_id: row.saga_id,
        creado_en: row.creado_en.toISOString(),
        revertido_en: row.revertido_en?.toISOString() ?? null,
      };
    },
  };
}
