// The saga log's connection: one MikroORM instance per process. The schema comes
// only from the migrations in /migrations, applied at start; nothing is inferred.
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { Migrator } from '@mikro-orm/migrations';
import { Migration20261128000001SagaLog } from '../../migrations/Migration20261128000001_saga_log.js';
import { Migration20261128000002Participants } from '../../migrations/Migration20261128000002_participants.js';
import { Migration20261128000003Shards } from '../../migrations/Migration20261128000003_shards.js';
import { Migration20261128000004SagaCounts } from '../../migrations/Migration20261128000004_saga_counts.js';
import { Migration20261129000001OutboxRelay } from '../../migrations/Migration20261129000001_outbox_relay.js';
import { sagaEntities } from './entities/index.js';

export type Database = MikroORM;
export type { EntityManager };

export async function openDatabase(url: string, opts: { poolMax?: number } = {}): Promise<Database> {
  return MikroORM.init({
    clientUrl: url,
    entities: sagaEntities,
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: false },
    pool: { min: 0, max: opts.poolMax ?? 20 },
    migrations: {
      tableName: 'schema_migrations',
      // The schema is the migrations themselves: no generated snapshot files.
      snapshot: false,
      silent: true,
      transactional: true,
      allOrNothing: true,
      migrationsList: [
        { name: 'Migration20261128000001_saga_log', class: Migration20261128000001SagaLog },
        { name: 'Migration20261128000002_participants', class: Migration20261128000002Participants },
        { name: 'Migration20261128000003_shards', class: Migration20261128000003Shards },
        { name: 'Migration20261128000004_saga_counts', class: Migration20261128000004SagaCounts },
        { name: 'Migration20261129000001_outbox_relay', class: Migration20261129000001OutboxRelay },
      ],
    },
    debug: false,
    // Never create the database: while PostgreSQL restarts, MikroORM's existence
    // check fails and it would try to create a database that is there.
    ensureDatabase: false,
    allowGlobalContext: false,
  });
}

/** Applies the pending migrations; safe to call from every process at start. */
export async function migrate(db: Database, url: string): Promise<void> {
  // Several processes may start together: a session advisory lock, held on a
  // connection of its own, lets one of them migrate at a time.
  const lock = new pg.Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock(727274)');
    await db.getMigrator().up();
  } finally {
    await lock.end();
  }
}

/** True when the database answers a trivial query. */
export async function pingDatabase(db: Database): Promise<boolean> {
  try {
    await db.em.getConnection().execute('select 1');
    return true;
  } catch {
    return false;
  }
}
