// A client that waits for the end of the saga it just started (POST, then GET status with
// esperar_ms, as the team's front end and smoke script do) on the BFF that started it: the
// BFF heard nothing of the saga since its start, so it is running, and its end will be
// told to this BFF; it waits without reading the saga first. What it must never do is wait
// for an end that was already told before the start returned, or that a lost listening
// connection missed.
import test from 'ava';
import { createLogger } from '../src/log.js';
import { bffApi } from '../src/http/bff-api.js';
import { listen, type RunningServer } from '../src/http/server.js';
import { SagaQueries } from '../src/persistence/saga-queries.js';
import { HeardDuringStarts, SagaChanges } from '../src/cluster/saga-changes.js';
import { createPool } from '../src/persistence/pool.js';
import type { Orchestrator } from '../src/orchestrator.js';
import type { StartRequest, StartResult } from '../src/saga-intake.js';
import { TERMINAL_STATES } from '../src/saga/states.js';
import { campaignType } from './fixtures/sagas.js';
import { seedRequest } from './fixtures/requests.js';
import { useTestEnv } from './helpers/system.js';
import { waitUntil } from './helpers/wait.js';

const env = useTestEnv(test);
const log = createLogger('silent');
let orchestrator: Orchestrator;
let pagos = '';

test.before(async () => {
  const participants = await env.participants();
  pagos = participants.urls.pagos!;
  orchestrator = (await env.orchestrator({ participantEnv: participants.participantEnv })).orchestrator;
});

/** The payment answers after `ms`, once: the saga is still running when its client asks. */
const slowPayment = (ms: number) =>
  fetch(`${pagos}/__faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ route: 'POST /pagos', delayMs: ms, times: 1 }) });

interface Bff {
  url: string;
  /** The estado reads the status route made. */
  estadoReads: () => number;
  close(): Promise<void>;
}

/** A BFF built by hand on the test's orchestrator, with its estado reads counted; `start` may be wrapped. */
async function bffWith(wrap: (start: (req: StartRequest) => Promise<StartResult>, changes: SagaChanges) => (req: StartRequest) => Promise<StartResult> = (s) => s): Promise<Bff> {
  const pool = createPool(env.databaseUrl, 2, log);
  const changes = new SagaChanges(env.databaseUrl, log, pool);
  await changes.start();
  const queries = new SagaQueries(env.db, pool);
  let reads = 0;
  const counted = Object.assign(Object.create(queries) as SagaQueries, {
    estado: (sagaId: string) => {
      reads++;
      return queries.estado(sagaId);
    },
  });
  const start = (req: StartRequest) => orchestrator.startSaga(req.tipo, req.datos, { timeoutMinutos: req.timeoutMinutos });
  const app = bffApi({
    db: env.db,
    pool,
    queries: counted,
    changes,
    types: [campaignType()],
    start: wrap(start, changes),
    log,
    orderWaitMs: 1_000,
    authContract: false,
  });
  const server: RunningServer = await listen(app, 0);
  return {
    url: server.url,
    estadoReads: () => reads,
    async close() {
      await server.close();
      await changes.stop();
      await pool.end();
    },
  };
}

/** Starts a saga through the BFF; its id. */
async function startSaga(bff: Bff): Promise<string> {
  const posted = await fetch(`${bff.url}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(seedRequest()),
  });
  return ((await posted.json()) as { saga_id: string }).saga_id;
}

/** The BFFs' listening connections (every SagaChanges listens on saga_cambios): their backends' pids. */
const listeners = async () =>
  (await env.query<{ pid: number }>(`select pid from pg_stat_activity where query = 'listen saga_cambios'`)).map((r) => r.pid);

async function startAndWait(bff: Bff, waitMs: number): Promise<{ estado: string; ms: number; sagaId: string }> {
  const sagaId = await startSaga(bff);
  const t0 = Date.now();
  const res = await fetch(`${bff.url}/saga/${sagaId}/status?esperar_ms=${waitMs}`);
  const { estado } = (await res.json()) as { estado: string };
  return { estado, ms: Date.now() - t0, sagaId };
}

test.serial('a client waiting for the end of a saga it started on this BFF is answered at its end, with no read before waiting', async (t) => {
  const bff = await bffWith();
  try {
    await slowPayment(500);
    const { estado } = await startAndWait(bff, 30_000);
    t.is(estado, 'COMPLETADA');
    t.is(bff.estadoReads(), 0);
  } finally {
    await bff.close();
  }
});

test.serial('a saga whose end was told before its start returned is answered at once, not at the end of esperar_ms', async (t) => {
  // The start returns only once this BFF has heard the saga's end: the order a busy BFF can see.
  const bff = await bffWith((start, changes) => async (req) => {
    const result = await start(req);
    if (result.kind !== 'started') return result;
    let ended = false;
    const unsubscribe = changes.subscribe(result.sagaId, (estado) => (ended ||= estado !== null && TERMINAL_STATES.includes(estado)));
    await waitUntil(() => ended, { what: 'the end of the saga heard' });
    unsubscribe();
    return result;
  });
  try {
    const { estado, ms } = await startAndWait(bff, 8_000);
    t.is(estado, 'COMPLETADA');
    t.true(ms < 4_000, `answered after ${ms} ms`);
    t.is(bff.estadoReads(), 1, 'read, since a change of it was heard');
  } finally {
    await bff.close();
  }
});

test.serial('after the listening connection is lost and opened again, a saga started before is read before waiting', async (t) => {
  const bff = await bffWith();
  try {
    await slowPayment(3_000);
    const sagaId = await startSaga(bff);
    const before = await listeners();
    await env.query(`select pg_terminate_backend(pid) from pg_stat_activity where query = 'listen saga_cambios' and pid <> pg_backend_pid()`);
    await waitUntil(
      async () => {
        const now = await listeners();
        return now.length === before.length && now.every((pid) => !before.includes(pid));
      },
      { what: 'the listeners back, each on a new connection' },
    );
    const res = await fetch(`${bff.url}/saga/${sagaId}/status?esperar_ms=30000`);
    t.is(((await res.json()) as { estado: string }).estado, 'COMPLETADA');
    t.is(bff.estadoReads(), 1);
  } finally {
    await bff.close();
  }
});

test('while nothing listens (the connection lost and not yet back, or stopped), no saga started here is taken for unchanged', async (t) => {
  const changes = new SagaChanges(env.databaseUrl, log);
  await changes.start();
  const ticket = changes.beginStart();
  changes.started(ticket, 'saga-a');
  t.true(changes.unchangedSinceStarted('saga-a'));
  await changes.stop();
  t.false(changes.unchangedSinceStarted('saga-a'));
});

test('a saga heard of while its start was under way counts as heard; one heard before the start began does not', (t) => {
  const starts = new HeardDuringStarts();
  starts.heard('before');
  const a = starts.begin();
  starts.heard('a');
  t.true(starts.end(a, 'a'));
  const b = starts.begin();
  t.false(starts.end(b, 'before'));
});

test('what was heard is kept only while a start that began before it is under way', (t) => {
  const starts = new HeardDuringStarts();
  const first = starts.begin();
  starts.heard('x');
  const second = starts.begin();
  starts.heard('y');
  t.is(starts.size, 2);
  t.false(starts.end(first, 'z'));
  t.is(starts.size, 1, 'x is forgotten: the start still under way began after it');
  t.true(starts.end(second, 'y'));
  t.is(starts.size, 0);
});

test('past its bound it forgets what it heard, and the starts under way then count as having heard of their saga', (t) => {
  const starts = new HeardDuringStarts(3);
  const under = starts.begin();
  for (const id of ['a', 'b', 'c', 'd']) starts.heard(id);
  t.true(starts.size <= 3);
  t.true(starts.end(under, 'never-heard'), 'it cannot know any more');
  const after = starts.begin();
  t.false(starts.end(after, 'never-heard'));
});
