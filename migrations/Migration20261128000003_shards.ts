import { Migration } from '@mikro-orm/migrations';

/**
 * Sharding of the saga log between orchestrator processes. Each saga belongs to
 * one of a fixed number of shards; a process runs the sagas of the shards it
 * holds a lease on. The lease's epoch grows at every change of owner, and every
 * write to the saga log is checked against it (see SagaStore.commit).
 */
export class Migration20261128000003Shards extends Migration {
  override up(): void {
    this.addSql(`
      create table saga_shards (
        shard integer primary key,
        owner text,
        epoch bigint not null default 0,
        -- On the database's clock: processes never compare their own clocks.
        lease_until timestamptz
      )`);
    // 32 shards: enough to spread over a few dozen processes, few enough to scan.
    this.addSql('insert into saga_shards (shard) select generate_series(0, 31)');
    this.addSql(`
      create table saga_nodes (
        node_id text primary key,
        last_seen timestamptz not null
      )`);
    this.addSql('alter table saga_log add column shard integer not null default 0');
    this.addSql(`create index saga_log_shard_activas_idx on saga_log (shard)
      where estado not in ('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA')`);
    this.addSql('drop index saga_log_activas_idx');
    // The lease epoch each event was written under (null for SagaIniciada, which
    // any process may write): a saga's epochs never go down, or a fenced-out
    // process wrote after a take-over.
    this.addSql('alter table saga_events add column epoch bigint');
  }
}
