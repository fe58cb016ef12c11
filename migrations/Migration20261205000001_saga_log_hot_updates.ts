import { Migration } from '@mikro-orm/migrations';

/**
 * A saga's row is rewritten at every step. While an index covered a column a
 * step changes (estado, esperado_antes, and the partial indexes' condition
 * `estado not in (…)`), PostgreSQL wrote a new entry in each of the table's
 * nine indexes at every step. Now the indexes cover only what is fixed while a
 * saga runs, so a step's update is a heap-only tuple (HOT) update: no index
 * entry, and the old version is pruned in place.
 *  - estado_final: the terminal state, null while the saga runs. It changes
 *    when a saga ends (and when a retry reopens one), as the running sagas'
 *    partial indexes must then.
 *  - Listing by a terminal estado reads (estado_final, fecha_inicio); by a
 *    running one, the running sagas newest first, filtered (few: the sagas in
 *    flight). Stuck sagas are found among the running ones the same way, so
 *    esperado_antes, changed at each step, has no index.
 *  - fillfactor 50: a row (about 2 kB with its snapshot) leaves room on its
 *    page for the next version, which a HOT update needs.
 * Adding a stored generated column rewrites the table under an exclusive lock:
 * 7 s for 300,000 sagas on two cores (docs/configuration.md).
 */
export class Migration20261205000001SagaLogHotUpdates extends Migration {
  override up(): void {
    this.addSql(`alter table saga_log add column estado_final text
      generated always as (case when estado in ('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA') then estado end) stored`);
    this.addSql('drop index saga_log_estado_fecha_idx');
    this.addSql(`create index saga_log_final_fecha_idx on saga_log (estado_final, fecha_inicio desc, id desc)
      where estado_final is not null`);
    this.addSql('create index saga_log_en_curso_fecha_idx on saga_log (fecha_inicio desc, id desc) where estado_final is null');
    this.addSql('drop index saga_log_shard_activas_idx');
    this.addSql('create index saga_log_shard_activas_idx on saga_log (shard) where estado_final is null');
    this.addSql('drop index saga_log_version_activas_idx');
    this.addSql('create index saga_log_version_activas_idx on saga_log (tipo, version_definicion) where estado_final is null');
    this.addSql('drop index saga_log_esperado_idx');
    this.addSql('alter table saga_log set (fillfactor = 50)');
  }
}
