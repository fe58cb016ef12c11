// The reference participants' database: their own schema (`participantes`)
// and migrations, applied by their role only, on whatever server they are
// given; their pool reads and writes that schema.
import type pg from 'pg';
import type { Logger } from '../log.js';
import { migrate, openDatabase, type MigrationSet } from '../persistence/database.js';
import { createPool } from '../persistence/pool.js';
import { Migration20261128000002Participants } from './migrations/Migration20261128000002_participants.js';

export const PARTICIPANT_SCHEMA = 'participantes';

export const PARTICIPANT_MIGRATIONS: MigrationSet = {
  tableName: `${PARTICIPANT_SCHEMA}.schema_migrations`,
  // Their own lock: the participants' migrations never wait on the saga log's (727274).
  lockKey: 727277,
  list: [{ name: 'Migration20261128000002_participants', class: Migration20261128000002Participants }],
};

/** Applies the participants' pending migrations. */
export async function migrateParticipants(url: string): Promise<void> {
  const db = await openDatabase(url, { poolMax: 2, migrations: PARTICIPANT_MIGRATIONS });
  try {
    await migrate(db, url, PARTICIPANT_MIGRATIONS);
  } finally {
    await db.close();
  }
}

/** A pool whose unqualified table names are the participants' schema. */
export function participantPool(url: string, max: number, log: Logger): pg.Pool {
  return createPool(url, max, log, { searchPath: PARTICIPANT_SCHEMA });
}
