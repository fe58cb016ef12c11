import { Migration } from '@mikro-orm/migrations';

/**
 * The reference participants' own tables (they stand for other teams' services and
 * share only the database server with the orchestrator). Each service has its
 * resources, its tombstones (ids compensated before they were created, whose late
 * create must be refused) and its Idempotency-Key answers.
 */
export class Migration20261128000002Participants extends Migration {
  override up(): void {
    this.addSql(`
      create table campanas (
        id uuid primary key,
        estado text not null check (estado in ('ACTIVA', 'CANCELADA')),
        nombre text not null,
        tipo text not null,
        presupuesto_monto numeric not null check (presupuesto_monto > 0),
        presupuesto_moneda text not null,
        fecha_inicio timestamptz not null,
        fecha_fin timestamptz not null,
        id_afiliado text not null,
        descripcion text,
        saga_id text,
        -- fingerprint of the create request, to tell a repeated create from a conflicting one
        solicitud_hash text not null,
        creado_en timestamptz not null default now(),
        cancelado_en timestamptz,
        check (fecha_fin >= fecha_inicio)
      )`);

    this.addSql(`
      create table pagos (
        id uuid primary key,
        estado text not null check (estado in ('PROCESADO', 'REVERTIDO')),
        id_afiliado text not null,
        monto numeric not null check (monto > 0),
        moneda text not null,
        referencia_pago text not null,
        id_campana text,
        saga_id text,
        solicitud_hash text not null,
        creado_en timestamptz not null default now(),
        revertido_en timestamptz
      )`);

    this.addSql(`
      create table reportes (
        id uuid primary key,
        estado text not null check (estado in ('GENERADO', 'CANCELADO')),
        tipo_reporte text not null,
        filtros jsonb not null default '{}',
        id_campana text,
        saga_id text,
        solicitud_hash text not null,
        creado_en timestamptz not null default now(),
        cancelado_en timestamptz
      )`);

    for (const prefix of ['campanas', 'pagos', 'reportes']) {
      // Every effect applied, appended in the transaction that applies it: the
      // chaos suite checks from it that no effect ever happened twice.
      this.addSql(`
        create table ${prefix}_efectos (
          id bigserial primary key,
          recurso_id uuid not null,
          accion text not null,
          aplicado_en timestamptz not null default now()
        )`);
      this.addSql(`
        create table ${prefix}_anulados (
          id uuid primary key,
          anulado_en timestamptz not null default now()
        )`);
      // One row per key, inserted first in the request's transaction; status and
      // respuesta are written in that same transaction, so a committed row has both.
      this.addSql(`
        create table ${prefix}_idempotencia (
          clave text primary key,
          request_hash text not null,
          metodo text not null,
          ruta text not null,
          status integer,
          respuesta jsonb,
          creado_en timestamptz not null default now()
        )`);
    }
  }
}
