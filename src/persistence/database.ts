// The saga log's connection: one MikroORM instance per process. The schema comes
// only from the migrations in /migrations, applied at start; nothing is inferred.
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { applicationName } from './db-roles.js';
import { Migrator } from '@mikro-orm/migrations';
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261128000001SagaLog } from '../../migrations/Migration20261128000001_saga_log.js';
import { Migration20261128000003Shards } from '../../migrations/Migration20261128000003_shards.js';
import { Migration20261128000004SagaCounts } from '../../migrations/Migration20261128000004_saga_counts.js';
import { Migration20261128000005OperationsAndVersions } from '../../migrations/Migration20261128000005_operations_and_versions.js';
import { Migration20261128000006SagaCountDeltas } from '../../migrations/Migration20261128000006_saga_count_deltas.js';
import { Migration20261129000001OutboxRelay } from '../../migrations/Migration20261129000001_outbox_relay.js';
import { Migration20261204000001SearchKeysHashed } from '../../migrations/Migration20261204000001_search_keys_hashed.js';
import { Migration20261204000001TokenExpiry } from '../../migrations/Migration20261204000001_token_expiry.js';
import { Migration20261204000002RelayShards } from '../../migrations/Migration20261204000002_relay_shards.js';
import { Migration20261204000003SagaWatches } from '../../migrations/Migration20261204000003_saga_watches.js';
import { Migration20261205000001SagaLogHotUpdates } from '../../migrations/Migration20261205000001_saga_log_hot_updates.js';
import { Migration20261205000002RelayInFlightByShard } from '../../migrations/Migration20261205000002_relay_in_flight_by_shard.js';

export type Database = MikroORM;
export type { EntityManager };

/**
 * A set of migrations, the table that records which ran, and the advisory lock
 * key that lets one process at a time apply them. Each set has a key of its own,
 * so the saga log's migrations and another schema's never wait for each other.
 * (727275 was the outbox relay's lock, before the relay went by shard; 727276 is the counters' fold.)
 */
export interface MigrationSet {
  tableName: string;
  list: MigrationObject[];
  lockKey: number;
}

/**
 * The saga log's schema. (Migration 2 used to create the reference
 * participants' tables here; they have their own schema and migrations now,
 * src/participants/migrations, which move those tables where they exist.)
 */
export const SAGA_LOG_MIGRATIONS: MigrationSet = {
  tableName: 'schema_migrations',
  lockKey: 727274,
  list: [
    { name: 'Migration20261128000001_saga_log', class: Migration20261128000001SagaLog },
    { name: 'Migration20261128000003_shards', class: Migration20261128000003Shards },
    { name: 'Migration20261128000004_saga_counts', class: Migration20261128000004SagaCounts },
    { name: 'Migration20261128000005_operations_and_versions', class: Migration20261128000005OperationsAndVersions },
    { name: 'Migration20261128000006_saga_count_deltas', class: Migration20261128000006SagaCountDeltas },
    { name: 'Migration20261129000001_outbox_relay', class: Migration20261129000001OutboxRelay },
    { name: 'Migration20261204000001_search_keys_hashed', class: Migration20261204000001SearchKeysHashed },
    { name: 'Migration20261204000001_token_expiry', class: Migration20261204000001TokenExpiry },
    { name: 'Migration20261204000002_relay_shards', class: Migration20261204000002RelayShards },
    { name: 'Migration20261204000003_saga_watches', class: Migration20261204000003SagaWatches },
    { name: 'Migration20261205000001_saga_log_hot_updates', class: Migration20261205000001SagaLogHotUpdates },
    { name: 'Migration20261205000002_relay_in_flight_by_shard', class: Migration20261205000002RelayInFlightByShard },
  ],
};

export async function openDatabase(url: string, opts: { poolMax?: number; migrations?: MigrationSet } = {}): Promise<Database> {
  const migrations = opts.migrations ?? SAGA_LOG_MIGRATIONS;
  // MikroORM reads only the user, password, host, port and database of a URL: the role's name is passed on.
  const name = applicationName(url);
  return MikroORM.init({
    clientUrl: url,
    ...(name === undefined ? {} : { driverOptions: { connection: { application_name: name } } }),
    entities: [],
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: false },
    pool: { min: 0, max: opts.poolMax ?? 20 },
    migrations: {
      tableName: migrations.tableName,
      // The schema is the migrations themselves: no generated snapshot files.
      snapshot: false,
      silent: true,
      transactional: true,
      allOrNothing: true,
      migrationsList: migrations.list,
    },
    debug: false,
    // Never create the database: while PostgreSQL restarts, MikroORM's existence
    // check fails and it would try to create a database that is there.
    ensureDatabase: false,
    allowGlobalContext: false,
  });
}

/**
 * Applies the pending migrations of `migrations` (the set `db` was opened with), then `privileges`
 * (migrations/privileges.ts: the roles and their grants), under the same lock; safe to call from every process at start.
 */
export async function migrate(
  db: Database,
  url: string,
  opts: { migrations?: MigrationSet; privileges?: (client: pg.Client) => Promise<void> } = {},
): Promise<void> {
  const migrations = opts.migrations ?? SAGA_LOG_MIGRATIONS;
  // Several processes may start together: a session advisory lock, held on a
  // connection of its own, lets one of them migrate at a time.
  const lock = new pg.Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock($1)', [migrations.lockKey]);
    await db.getMigrator().up();
    await opts.privileges?.(lock);
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
