import { Migration } from '@mikro-orm/migrations';

/**
 * Versioned definitions and the operator layer.
 *  - saga_log gains the definition version a saga runs on (existing sagas ran
 *    on version 1), whether an operator paused it, why it was parked, when it
 *    should next change (a saga past that is stuck), and the lease epoch its
 *    last transition was written under.
 *  - saga_compensaciones may hold several outcomes of one compensation (a
 *    retry after COMPENSACION_FALLIDA), and marks those done by hand.
 *  - saga_ordenes: operator orders waiting for the saga's actor (a mailbox);
 *    saga_operaciones: the append-only audit of every decided order.
 *  - saga_lotes: bulk operations, resumable; operador_tokens: who may act
 *    (operador), read the operator views (lector), or only use the contract (cliente).
 *  - saga_definiciones: the structure of each registered version;
 *    saga_nodes.definiciones: the versions each live process can run.
 *  - saga_claves: business data to search sagas by, one row per key.
 */
export class Migration20261128000005OperationsAndVersions extends Migration {
  override up(): void {
    const terminal = `('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA')`;
    this.addSql(`alter table saga_log
      add column version_definicion integer not null default 1,
      add column pausada boolean not null default false,
      add column aparcada text,
      add column esperado_antes timestamptz,
      -- the lease epoch of the last transition written (null until one is): never goes down
      add column epoch bigint`);
    this.addSql(`create index saga_log_esperado_idx on saga_log (esperado_antes) where estado not in ${terminal}`);
    this.addSql(`create index saga_log_aparcadas_idx on saga_log (fecha_inicio desc, id desc) where aparcada is not null`);
    this.addSql(`create index saga_log_version_activas_idx on saga_log (tipo, version_definicion) where estado not in ${terminal}`);

    this.addSql('alter table saga_compensaciones drop constraint saga_compensaciones_saga_id_orden_key');
    this.addSql('create index saga_compensaciones_saga_idx on saga_compensaciones (saga_id, orden)');
    this.addSql('alter table saga_compensaciones add column manual boolean not null default false');
    this.addSql('alter table saga_pasos add column manual boolean not null default false');

    this.addSql(`
      create table saga_ordenes (
        id text primary key,
        saga_id uuid not null references saga_log (id),
        shard integer not null,
        accion text not null,
        quien text not null,
        motivo text not null,
        datos jsonb not null default '{}',
        request_id text,
        lote_id uuid,
        fecha_solicitud timestamptz not null
      )`);
    this.addSql('create index saga_ordenes_shard_idx on saga_ordenes (shard, saga_id)');

    this.addSql(`
      create table saga_operaciones (
        id text primary key,
        saga_id uuid not null references saga_log (id),
        accion text not null,
        quien text not null,
        motivo text not null,
        datos jsonb not null default '{}',
        request_id text,
        lote_id uuid,
        fecha_solicitud timestamptz not null,
        fecha timestamptz not null,
        resultado text not null check (resultado in ('aceptada', 'rechazada')),
        detalle text
      )`);
    this.addSql('create index saga_operaciones_saga_idx on saga_operaciones (saga_id, fecha)');
    this.addSql('create index saga_operaciones_lote_idx on saga_operaciones (lote_id) where lote_id is not null');
    // An audit is only appended to.
    this.addSql(`
      create function saga_operaciones_append_only() returns trigger language plpgsql as $$
      begin
        raise exception 'saga_operaciones is append-only (% refused)', tg_op using errcode = '42501';
      end
      $$`);
    this.addSql(`create trigger saga_operaciones_append_only before update or delete or truncate on saga_operaciones
      for each statement execute function saga_operaciones_append_only()`);

    this.addSql(`
      create table saga_lotes (
        id uuid primary key,
        accion text not null,
        filtro jsonb not null,
        motivo text not null,
        quien text not null,
        datos jsonb not null default '{}',
        idempotency_key text unique,
        request_hash text,
        request_id text,
        creado_en timestamptz not null,
        -- the sagas it covers: those matching filtro that started before this instant
        hasta_inicio timestamptz not null,
        total integer not null,
        -- sagas ordered by id: the last one handed an order
        cursor uuid,
        enviadas integer not null default 0,
        estado text not null check (estado in ('en_curso', 'terminado')),
        terminado_en timestamptz,
        -- which process works on it, until when (a crashed worker's lote is taken over)
        owner text,
        lease_until timestamptz
      )`);

    this.addSql(`
      create table operador_tokens (
        id text primary key,
        nombre text not null,
        rol text not null check (rol in ('operador', 'lector', 'cliente')),
        -- sha256 of the secret part; the secret itself is never stored
        hash bytea not null,
        creado_en timestamptz not null default now(),
        revocado_en timestamptz
      )`);

    this.addSql(`
      create table saga_definiciones (
        tipo text not null,
        version integer not null,
        huella text not null,
        registrada_en timestamptz not null default now(),
        primary key (tipo, version)
      )`);
    this.addSql(`alter table saga_nodes add column definiciones text[] not null default '{}'`);

    this.addSql(`
      create table saga_claves (
        clave text not null,
        valor text not null,
        fecha_inicio timestamptz not null,
        saga_id uuid not null references saga_log (id),
        primary key (clave, valor, fecha_inicio, saga_id)
      )`);

  }
}
