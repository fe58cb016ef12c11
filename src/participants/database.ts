// The reference participants' database: their own schema (`participantes`)
// and migrations, applied by their role only, on whatever server they are
// given; their pool reads and writes that schema.
import type pg from 'pg';
import type { Logger } from '../log.js';
import { migrate, openDatabase, type MigrationSet } from '../persistence/database.js';
import { createPool } from '../persistence/pool.js';
import { grantParticipantPrivileges } from '../../migrations/privileges.js';
import { Migration20261128000002Participants } from './migrations/Migration20261128000002_participants.js';

export const PARTICIPANT_SCHEMA = 'participantes';

export const PARTICIPANT_MIGRATIONS: MigrationSet = {
  tableName: `${PARTICIPANT_SCHEMA}.schema_migrations`,
  // Their own lock: the participants' migrations never wait on the saga log's (727274).
  lockKey: 727277,
  list: [{ name: 'Migration20261128000002_participants', class: Migration20261128000002Participants }],
};

/**
 * Applies the participants' pending migrations, and (`roles`, the default) grants their schema to their role,
 * saga_participantes, which has no right on the saga log.
 */
export async function migrateParticipants(url: string, opts: { roles?: boolean } = {}): Promise<void> {
  const db = await openDatabase(url, { poolMax: 2, migrations: PARTICIPANT_MIGRATIONS });
  try {
    await migrate(db, url, {
      migrations: PARTICIPANT_MIGRATIONS,
      ...(opts.roles === false ? {} : { privileges: (c: pg.Client) => grantParticipantPrivileges(c, PARTICIPANT_SCHEMA) }),
    });
  } finally {
    await db.close();
  }
}

/** A pool whose unqualified table names are the participants' schema. */
export function participantPool(url: string, max: number, log: Logger): pg.Pool {
  return createPool(url, max, log, { searchPath: PARTICIPANT_SCHEMA });
}
