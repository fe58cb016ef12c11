// Upgrading while the relay has events in flight. Before
// Migration20261205000002_relay_in_flight_by_shard, a taken event carried its
// sequence id in its own row (saga_events.secuencia_envio); now its shard's
// saga_relay_shards row lists it. The events in flight when the upgrade runs
// must keep their sequence ids, so that the next holder replays them under the
// same ids and the broker drops what it had stored of them.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inFlight } from '../src/events/outbox-queries.js';
import { migrate, openDatabase, SAGA_LOG_MIGRATIONS } from '../src/persistence/database.js';
import { SagaWriter } from '../src/persistence/saga-writer.js';
import { newCampaignWrite } from './fixtures/sagas.js';
import { createDatabase, startTestServer, type TestServer } from './helpers/database.js';
import { takeLease } from './helpers/leases.js';

const HERE = 'node-upgrade';
let server: TestServer;

test.before(async () => {
  server = await startTestServer();
});
test.after.always(async () => {
  await server?.stop();
});

async function migrateWith(url: string, list: typeof SAGA_LOG_MIGRATIONS.list): Promise<void> {
  const db = await openDatabase(url, { migrations: { ...SAGA_LOG_MIGRATIONS, list } });
  try {
    await migrate(db, url, { migrations: { ...SAGA_LOG_MIGRATIONS, list } });
  } finally {
    await db.close();
  }
}

test('events in flight before the upgrade are replayed after it under the sequence ids they had', async (t) => {
  const { url, drop } = await createDatabase(server.adminUrl, 'saga_relay_upgrade');
  t.teardown(drop);
  const before = SAGA_LOG_MIGRATIONS.list.filter((m) => m.name !== 'Migration20261205000002_relay_in_flight_by_shard');
  t.is(before.length, SAGA_LOG_MIGRATIONS.list.length - 1);
  await migrateWith(url, before);

  // Two sagas of shard 3, one event each (SagaIniciada); the old relay took both, as 41 and 42, and a third event waits.
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  t.teardown(() => pool.end());
  const writer = new SagaWriter(pool);
  const sagas = [randomUUID(), randomUUID(), randomUUID()];
  for (const id of sagas) await writer.write(newCampaignWrite(id, 3));
  const events = (await pool.query<{ id: string; saga_id: string }>('select id, saga_id from saga_events order by id')).rows;
  t.is(events.length, 3);
  await pool.query('update saga_events set secuencia_envio = 41 where id = $1', [events[1]!.id]);
  await pool.query('update saga_events set secuencia_envio = 42 where id = $1', [events[0]!.id]);
  await pool.query('update saga_relay_shards set ultima_secuencia_envio = 42 where shard = 3');

  await migrateWith(url, SAGA_LOG_MIGRATIONS.list);

  const replay = await inFlight(pool, 100, [await takeLease(pool, 3, HERE)]);
  t.deepEqual(
    replay.map((r) => ({ id: r.id, secuencia_envio: r.secuencia_envio })),
    [
      { id: events[1]!.id, secuencia_envio: '41' },
      { id: events[0]!.id, secuencia_envio: '42' },
    ],
    'both, in their sequence-id order; the event that was not taken is not among them',
  );
});
