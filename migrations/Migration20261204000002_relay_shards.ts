import { Migration } from '@mikro-orm/migrations';

/**
 * The outbox relay by shard (src/events/outbox-relay.ts, docs/pulsar-relay.md): each
 * shard's events are published by the process that holds the shard's lease, under a
 * producer name of the shard's own, with sequence ids of the shard's own.
 *  - saga_events.shard: the saga's shard (fixed for its life), written by the group
 *    commit with each event; existing rows take it from saga_log.
 *  - the pending and in-flight indexes lead with the shard, as the claim and the
 *    replay of one shard read them.
 *  - saga_relay_shards: the last sequence id given in each shard, kept across
 *    hand-overs so that a new holder's ids go on above the old holder's. Each starts
 *    from the saga log's last id, so that rows numbered before this migration (in
 *    flight) stay below every id given after it.
 */
export class Migration20261204000002RelayShards extends Migration {
  override up(): void {
    this.addSql('alter table saga_events add column shard integer');
    this.addSql('update saga_events e set shard = l.shard from saga_log l where l.id = e.saga_id');
    this.addSql('alter table saga_events alter column shard set not null');
    this.addSql('drop index saga_events_pendientes_idx');
    this.addSql(`create index saga_events_pendientes_idx on saga_events (shard, transaccion, id)
      where publicado_en is null and descartado_en is null`);
    this.addSql('drop index saga_events_en_envio_idx');
    this.addSql(`create index saga_events_en_envio_idx on saga_events (shard, secuencia_envio)
      where secuencia_envio is not null and publicado_en is null and descartado_en is null`);
    this.addSql(`
      create table saga_relay_shards (
        shard integer primary key references saga_shards (shard),
        ultima_secuencia_envio bigint not null
      )`);
    this.addSql(`insert into saga_relay_shards (shard, ultima_secuencia_envio)
      select s.shard, r.ultima_secuencia_envio from saga_shards s, saga_outbox_relay r`);
  }
}
