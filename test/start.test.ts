// What a person sees when starting the system: one line per role rather than
// one per shard, readable logs at a terminal, and a plain message (not a stack
// trace) when the embedded PostgreSQL cannot run from where the project is.
import { mkdtemp, mkdir, writeFile, rm, chmod } from 'node:fs/promises';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger, defaultLogFormat } from '../src/log.js';
import { firstBlockingDirectory, checkPostgresUserCanReach } from '../src/persistence/postgres-user-access.js';
import { freePort } from '../src/http/server.js';
import { entryPoint, spawnNode } from '../scripts/lib/processes.js';
import { createDatabase, startTestServer, type TestServer } from './helpers/database.js';

const asRoot = process.getuid?.() === 0;

/**
 * Runs `npm start`'s entry point until it prints its banner (or exits), then stops it:
 * with SIGTERM, or as a terminal's Ctrl-C does, with SIGINT to its whole process group.
 */
async function startAll(
  env: Record<string, string>,
  ms = 60_000,
  whileRunning: (banner: string) => Promise<void> = () => Promise.resolve(),
  stop: 'SIGTERM' | 'ctrl-c' = 'SIGTERM',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // `npm test` sets DATABASE_URL for the suite; this start uses only what `env` gives.
  const settings: Record<string, string | undefined> = { DATABASE_URL: undefined, HOST: '127.0.0.1', PORT: '0', BFF_PORT: '0', CAMPAIGNS_PORT: '0', APP_PORT: '0', ...env };
  // HOST '' means: not set at all, so the default applies.
  if (settings.HOST === '') settings.HOST = undefined;
  // Ctrl-C: the entry point leads a process group of its own, as a shell's foreground job does.
  const child = spawnNode(entryPoint('all'), [], { env: settings, detached: stop === 'ctrl-c' });
  let stdout = '';
  let stderr = '';
  let started = false;
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    // The banner's last line: everything has started.
    if (!started && /Fault injection.*\n/.test(stdout)) {
      started = true;
      void whileRunning(stdout).finally(() => {
        if (stop === 'SIGTERM') return child.kill('SIGTERM');
        process.kill(-child.pid!, 'SIGINT');
        // A stop that hangs fails the test (its exit code is then null) rather than outliving it.
        const hung = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
        child.once('exit', () => clearTimeout(hung));
      });
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

let server: TestServer | undefined;
test.after.always(async () => server?.stop());

test('a start logs one line per role and one for all 32 shard leases, not one per shard (and its stop one for their release)', async (t) => {
  server = await startTestServer();
  const db = await createDatabase(server.adminUrl, 'saga_start');
  try {
    const { stdout } = await startAll({ DATABASE_URL: db.url, LOG_FORMAT: 'json', LOG_LEVEL: 'info' });
    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string });
    const messages = lines.map((l) => l.msg);
    t.deepEqual(
      messages.filter((m) => m.endsWith(' started')),
      ['participants started', 'orchestrator started', 'bff started'],
    );
    // The start's one line, and the stop's (startAll stops it with SIGTERM once started).
    t.deepEqual(messages.filter((m) => /lease/.test(m)), ['32 shard leases acquired', '32 shard leases released']);
    t.regex(stdout, /Dashboard\s+http:\/\/127\.0\.0\.1:\d+\/ui/);
  } finally {
    await db.drop();
  }
});

// Serial: it signals a whole process group and counts every warning, so no other system of this file starts beside it.
// It used to fail now and then with 'database connection lost': a pool's end resolved before the server had closed
// its connections, and the embedded server, stopped next, terminated them (test/pool.test.ts).
test.serial('Ctrl-C on npm start stops it in order on its embedded PostgreSQL: leases released, no warning, no stack trace', async (t) => {
  const dataDir = path.join(tmpdir(), `saga-ctrl-c-${process.pid}`);
  try {
    const { code, stdout, stderr } = await startAll(
      { EMBEDDED_PG_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()), LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
      120_000,
      undefined,
      'ctrl-c',
    );
    const logs = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown; time: number });
    t.is(code, 0, stderr);
    t.is(stderr, '');
    // With each warning's error and when it came against the stop's own lines, so that a failure says what was lost.
    const stopping = logs.filter((l) => /shutting down|released|stopped/.test(l.msg)).map((l) => `${l.time} ${l.msg}`);
    t.deepEqual(
      logs.filter((l) => l.level >= 40).map((l) => `${l.time} ${l.msg}${l.err === undefined ? '' : `: ${JSON.stringify(l.err)}`}`),
      [],
      `no warning or error while stopping (${stopping.join(' | ')})`,
    );
    const messages = logs.map((l) => l.msg);
    t.true(messages.indexOf('32 shard leases released') > messages.indexOf('shutting down'), messages.join(' | '));
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('without HOST every role listens on loopback only: fault injection is not open to the network', async (t) => {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
  if (address === undefined) return t.pass('this machine has no address but loopback');
  server ??= await startTestServer();
  const db = await createDatabase(server.adminUrl, 'saga_start_host');
  try {
    const probes: { loopback: boolean; network: boolean }[] = [];
    await startAll({ DATABASE_URL: db.url, LOG_FORMAT: 'json', HOST: '' }, 60_000, async (banner) => {
      for (const [, port] of banner.matchAll(/http:\/\/127\.0\.0\.1:(\d+)/g)) {
        probes.push({ loopback: await answers('127.0.0.1', Number(port)), network: await answers(address, Number(port)) });
      }
    });
    t.true(probes.length >= 4, 'the banner gives the BFF, the orchestrator and the participants');
    t.true(probes.every((p) => p.loopback && !p.network), JSON.stringify(probes));
  } finally {
    await db.drop();
  }
});

/** Whether a TCP connection to host:port is accepted. */
const answers = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });

test('logs are readable lines at a terminal and JSON otherwise', (t) => {
  t.is(defaultLogFormat(true), 'pretty');
  t.is(defaultLogFormat(undefined), 'json');
  const written: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, done) => (written.push(c.toString()), done()) });
  createLogger('info', 'pretty', sink).info({ saga_id: 'abc' }, 'SAGA abc iniciada');
  createLogger('info', 'json', sink).info({ saga_id: 'abc' }, 'SAGA abc iniciada');
  const [pretty, json] = written;
  t.regex(pretty ?? '', /INFO.*SAGA abc iniciada/);
  t.regex(pretty ?? '', /"saga_id":"abc"/);
  t.is((pretty ?? '').trimEnd().split('\n').length, 1, 'one line per entry');
  t.throws(() => JSON.parse(pretty ?? '') as unknown, undefined, 'not JSON');
  t.like(JSON.parse(json ?? '') as object, { level: 30, saga_id: 'abc', msg: 'SAGA abc iniciada' });
});

test('a directory without search permission for others blocks the postgres user; its parent does not', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'pg-access-'));
  try {
    await chmod(root, 0o755);
    const locked = path.join(root, 'home');
    await mkdir(path.join(locked, 'clone', 'bin'), { recursive: true });
    await writeFile(path.join(locked, 'clone', 'bin', 'initdb'), '');
    await chmod(locked, 0o700);
    const someone = { uid: 54321, gid: 54321 };
    t.is(await firstBlockingDirectory(path.join(locked, 'clone', 'bin', 'initdb'), someone), locked);
    t.is(await firstBlockingDirectory(path.join(locked, 'clone', 'bin', 'initdb'), undefined), locked);
    t.is(await firstBlockingDirectory(path.join(root, 'other', 'pg'), someone), undefined);
    // The owner of the locked directory may enter it.
    t.is(await firstBlockingDirectory(path.join(locked, 'clone', 'bin', 'initdb'), { uid: process.getuid?.() ?? 0, gid: 1 }), undefined);
    if (asRoot) {
      await t.throwsAsync(checkPostgresUserCanReach(path.join(root, 'data'), { binary: path.join(locked, 'clone', 'bin', 'initdb') }), {
        message: new RegExp(`may not enter ${locked}`),
      });
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

(asRoot ? test : test.skip)('npm start as root with data in a 0700 directory stops with a message that says what to do', async (t) => {
  const locked = await mkdtemp(path.join(tmpdir(), 'pg-locked-')); // mkdtemp makes it 0700
  try {
    const { code, stdout, stderr } = await startAll({ EMBEDDED_PG_DIR: path.join(locked, 'pg'), EMBEDDED_PG_PORT: '0', LOG_FORMAT: 'json' }, 60_000);
    t.is(code, 1);
    t.regex(stderr, new RegExp(`may not enter ${locked}`));
    t.regex(stderr, /run npm start as a user other than root/);
    t.regex(stderr, /DATABASE_URL/);
    t.notRegex(stderr + stdout, /EACCES|\n\s+at /, 'no raw error, no stack trace');
  } finally {
    await rm(locked, { recursive: true, force: true });
  }
});
