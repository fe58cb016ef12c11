import { Migration } from '@mikro-orm/migrations';

/**
 * The saga log: one row per saga (its latest snapshot), one row per step and
 * compensation outcome, and the outbox of events for Pulsar.
 */
export class Migration20261128000001SagaLog extends Migration {
  override up(): void {
    this.addSql(`
      create table saga_log (
        id uuid primary key,
        tipo text not null,
        estado text not null,
        datos jsonb not null,
        snapshot jsonb not null,
        version integer not null,
        timeout_minutos double precision not null,
        fecha_limite timestamptz not null,
        error_message text,
        idempotency_key text unique,
        request_hash text,
        fecha_inicio timestamptz not null,
        fecha_actualizacion timestamptz not null,
        fecha_fin timestamptz
      )`);
    // Listing is newest first, optionally by estado or tipo: each filter has an index in that order.
    this.addSql('create index saga_log_fecha_idx on saga_log (fecha_inicio desc, id desc)');
    this.addSql('create index saga_log_estado_fecha_idx on saga_log (estado, fecha_inicio desc, id desc)');
    this.addSql('create index saga_log_tipo_fecha_idx on saga_log (tipo, fecha_inicio desc, id desc)');
    // Recovery scans only the sagas that are still running.
    this.addSql(`create index saga_log_activas_idx on saga_log (id)
      where estado not in ('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA')`);

    for (const table of ['saga_pasos', 'saga_compensaciones']) {
      this.addSql(`
        create table ${table} (
          id uuid primary key,
          saga_id uuid not null references saga_log (id),
          orden integer not null,
          tipo text not null,
          exitoso boolean not null,
          error text,
          resultado jsonb,
          intentos integer not null,
          fecha_ejecucion timestamptz not null,
          -- one outcome per step (or compensation) and saga, whatever crashes and replays happen
          unique (saga_id, orden)
        )`);
    }

    this.addSql(`
      create table saga_events (
        id bigserial primary key,
        saga_id uuid not null references saga_log (id),
        secuencia integer not null,
        tipo text not null,
        estado text not null,
        payload jsonb not null,
        fecha timestamptz not null,
        publicado_en timestamptz,
        unique (saga_id, secuencia)
      )`);
    this.addSql('create index saga_events_pendientes_idx on saga_events (id) where publicado_en is null');
  }
}
