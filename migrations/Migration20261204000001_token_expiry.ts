import { Migration } from '@mikro-orm/migrations';

/**
 * Operator tokens expire (`npm run token -- --dias N`) and say when they were
 * last used (`--listar`): a token nobody uses any more is one to revoke.
 */
export class Migration20261204000001TokenExpiry extends Migration {
  override up(): void {
    this.addSql('alter table operador_tokens add column expira_en timestamptz, add column usado_en timestamptz');
  }
}
