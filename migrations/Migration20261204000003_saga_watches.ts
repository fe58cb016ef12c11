import { Migration } from '@mikro-orm/migrations';

/**
 * Live views of a saga (a BFF's server-sent events) are recorded here while
 * they are open. The group commit tells the BFFs every change of a watched saga,
 * and otherwise only what their waits need (a saga ending, an operator order
 * decided): each NOTIFY wakes every listening backend and BFF, so a change
 * nobody watches is not told. `hasta` bounds a watch whose BFF died.
 */
export class Migration20261204000003SagaWatches extends Migration {
  override up(): void {
    this.addSql(`create table saga_vigilancias (
      id uuid primary key,
      saga_id uuid not null,
      hasta timestamptz not null
    )`);
    this.addSql('create index saga_vigilancias_saga on saga_vigilancias (saga_id)');
  }
}
