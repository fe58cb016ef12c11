// Which PostgreSQL role each process connects as (migrations/privileges.ts
// creates them and says what each may do). DATABASE_URL names the server, the
// database and the user that migrates (a superuser, or one that may create
// roles); each process then connects as its own role, on the same server and
// database, with `application_name` set to the role's name, so pg_stat_activity
// says who holds each connection.
//
// Passwords: PG_PASSWORD_<ROLE> (e.g. PG_PASSWORD_SAGA_BFF) when set, as the
// compose file does; otherwise a development password, the role's name followed
// by `-dev`. The embedded server of `npm start` and of the tests listens on
// 127.0.0.1 only (src/persistence/embedded-postgres.ts), and its superuser's
// password is no stronger; production sets its own (see docs/SECURITY.md).
import pg from 'pg';
import type { RuntimeRole } from '../../migrations/privileges.js';
import { ensureLogin } from '../../migrations/privileges.js';

export type { RuntimeRole };

/** The passwords given (PG_PASSWORD_<ROLE>, read by src/config.ts), by role. */
export type RolePasswords = Partial<Record<RuntimeRole, string | undefined>>;

export function rolePassword(role: RuntimeRole, passwords: RolePasswords = {}): string {
  const given = passwords[role];
  return given !== undefined && given !== '' ? given : `${role}-dev`;
}

/** `adminUrl` with `role`'s user and password, and application_name=role. */
export function roleUrl(adminUrl: string, role: RuntimeRole, passwords: RolePasswords = {}): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = encodeURIComponent(rolePassword(role, passwords));
  url.searchParams.set('application_name', role);
  return url.toString();
}

/** The application_name a URL asks for, if any (MikroORM drops the query string, so it is passed on by hand). */
export function applicationName(url: string): string | undefined {
  return new URL(url).searchParams.get('application_name') ?? undefined;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    return true;
  } catch (err) {
    // 28P01: wrong password; 28000: no login, or refused by pg_hba. Anything else is not about the role.
    const code = (err as { code?: string }).code;
    if (code === '28P01' || code === '28000') return false;
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The URL each of `roles` connects with, after making sure it can log in with
 * its password (set through `adminUrl` when it cannot). The roles themselves
 * exist: the migrations created them.
 */
export async function roleUrls<R extends RuntimeRole>(adminUrl: string, roles: readonly R[], passwords: RolePasswords = {}): Promise<Record<R, string>> {
  const out = {} as Record<R, string>;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (const role of roles) {
      const url = roleUrl(adminUrl, role, passwords);
      await ensureLogin(admin, () => canConnect(url), role, rolePassword(role, passwords));
      out[role] = url;
    }
  } finally {
    await admin.end();
  }
  return out;
}
