// A recorder the chaos database gets, and production never does: a trigger
// appends every insert and update of saga_log to chaos_saga_writes, with the
// lease epoch the write carried (saga_log.epoch) and the epoch its shard had
// at that moment. A write the fence let through after a take-over shows as an
// epoch below its shard's; I5 reads it (invariants.ts).
import pg from 'pg';

export async function installWriteRecorder(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`
      create table chaos_saga_writes (
        id bigserial primary key,
        saga_id uuid not null,
        version integer not null,
        estado text not null,
        epoch bigint,
        shard integer not null,
        shard_owner text,
        shard_epoch bigint,
        en timestamptz not null default clock_timestamp()
      )`);
    // Row level, after the write: it reads the shard row as it is now. A fenced
    // writer holds that row FOR SHARE until it commits, so no take-over can
    // have moved it in between. Security definer: the processes write the saga
    // log as their own roles (saga_orchestrator, saga_bff), which have no right
    // on this table; the recorder writes it as the user that installed it.
    await client.query(`
      create function chaos_record_saga_write() returns trigger language plpgsql security definer set search_path = public as $$
      begin
        insert into chaos_saga_writes (saga_id, version, estado, epoch, shard, shard_owner, shard_epoch)
        select new.id, new.version, new.estado, new.epoch, new.shard, s.owner, s.epoch
        from saga_shards s where s.shard = new.shard;
        return null;
      end
      $$`);
    await client.query(`create trigger chaos_record_saga_write after insert or update on saga_log
      for each row execute function chaos_record_saga_write()`);
  } finally {
    await client.end();
  }
}
