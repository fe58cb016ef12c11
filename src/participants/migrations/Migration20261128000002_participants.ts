import { Migration } from '@mikro-orm/migrations';

/** The reference participants' tables, in their own schema `participantes`. */
const TABLES = ['campanas', 'pagos', 'reportes'].flatMap((t) => [t, `${t}_efectos`, `${t}_anulados`, `${t}_idempotencia`]);

/**
 * The reference participants' own tables (they stand for other teams' services
 * and share only the database server with the orchestrator), in their own
 * schema, applied by their role only. Each service has its resources, its
 * tombstones (ids compensated before they were created, whose late create must
 * be refused) and its Idempotency-Key answers.
 *
 * Earlier versions created these tables in the orchestrator's schema (public)
 * from the orchestrator's migrations; where they exist there, they are moved,
 * data and all, instead of being created.
 */
export class Migration20261128000002Participants extends Migration {
  override up(): void {
    this.addSql('create schema if not exists participantes');
    this.addSql(`do $$
      declare t text;
      begin
        foreach t in array array[${TABLES.map((t) => `'${t}'`).join(', ')}] loop
          if to_regclass('public.' || t) is not null and to_regclass('participantes.' || t) is null then
            execute format('alter table public.%I set schema participantes', t);
          end if;
        end loop;
      end $$`);

    this.addSql(`
      create table if not exists participantes.campanas (
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
      create table if not exists participantes.pagos (
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
      create table if not exists participantes.reportes (
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
        create table if not exists participantes.${prefix}_efectos (
          id bigserial primary key,
          recurso_id uuid not null,
          accion text not null,
          aplicado_en timestamptz not null default now()
        )`);
      this.addSql(`
        create table if not exists participantes.${prefix}_anulados (
          id uuid primary key,
          anulado_en timestamptz not null default now()
        )`);
      // One row per key, inserted first in the request's transaction; status and
      // respuesta are written in that same transaction, so a committed row has both.
      this.addSql(`
        create table if not exists participantes.${prefix}_idempotencia (
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
