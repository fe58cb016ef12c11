// Operator tokens: they expire, are revoked, are listed with their last use,
// and are rate-limited (per token and per client address) on POST and on the
// operator routes, with 429 and Retry-After.
import { spawn } from 'node:child_process';
import test from 'ava';
import { createToken, listTokens, revokeTokens, verifyToken } from '../../src/operator/tokens.js';
import { createPool } from '../../src/persistence/pool.js';
import { RateLimiter } from '../../src/http/rate-limit.js';
import { HttpError } from '../../src/http/errors.js';
import { seedRequest } from '../fixtures/requests.js';
import { useTestEnv } from '../helpers/system.js';

const env = useTestEnv(test);

const yo = (base: string, token?: string) =>
  fetch(`${base}/auth/yo`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

async function withPool<T>(fn: (pool: ReturnType<typeof createPool>) => Promise<T>): Promise<T> {
  await env.ready();
  const pool = createPool(env.databaseUrl, 1, env.log);
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

test('a token past its expiry is refused with 401, like an unknown one', async (t) => {
  const bff = (await env.bff()).urls.bff!;
  const token = await withPool((p) => createToken(p, 'caduca', 'lector', { dias: 1 }));
  t.is((await yo(bff, token)).status, 200);
  await env.query(`update operador_tokens set expira_en = now() - interval '1 second' where nombre = 'caduca'`);
  const after = await yo(bff, token);
  t.is(after.status, 401);
  t.like(await after.json(), { error: 'no_autenticado' });
});

test('--dias N sets the expiry N days ahead; without it a token does not expire', async (t) => {
  await withPool(async (p) => {
    await createToken(p, 'dos-dias', 'cliente', { dias: 2 });
    await createToken(p, 'sin-caducidad', 'cliente');
  });
  const [row] = await env.query<{ dias: number }>(
    `select extract(epoch from expira_en - creado_en) / 86400 as dias from operador_tokens where nombre = 'dos-dias'`,
  );
  t.true(Math.abs(Number(row?.dias) - 2) < 0.01, String(row?.dias));
  const [forever] = await env.query(`select expira_en from operador_tokens where nombre = 'sin-caducidad'`);
  t.is(forever?.expira_en, null);
});

test('a revoked token is refused with 401', async (t) => {
  const bff = (await env.bff()).urls.bff!;
  const token = await withPool((p) => createToken(p, 'revocada', 'operador'));
  t.is((await yo(bff, token)).status, 200);
  t.is(await withPool((p) => revokeTokens(p, 'revocada')), 1);
  t.is((await yo(bff, token)).status, 401);
});

test('the listing gives each token its state and last use, and never its secret', async (t) => {
  const token = await withPool((p) => createToken(p, 'listada', 'lector'));
  const before = (await withPool(listTokens)).find((l) => l.nombre === 'listada');
  t.is(before?.usado_en, null);
  t.is(before?.estado, 'activo');
  t.truthy(await withPool((p) => verifyToken(p, token)));
  const after = (await withPool(listTokens)).find((l) => l.nombre === 'listada');
  t.true(after?.usado_en instanceof Date);
  // The secret is everything after `sgo_<id>_`: base64url, so it may hold '_' itself.
  const secret = token.slice(token.indexOf('_', 'sgo_'.length) + 1);
  t.is(secret.length, 43);
  t.false(JSON.stringify(after).includes(secret), 'no secret in the listing');
});

/** `npm run token -- …args` against the test's database; its stdout, or a failure with its stderr. */
function tokenCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin/token.ts', ...args], {
    env: { ...process.env, DATABASE_URL: env.databaseUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

test('npm run token creates with --dias, lists with --listar (expiry and last use), and revokes with --revocar', async (t) => {
  await env.ready();
  const created = await tokenCli(['--nombre', 'cli.persona', '--rol', 'lector', '--dias', '3']);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /caduca en 3 día/);
  const token = created.stdout.trim().split('\n').at(-1)!;
  t.regex(token, /^sgo_/);
  const listed = await tokenCli(['--listar']);
  t.is(listed.code, 0, listed.stderr);
  const line = listed.stdout.split('\n').find((l) => l.includes('cli.persona')) ?? '';
  t.regex(line, /lector\s+activo\s+\S+\s+\d{4}-\d\d-\d\dT\S+\s+nunca$/);
  t.false(listed.stdout.includes(token), 'the listing never shows a token');
  const revoked = await tokenCli(['--revocar', 'cli.persona']);
  t.regex(revoked.stdout, /1 token\(s\) de cli\.persona revocados/);
  const relisted = await tokenCli(['--listar']);
  t.regex(relisted.stdout.split('\n').find((l) => l.includes('cli.persona')) ?? '', /revocado/);
  const bad = await tokenCli(['--nombre', 'x', '--dias', 'cero']);
  t.is(bad.code, 2);
});

test('past its per-token limit a token gets 429 with Retry-After on the operator routes; another token does not', async (t) => {
  const bff = (await env.bff({ config: { RATE_LIMIT_TOKEN_POR_MINUTO: '3' } })).urls.bff!;
  const [a, b] = await withPool(async (p) => [await createToken(p, 'rapida', 'operador'), await createToken(p, 'otra', 'operador')]);
  for (let i = 0; i < 3; i++) t.is((await yo(bff, a)).status, 200);
  const limited = await yo(bff, a);
  t.is(limited.status, 429);
  t.true(Number(limited.headers.get('retry-after')) >= 1, String(limited.headers.get('retry-after')));
  t.like(await limited.json(), { error: 'demasiadas_solicitudes' });
  t.is((await yo(bff, b)).status, 200, 'the limit is per token');
  const metrics = await (await fetch(`${bff}/metrics`)).text();
  t.regex(metrics, /http_rate_limited_total\{limite="token"\} 1\b/);
});

test('past its per-address limit a client gets 429 with Retry-After on POST, while reads stay open', async (t) => {
  const bff = (await env.bff({ config: { RATE_LIMIT_DIRECCION_POR_MINUTO: '2' } })).urls.bff!;
  const post = () =>
    fetch(`${bff}/saga/crear-campana-completa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(seedRequest()) });
  t.is((await post()).status, 200);
  t.is((await post()).status, 200);
  const limited = await post();
  t.is(limited.status, 429);
  t.true(Number(limited.headers.get('retry-after')) >= 1);
  t.is((await fetch(`${bff}/saga/`)).status, 200, 'GET of the contract is not limited');
  t.regex(await (await fetch(`${bff}/metrics`)).text(), /http_rate_limited_total\{limite="direccion"\} 1\b/);
});

test('a bucket refills with time, and the limiter remembers a bounded number of clients', (t) => {
  let now = 0;
  const limiter = new RateLimiter({ tokenPerMinute: 0, addressPerMinute: 60, maxKeys: 100, now: () => now });
  for (let i = 0; i < 60; i++) limiter.take('direccion', 'a');
  const refused = t.throws(() => limiter.take('direccion', 'a'), { instanceOf: HttpError });
  t.is(refused?.status, 429);
  now += 1_000; // one request a second at 60 a minute
  t.notThrows(() => limiter.take('direccion', 'a'));
  for (let i = 0; i < 1_000; i++) limiter.take('direccion', `client-${i}`);
  t.is(limiter.keys().direccion, 100);
  t.notThrows(() => limiter.take('token', 'any'), 'a limit of 0 is no limit');
});
