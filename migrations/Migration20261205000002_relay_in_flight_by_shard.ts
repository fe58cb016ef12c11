import { Migration } from '@mikro-orm/migrations';

/**
 * What the outbox relay has in flight is kept by shard, not row by row. The claim
 * wrote each taken event's sequence id into its saga_events row (secuencia_envio), an
 * update that, with the column indexed, wrote a new entry in each of the table's four
 * indexes: about 21 µs of PostgreSQL's time per event, half of the claim's
 * (auto_explain on `npm run bench -- --pulsar --rate 150`). Now a claim appends the
 * events it takes, and their sequence ids, to its shard's saga_relay_shards row (one
 * update per shard and pass, whatever the events), and the record takes them off again.
 *  - en_vuelo / en_vuelo_secuencias: the shard's events in flight and their sequence
 *    ids, in sending order (the same length; en_vuelo_secuencias[i] is en_vuelo[i]'s).
 *  - The rows in flight when this runs move there, in their sequence-id order.
 *  - secuencia_envio and its index go.
 */
export class Migration20261205000002RelayInFlightByShard extends Migration {
  override up(): void {
    this.addSql(`alter table saga_relay_shards
      add column en_vuelo bigint[] not null default '{}',
      add column en_vuelo_secuencias bigint[] not null default '{}'`);
    this.addSql(`update saga_relay_shards r set en_vuelo = f.ids, en_vuelo_secuencias = f.secuencias
      from (select shard, array_agg(id order by secuencia_envio) as ids, array_agg(secuencia_envio order by secuencia_envio) as secuencias
              from saga_events
             where secuencia_envio is not null and publicado_en is null and descartado_en is null
             group by shard) f
     where r.shard = f.shard`);
    this.addSql('drop index saga_events_en_envio_idx');
    this.addSql('alter table saga_events drop column secuencia_envio');
  }
}
