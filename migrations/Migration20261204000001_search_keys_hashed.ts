import { Migration } from '@mikro-orm/migrations';

/**
 * Search keys are indexed by their hash, never by their value.
 *
 * saga_claves' primary key held the value itself, and a btree index entry can
 * be at most about 2,700 bytes: 1,000 CJK characters (3,000 bytes of UTF-8), a
 * valid id_afiliado, made every insert of that saga fail (SQLSTATE 54000), so
 * the saga could never be recorded. The index now holds md5(valor), 16 bytes
 * whatever the value's length; md5 only spreads the values over the index (a
 * search compares the value too, so two values with one hash are never
 * confused, and the primary key holds saga_id, so they never conflict).
 */
export class Migration20261204000001SearchKeysHashed extends Migration {
  override up(): void {
    this.addSql(`alter table saga_claves add column valor_hash uuid generated always as (md5(valor)::uuid) stored`);
    this.addSql('alter table saga_claves drop constraint saga_claves_pkey');
    this.addSql('alter table saga_claves add primary key (clave, valor_hash, fecha_inicio, saga_id)');
  }
}
