import { Migration } from '@mikro-orm/migrations';

/**
 * Counters that scale with writers. The saga_counts triggers used to upsert
 * the shared (tipo, estado) rows in every write transaction: every batch of
 * every orchestrator locked the same rows until its commit, serialising them,
 * and an insert and an update trigger of one statement locked them in two
 * passes, so two processes could lock them in opposite orders (a deadlock).
 * Now the triggers only append deltas (no row is shared, nothing is locked);
 * `saga_counts_fold()` folds them into saga_counts now and then, and readers
 * sum both through the view saga_totals.
 */
export class Migration20261128000006SagaCountDeltas extends Migration {
  override up(): void {
    this.addSql(`
      create table saga_count_deltas (
        tipo text not null,
        estado text not null,
        n bigint not null
      )`);
    this.addSql(`
      create or replace function saga_counts_apply() returns trigger language plpgsql as $$
      begin
        if tg_op = 'INSERT' then
          insert into saga_count_deltas (tipo, estado, n)
          select tipo, estado, count(*) from new_rows group by tipo, estado;
        elsif tg_op = 'UPDATE' then
          insert into saga_count_deltas (tipo, estado, n)
          select tipo, estado, sum(d) from (
            select tipo, estado, 1 as d from new_rows
            union all
            select tipo, estado, -1 as d from old_rows
          ) changes
          group by tipo, estado having sum(d) <> 0;
        else
          insert into saga_count_deltas (tipo, estado, n)
          select tipo, estado, -count(*) from old_rows group by tipo, estado;
        end if;
        return null;
      end
      $$`);
    // One folder at a time (the others skip); deltas appended meanwhile are not
    // visible to its delete and stay for the next fold.
    this.addSql(`
      create function saga_counts_fold() returns bigint language plpgsql as $$
      declare folded bigint;
      begin
        if not pg_try_advisory_xact_lock(727276) then
          return 0;
        end if;
        with d as (delete from saga_count_deltas returning tipo, estado, n),
             sums as (select tipo, estado, sum(n) as n, count(*) as rows from d group by tipo, estado),
             applied as (
               insert into saga_counts (tipo, estado, n)
               select tipo, estado, n from sums order by tipo, estado
               on conflict (tipo, estado) do update set n = saga_counts.n + excluded.n)
        select coalesce(sum(rows), 0) into folded from sums;
        return folded;
      end
      $$`);
    this.addSql(`
      create view saga_totals as
      select tipo, estado, sum(n)::bigint as n from (
        select tipo, estado, n from saga_counts
        union all
        select tipo, estado, n from saga_count_deltas
      ) c group by tipo, estado`);
  }
}
