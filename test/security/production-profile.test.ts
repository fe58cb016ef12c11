// NODE_ENV=production (the container image sets it) is a profile, tested by
// starting the real `npm start` process with it: the contract routes and
// /metrics need a token, and fault injection of any kind is refused at start.
// Without NODE_ENV the system stays open, for development on loopback.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import test from 'ava';
import { loadConfig } from '../../src/config.js';
import { seedRequest } from '../fixtures/requests.js';
import { createDatabase, startTestServer, type TestServer } from '../helpers/database.js';

interface Started {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `npm start`'s entry point with `env`; once its banner is out, runs `whileRunning` with the BFF's and orchestrator's URLs, then stops it. */
async function startAll(
  env: Record<string, string>,
  whileRunning: (urls: { bff: string; orchestrator: string; campaigns: string }) => Promise<void> = () => Promise.resolve(),
): Promise<Started> {
  const inherited = { ...process.env };
  for (const name of ['DATABASE_URL', 'HOST', 'NODE_ENV', 'AUTH_CONTRATO', 'METRICS_AUTH', 'SAGA_FAULTS', 'PARTICIPANT_FAULTS']) delete inherited[name];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin/all.ts'], {
    env: { ...inherited, HOST: '127.0.0.1', PORT: '0', BFF_PORT: '0', CAMPAIGNS_PORT: '0', APP_PORT: '0', LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let started = false;
  let failure: unknown;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!started && /Fault injection.*\n/.test(stdout)) {
      started = true;
      const bff = /\n\s*BFF\s+(http:\/\/\S+)/.exec(stdout)?.[1] ?? '';
      const orchestrator = /\n\s*Orchestrator\s+(http:\/\/\S+)/.exec(stdout)?.[1] ?? '';
      const campaigns = /\n\s*Campaigns\s+(http:\/\/[^/\s]+)/.exec(stdout)?.[1] ?? '';
      void whileRunning({ bff, orchestrator, campaigns })
        .catch((err: unknown) => (failure = err))
        .finally(() => child.kill('SIGTERM'));
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (failure instanceof Error) throw failure;
  if (failure !== undefined) throw new Error(JSON.stringify(failure));
  return { code, stdout, stderr };
}

let server: TestServer | undefined;
test.after.always(async () => server?.stop());

const campaign = seedRequest();

test('in production the contract routes and /metrics answer 401 without a token, and the participants have no /__faults', async (t) => {
  server ??= await startTestServer();
  const db = await createDatabase(server.adminUrl, 'saga_prod');
  try {
    const seen: Record<string, number> = {};
    // Roles are cluster-wide, and other test files use the development passwords: these are the same, given.
    const passwords = Object.fromEntries(
      ['saga_orchestrator', 'saga_bff', 'saga_relay', 'saga_participantes'].map((r) => [`PG_PASSWORD_${r.toUpperCase()}`, `${r}-dev`]),
    );
    const { stdout } = await startAll({ DATABASE_URL: db.url, NODE_ENV: 'production', ...passwords }, async ({ bff, orchestrator, campaigns }) => {
      seen['participants POST /__faults'] = (
        await fetch(`${campaigns}/__faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reglas":[]}' })
      ).status;
      for (const base of [bff, orchestrator]) {
        const who = base === bff ? 'bff' : 'orchestrator';
        const post = await fetch(`${base}/saga/crear-campana-completa`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(campaign),
        });
        seen[`${who} POST /saga/crear-campana-completa`] = post.status;
        seen[`${who} GET /saga/`] = (await fetch(`${base}/saga/`)).status;
        seen[`${who} GET /metrics`] = (await fetch(`${base}/metrics`)).status;
        seen[`${who} GET /health`] = (await fetch(`${base}/health`)).status;
      }
    });
    t.deepEqual(seen, {
      'participants POST /__faults': 404,
      'bff POST /saga/crear-campana-completa': 401,
      'bff GET /saga/': 401,
      'bff GET /metrics': 401,
      'bff GET /health': 200,
      'orchestrator POST /saga/crear-campana-completa': 401,
      'orchestrator GET /saga/': 401,
      'orchestrator GET /metrics': 401,
      'orchestrator GET /health': 200,
    });
    t.regex(stdout, /Fault injection off/);
  } finally {
    await db.drop();
  }
});

test('in production a start with SAGA_FAULTS is refused with a message and a non-zero exit', async (t) => {
  const { code, stderr, stdout } = await startAll({ NODE_ENV: 'production', SAGA_FAULTS: 'no-fence', DATABASE_URL: 'postgres://nadie@127.0.0.1:1/nada' });
  t.is(code, 1);
  t.regex(stderr, /SAGA_FAULTS: refused in production/);
  t.notRegex(stdout, /is running/);
});

test('in production a start with PARTICIPANT_FAULTS=on (the participants\' /__faults) is refused', async (t) => {
  const { code, stderr } = await startAll({ NODE_ENV: 'production', PARTICIPANT_FAULTS: 'on', DATABASE_URL: 'postgres://nadie@127.0.0.1:1/nada' });
  t.is(code, 1);
  t.regex(stderr, /PARTICIPANT_FAULTS: refused in production/);
});

test('in production a process refuses to start without the password of its database role', async (t) => {
  server ??= await startTestServer();
  const db = await createDatabase(server.adminUrl, 'saga_prod_pw');
  try {
    const { code, stderr } = await startAll({ DATABASE_URL: db.url, NODE_ENV: 'production' });
    t.is(code, 1);
    t.regex(stderr, /set PG_PASSWORD_SAGA_PARTICIPANTES, the password of this process's database role/);
  } finally {
    await db.drop();
  }
});

test('the production profile changes only defaults: auth, metrics auth and rate limits on; an explicit setting still wins', (t) => {
  const prod = loadConfig({ NODE_ENV: 'production' });
  t.like(prod, { production: true, AUTH_CONTRATO: 'on', METRICS_AUTH: 'on', RATE_LIMIT_TOKEN_POR_MINUTO: 600, RATE_LIMIT_DIRECCION_POR_MINUTO: 1200 });
  t.like(loadConfig({ NODE_ENV: 'production', METRICS_AUTH: 'off' }), { METRICS_AUTH: 'off' });
  const dev = loadConfig({});
  t.like(dev, { production: false, AUTH_CONTRATO: 'off', METRICS_AUTH: 'off', RATE_LIMIT_TOKEN_POR_MINUTO: 0, RATE_LIMIT_DIRECCION_POR_MINUTO: 0, HOST: '127.0.0.1' });
  t.notThrows(() => loadConfig({ SAGA_FAULTS: 'no-fence' }), 'outside production the chaos suite may switch faults on');
});

test('the image listens on every interface only in the production profile, with the contract and /metrics behind tokens', (t) => {
  const env = Object.fromEntries(
    [...readFileSync('docker/Dockerfile', 'utf8').matchAll(/^ENV (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]),
  );
  t.is(env.HOST, '0.0.0.0');
  t.is(env.NODE_ENV, 'production');
  t.like(loadConfig(env), { AUTH_CONTRATO: 'on', METRICS_AUTH: 'on' });
});
