import { Migration } from '@mikro-orm/migrations';

/**
 * What the outbox relay needs to publish every event once, in order, with
 * broker deduplication on (src/events/outbox-relay.ts explains the rules):
 *  - transaccion: the id of the transaction that inserted the row, filled in by
 *    a column default, so no writer has to know. A row whose transaccion is below
 *    the oldest transaction still running (pg_snapshot_xmin) can no longer be
 *    overtaken by a row that commits later.
 *  - secuencia_envio: the sequence id the broker sees, given when the relay takes
 *    the row into a batch and kept until the broker has it, so a replay after a
 *    crash reuses it; the last one given is kept in saga_outbox_relay, so they
 *    only grow, whichever relay runs.
 *  - intentos_envio, descartado_en and saga_events_descartados: a message the
 *    broker keeps refusing is set aside (dead letter) and the rest flow on.
 */
export class Migration20261129000001OutboxRelay extends Migration {
  override up(): void {
    this.addSql('alter table saga_events add column transaccion xid8 not null default pg_current_xact_id()');
    this.addSql('alter table saga_events add column secuencia_envio bigint');
    this.addSql('alter table saga_events add column intentos_envio integer not null default 0');
    this.addSql('alter table saga_events add column descartado_en timestamptz');
    this.addSql('drop index saga_events_pendientes_idx');
    // The rows still to publish, in the order the relay takes them.
    this.addSql(`create index saga_events_pendientes_idx on saga_events (transaccion, id)
      where publicado_en is null and descartado_en is null`);
    // The batch in flight (taken, not yet acknowledged), in the order it is sent.
    this.addSql(`create index saga_events_en_envio_idx on saga_events (secuencia_envio)
      where secuencia_envio is not null and publicado_en is null and descartado_en is null`);
    this.addSql(`
      create table saga_outbox_relay (
        id integer primary key check (id = 1),
        -- The Pulsar producer name of this saga log's relay: one per saga log, so a
        -- new saga log never meets the deduplication state of another on the broker.
        productor text not null,
        ultima_secuencia_envio bigint not null
      )`);
    this.addSql(`insert into saga_outbox_relay (id, productor, ultima_secuencia_envio)
      values (1, 'saga-outbox-' || left(replace(gen_random_uuid()::text, '-', ''), 12), 0)`);
    this.addSql(`
      create table saga_events_descartados (
        evento_id bigint primary key references saga_events (id),
        saga_id uuid not null,
        secuencia integer not null,
        tipo text not null,
        intentos integer not null,
        error text not null,
        descartado_en timestamptz not null
      )`);
  }
}
