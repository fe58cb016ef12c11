import { Migration } from '@mikro-orm/migrations';

/**
 * How many sagas each (tipo, estado) has, kept exact by statement-level
 * triggers in the same transaction as the saga-log write. The list's `total`
 * reads it instead of counting a log that only grows: a count over a million
 * finished sagas costs more than the rest of a request.
 *
 * Statement-level (transition tables), so a group-commit batch that moves a
 * hundred sagas updates each counter once; the rows are upserted in key
 * order, so concurrent writers lock them in the same order.
 */
export class Migration20261128000004SagaCounts extends Migration {
  override up(): void {
    this.addSql(`
      create table saga_counts (
        tipo text not null,
        estado text not null,
        n bigint not null,
        primary key (tipo, estado)
      )`);
    this.addSql(`insert into saga_counts (tipo, estado, n) select tipo, estado, count(*) from saga_log group by tipo, estado`);
    this.addSql(`
      create function saga_counts_apply() returns trigger language plpgsql as $$
      begin
        if tg_op = 'INSERT' then
          insert into saga_counts (tipo, estado, n)
          select tipo, estado, count(*) from new_rows group by tipo, estado order by tipo, estado
          on conflict (tipo, estado) do update set n = saga_counts.n + excluded.n;
        elsif tg_op = 'UPDATE' then
          insert into saga_counts (tipo, estado, n)
          select tipo, estado, sum(d) from (
            select tipo, estado, 1 as d from new_rows
            union all
            select tipo, estado, -1 as d from old_rows
          ) changes
          group by tipo, estado having sum(d) <> 0 order by tipo, estado
          on conflict (tipo, estado) do update set n = saga_counts.n + excluded.n;
        else
          insert into saga_counts (tipo, estado, n)
          select tipo, estado, -count(*) from old_rows group by tipo, estado order by tipo, estado
          on conflict (tipo, estado) do update set n = saga_counts.n + excluded.n;
        end if;
        return null;
      end
      $$`);
    this.addSql(`create trigger saga_counts_insert after insert on saga_log
      referencing new table as new_rows for each statement execute function saga_counts_apply()`);
    this.addSql(`create trigger saga_counts_update after update on saga_log
      referencing old table as old_rows new table as new_rows for each statement execute function saga_counts_apply()`);
    this.addSql(`create trigger saga_counts_delete after delete on saga_log
      referencing old table as old_rows for each statement execute function saga_counts_apply()`);
  }
}
