// /estadisticas is bounded (issue 17, point 2): with 200,000 sagas a call over
// 366 days took 2 s, 8 at once 9-10 s each, and /health 6 s meanwhile. Now an
// answer is reused for STATS_CACHE_MS, at most two windows are computed at
// once (503 past that), and each computation runs under a statement timeout
// (STATS_STATEMENT_TIMEOUT_MS; 503 past it), all with Retry-After.
import test from 'ava';
import pg from 'pg';
import { seedRequest } from '../fixtures/requests.js';
import { startCampaign } from '../helpers/sagas.js';
import { useTestEnv } from '../helpers/system.js';
import { waitUntil } from '../helpers/wait.js';

const env = useTestEnv(test);

/** Sessions waiting for a lock on saga_log. */
const waitingOnTheLog = async () =>
  Number((await env.query<{ n: string }>(`select count(*) as n from pg_locks where not granted and relation = 'saga_log'::regclass`))[0]!.n);

const window = () => {
  const hasta = new Date(Date.now() + 3_600_000).toISOString();
  const desde = new Date(Date.now() - 3_600_000).toISOString();
  return `desde=${encodeURIComponent(desde)}&hasta=${encodeURIComponent(hasta)}`;
};

const total = (body: { en_el_tiempo: { total: number }[] }) => body.en_el_tiempo.reduce((n, b) => n + b.total, 0);

test.serial('an answer is reused for the same window within STATS_CACHE_MS, and a new window is computed', async (t) => {
  const bff = (await env.bff({ config: { STATS_CACHE_MS: '600000' } })).urls.bff!;
  const q = window();
  const get = async (query: string) => {
    const res = await fetch(`${bff}/estadisticas?${query}`);
    t.is(res.status, 200);
    return (await res.json()) as { en_el_tiempo: { total: number }[] };
  };
  const first = await get(q);
  await startCampaign(bff, seedRequest());
  t.deepEqual(await get(q), first, 'the cached answer, without the saga started since');
  t.is(total(await get(`${q}&tipo=CREAR_CAMPANA_COMPLETA`)), total(first) + 1, 'another query is computed');
  const metrics = await (await fetch(`${bff}/metrics`)).text();
  t.regex(metrics, /saga_stats_cache_total\{resultado="acierto"\} 1\b/);
  t.regex(metrics, /saga_stats_cache_total\{resultado="fallo"\} 2\b/);
});

test.serial('statistics past the statement timeout are a 503 with Retry-After, and so is a third window while two are computed', async (t) => {
  const bff = (await env.bff({ config: { STATS_CACHE_MS: '0', STATS_STATEMENT_TIMEOUT_MS: '1500' } })).urls.bff!;
  // Another session holds the saga log locked, so every statistics query waits on it until its timeout.
  const locker = new pg.Client({ connectionString: env.databaseUrl });
  await locker.connect();
  t.teardown(() => locker.end());
  await locker.query('begin');
  await locker.query('lock table saga_log in access exclusive mode');

  const answers = await Promise.all(
    ['tipo=a', 'tipo=b', 'tipo=c'].map(async (q, i) => {
      // The third starts once the first two are waiting on the lock.
      if (i === 2) await waitUntil(async () => (await waitingOnTheLog()) === 2);
      const res = await fetch(`${bff}/estadisticas?${q}`);
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error: string } };
    }),
  );
  await locker.query('rollback');
  t.deepEqual(answers.map((a) => [a.status, a.body.error]), [
    [503, 'sobrecargado'],
    [503, 'sobrecargado'],
    [503, 'sobrecargado'],
  ]);
  t.deepEqual(answers.map((a) => a.retryAfter), ['5', '5', '1'], 'two timed out, the third was refused at once');
  t.is((await fetch(`${bff}/estadisticas?tipo=a`)).status, 200, 'without the lock, the same window is answered');
  const metrics = await (await fetch(`${bff}/metrics`)).text();
  t.regex(metrics, /saga_stats_refused_total\{motivo="plazo"\} 2\b/);
  t.regex(metrics, /saga_stats_refused_total\{motivo="ocupado"\} 1\b/);
});

test.serial('a window over 366 days is a 400 naming desde', async (t) => {
  const bff = (await env.bff()).urls.bff!;
  const res = await fetch(`${bff}/estadisticas?desde=2024-01-01T00:00:00Z&hasta=2025-01-02T00:00:01Z`);
  t.is(res.status, 400);
  t.like(await res.json(), { error: 'validacion', detalle: [{ campo: 'desde' }] });
});
