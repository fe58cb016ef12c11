// The orchestrators' lote worker on its own (no orchestrator runs in this file,
// so no other worker takes the lotes): idle, it looks for work rarely, and a
// recorded lote's notification wakes it (the orchestrator calls `wake`).
import test from 'ava';
import { LoteWorker, Lotes } from '../src/operator/lotes.js';
import { createPool } from '../src/persistence/pool.js';
import { useTestEnv } from './helpers/system.js';

const env = useTestEnv(test);

test.before(async () => {
  await env.ready();
});

test('an idle lote worker that is woken takes a new lote at once, not after its idle pause', async (t) => {
  const pool = createPool(env.databaseUrl, 2, env.log);
  const worker = new LoteWorker({ pool, owner: 'lote-test', log: env.log, idleMs: 60_000 });
  t.teardown(async () => {
    await worker.stop();
    await pool.end();
  });
  worker.start();
  await new Promise((r) => setTimeout(r, 500)); // its first look found nothing: idle for a minute
  const created = await new Lotes(pool).create({
    accion: 'pausar',
    filtro: { desde: '2999-01-01T00:00:00Z' },
    motivo: 'despertar',
    quien: 'test',
    datos: {},
    idempotencyKey: null,
    requestId: null,
  });
  if (created.kind === 'keyReused') throw new Error('a fresh lote cannot reuse a key');
  worker.wake();
  const estado = async () => (await env.query<{ estado: string }>('select estado from saga_lotes where id = $1', [created.lote.lote_id]))[0]?.estado;
  const until = Date.now() + 10_000;
  while ((await estado()) === 'en_curso' && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.is(await estado(), 'terminado');
});
