// `npm run test:chaos [-- --short] [--sagas N] [--concurrency C] [--orchestrators K]`
//
// Drives real orchestrator processes on one PostgreSQL while breaking things:
// kill -9 of orchestrators, participant faults (5xx, slow answers past the call
// timeout, connection refused, a compensation endpoint down for a while), late
// participant successes, terminated backends and a PostgreSQL restart, a paused
// orchestrator (split brain), deadlines passing while every orchestrator is down,
// and duplicate requests. Then it checks the invariants on the recorded history
// and exits 1 if any is violated. `--short` is the version CI runs.
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openMigratedDatabase } from '../../src/roles.js';
import { freePort } from '../../src/http/server.js';
import { exampleRequest } from '../../src/sagas/crear-campana-completa/example.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/persistence/embedded-postgres.js';
import { adminQuery as adminQueryOn } from '../lib/services.js';
import { checkInvariants, fingerprint } from './invariants.js';
import { logCounts, managedRole, say, sleep, type ManagedProcess } from './processes.js';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    sagas: { type: 'string' },
    concurrency: { type: 'string' },
    orchestrators: { type: 'string', default: '3' },
  },
});
const SHORT = values.short;
const SAGAS = Number(values.sagas ?? (SHORT ? 150 : 800));
const CONCURRENCY = Number(values.concurrency ?? (SHORT ? 40 : 500));
const ORCHESTRATORS = Number(values.orchestrators);
const LEASE_MS = 2_000;
const CALL_TIMEOUT_MS = 800;
/** Every saga must be terminal this long after the last fault (I1's bound). */
const SETTLE_BOUND_MS = 60_000;

const counts = { kills: 0, pauses: 0, participantOutages: 0, backendTerminations: 0, postgresRestarts: 0, faultRules: 0, postRetries: 0 };
let lastFaultAt = Date.now();
const fault = () => (lastFaultAt = Date.now());

// ---------------------------------------------------------------- database
const pgPort = await freePort();
let embedded: EmbeddedDatabase | undefined;
const dataDir = path.join(tmpdir(), `saga-chaos-${randomBytes(4).toString('hex')}`);
let serverUrl = process.env.DATABASE_URL;
if (serverUrl === undefined) {
  embedded = await startEmbeddedPostgres({ dataDir, port: pgPort, persistent: true });
  serverUrl = embedded.url;
}
const adminUrl: string = serverUrl;
const adminQuery = (sql: string) => adminQueryOn(adminUrl, sql);
const dbName = `saga_chaos_${randomBytes(4).toString('hex')}`;
await adminQuery(`create database ${dbName}`);
const dbUrl = new URL(serverUrl);
dbUrl.pathname = `/${dbName}`;
const databaseUrl = dbUrl.toString();
await (await openMigratedDatabase(databaseUrl)).close();
const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
pool.on('error', () => undefined);
const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await pool.query<R>(sql, params)).rows;

// ---------------------------------------------------------------- processes
const participantsPort = await freePort();
const appPort = await freePort();
const participants = managedRole('participants', 'participants', participantsPort, {
  DATABASE_URL: databaseUrl,
  CAMPAIGNS_PORT: String(participantsPort),
  APP_PORT: String(appPort),
  PARTICIPANT_FAULTS: 'on',
});
const orchestrators: ManagedProcess[] = Array.from({ length: ORCHESTRATORS }, (_, i) =>
  managedRole(`orchestrator-${i + 1}`, 'orchestrator', 0, {
    DATABASE_URL: databaseUrl,
    PORT: '0',
    CAMPAIGNS_URL: `http://127.0.0.1:${participantsPort}`,
    PAGOS_URL: `http://127.0.0.1:${appPort}`,
    REPORTING_URL: `http://127.0.0.1:${appPort}`,
    SHARD_LEASE_MS: String(LEASE_MS),
    SHARD_RENEW_MS: '400',
    SAGA_SWEEP_MS: '1000',
    CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS),
    SAGA_BACKOFF_SCALE: '1',
  }),
);

async function faultRule(url: string, rule: Record<string, unknown>): Promise<void> {
  await fetch(`${url}/__faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) });
  counts.faultRules += 1;
}
const clearFaults = async () => {
  for (const port of [participantsPort, appPort]) await fetch(`http://127.0.0.1:${port}/__faults`, { method: 'DELETE' });
};
/** 10% of every participant call fails with a 5xx; a few answer after the caller gave up. */
async function baseFaults(): Promise<void> {
  const campaigns = `http://127.0.0.1:${participantsPort}`;
  const app = `http://127.0.0.1:${appPort}`;
  const many = { times: 1_000_000 };
  await faultRule(campaigns, { route: 'POST /api/campaigns', status: 503, rate: 0.1, ...many });
  await faultRule(app, { route: 'POST /pagos', status: 502, rate: 0.1, ...many });
  await faultRule(app, { route: 'POST /reporting', status: 500, rate: 0.1, ...many });
  await faultRule(campaigns, { route: 'PATCH /api/campaigns/:id/cancel', status: 503, rate: 0.1, ...many });
  // The effect is applied and the answer comes after the call timed out: the
  // orchestrator must retry under the same key and get the stored answer.
  await faultRule(app, { route: 'POST /pagos', delayMs: CALL_TIMEOUT_MS + 400, delayPhase: 'response', rate: 0.05, ...many });
  await faultRule(campaigns, { route: 'POST /api/campaigns', delayMs: 300, delayPhase: 'response', rate: 0.05, ...many });
}

// ---------------------------------------------------------------- requests
function body(i: number, overrides: { timeout_minutos?: number } = {}) {
  const request = exampleRequest();
  request.campana.nombre = `Campaña caos ${i}`;
  request.pago.referencia_pago = `ref_${i}`;
  // One saga in ten asks for a report Reporting does not offer: it fails at the third step.
  if (i % 10 === 9) request.reporte.tipo_reporte = 'inexistente';
  request.timeout_minutos = overrides.timeout_minutos ?? 30;
  return request;
}

/** POSTs to a live orchestrator, retrying elsewhere under the same key until one answers 200. */
async function startSaga(key: string, payload: unknown): Promise<string> {
  const until = Date.now() + 120_000;
  for (let attempt = 0; Date.now() < until; attempt++) {
    const live = orchestrators.filter((o) => o.alive());
    const target = live[(attempt + key.length) % Math.max(1, live.length)];
    if (target !== undefined) {
      try {
        const res = await fetch(`${target.url}/saga/crear-campana-completa`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify(payload),
          signal: AbortSignal.timeout(5_000),
        });
        if (res.status === 200) return ((await res.json()) as { saga_id: string }).saga_id;
      } catch {
        // killed, paused or database down: try again
      }
    }
    counts.postRetries += 1;
    await sleep(100);
  }
  throw new Error(`no orchestrator accepted ${key}`);
}

async function runPool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function waitTerminal(ids: string[], boundMs: number): Promise<number> {
  const until = Date.now() + boundMs;
  while (Date.now() < until) {
    try {
      const [r] = await query<{ n: number }>(
        `select count(*)::int as n from saga_log where id = any($1)
         and estado not in ('COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA')`,
        [ids],
      );
      if (r?.n === 0) return Date.now();
    } catch {
      // database restarting
    }
    await sleep(200);
  }
  return -1;
}

// ---------------------------------------------------------------- chaos actions
const restarting = new Set<Promise<void>>();
/** A live orchestrator at random (one not being restarted or paused). */
const pick = () => {
  const live = orchestrators.filter((o) => o.alive() && !o.starting());
  return live[Math.floor(Math.random() * live.length)];
};

/** Scenario 1: kill -9 at a random moment; the process comes back a little later. */
async function killAndRestart(): Promise<void> {
  // Always leave one up, so that new sagas can still be accepted (scenario 6
  // is the one where every orchestrator is down).
  if (orchestrators.filter((o) => o.alive() && !o.starting()).length < 2) return;
  const victim = pick();
  if (victim === undefined) return;
  await victim.kill('SIGKILL');
  counts.kills += 1;
  fault();
  say(`  kill -9 ${victim.name}`);
  const restart = sleep(300 + Math.random() * 700)
    .then(() => victim.start())
    .catch((err: unknown) => say(`  ${victim.name} could not be restarted: ${(err as Error).message}`))
    .finally(() => restarting.delete(restart));
  restarting.add(restart);
}

/** Scenario 5: a process paused past its lease while another takes its shards. */
async function splitBrain(): Promise<void> {
  let victim = pick();
  for (let tries = 0; victim === undefined && tries < 100; tries++) {
    await sleep(100); // every orchestrator is restarting: wait for one to be up
    victim = pick();
  }
  if (victim === undefined) throw new Error('no orchestrator came up to be paused');
  say(`  pausing ${victim.name} (SIGSTOP) for ${2 * LEASE_MS} ms, twice its lease`);
  victim.pause();
  counts.pauses += 1;
  fault();
  await sleep(2 * LEASE_MS + 500);
  victim.resume();
  fault();
}

/** Scenario 2: connection refused, then a compensation endpoint down for a while. */
async function participantOutage(): Promise<void> {
  say('  participants down (connection refused) for 1.5 s');
  await participants.kill('SIGKILL');
  counts.participantOutages += 1;
  fault();
  await sleep(1_500);
  await participants.start();
  await baseFaults();
  say('  PATCH /pagos/:id/revertir answers 503 for 4 s, then recovers');
  await faultRule(`http://127.0.0.1:${appPort}`, { route: 'PATCH /pagos/:id/revertir', status: 503, times: 1_000_000 });
  await sleep(4_000);
  await clearFaults();
  await baseFaults();
  fault();
}

/** Scenario 4: every backend terminated, then (embedded) PostgreSQL stopped in immediate mode and restarted. */
async function databaseFaults(): Promise<void> {
  say('  terminating every backend of the database');
  await adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${dbName}' and pid <> pg_backend_pid()`);
  counts.backendTerminations += 1;
  fault();
  if (embedded === undefined) return;
  await sleep(1_500);
  say('  restarting PostgreSQL (immediate shutdown)');
  const { readFile } = await import('node:fs/promises');
  const postmasterPid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  process.kill(postmasterPid, 'SIGQUIT');
  await sleep(1_000);
  embedded = await startEmbeddedPostgres({ dataDir, port: pgPort, persistent: true });
  counts.postgresRestarts += 1;
  fault();
}

// ---------------------------------------------------------------- the run
const report: string[] = [];
let exitCode = 0;
try {
  say(`chaos run: ${SAGAS} sagas, concurrency ${CONCURRENCY}, ${ORCHESTRATORS} orchestrators, lease ${LEASE_MS} ms${SHORT ? ' (short)' : ''}`);
  await participants.start();
  for (const o of orchestrators) await o.start();
  await baseFaults();

  // Scenarios 1-5 run together while the sagas are started.
  const t0 = Date.now();
  let driving = true;
  const chaos = (async () => {
    const plan = [splitBrain, participantOutage, databaseFaults];
    let round = 0;
    while (driving) {
      await sleep(SHORT ? 700 : 1_000);
      if (!driving) break;
      if (round % 4 === 3 && plan.length > 0) await plan.shift()!();
      else await killAndRestart();
      round += 1;
    }
    for (const step of plan) await step(); // whatever the drive was too short for
    await Promise.all(restarting);
  })();
  const ids = await runPool(SAGAS, CONCURRENCY, (i) => startSaga(`chaos-${i}`, body(i)));
  driving = false;
  await chaos;
  for (const o of orchestrators) if (!o.alive()) await o.start();
  say(`started ${ids.length} sagas in ${Date.now() - t0} ms`);

  // Scenario 6: deadlines that pass while every orchestrator is down.
  say('scenario 6: deadlines passing while every orchestrator is down');
  await faultRule(`http://127.0.0.1:${appPort}`, { route: 'POST /pagos', delayMs: 4_000, times: 1_000 });
  const timed = await runPool(10, 10, (i) => startSaga(`chaos-timeout-${i}`, body(1_000 + i, { timeout_minutos: 0.03 })));
  await sleep(800);
  for (const o of orchestrators) await o.kill('SIGKILL');
  counts.kills += orchestrators.length;
  fault();
  await sleep(2_500);
  for (const o of orchestrators) await o.start();
  await clearFaults();
  fault();

  // Scenario 7: duplicate requests.
  say('scenario 7: duplicate requests');
  const dup = body(2_000);
  const twice = [await startSaga('chaos-dup-1', dup), await startSaga('chaos-dup-1', dup)];
  const burst = await Promise.all(Array.from({ length: 50 }, () => startSaga('chaos-dup-50', body(2_001))));
  const mismatch = await fetch(`${orchestrators[0]!.url}/saga/crear-campana-completa`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'chaos-dup-1' },
    body: JSON.stringify(body(2_002)),
  });
  const dupViolations = [
    ...(new Set(twice).size === 1 ? [] : ['the same key twice gave two sagas']),
    ...(new Set(burst).size === 1 ? [] : [`the same key 50 times in parallel gave ${new Set(burst).size} sagas`]),
    ...(mismatch.status === 422 ? [] : [`the same key with another body answered ${mismatch.status}, not 422`]),
  ];

  const all = [...ids, ...timed, twice[0]!, burst[0]!];
  const doneAt = await waitTerminal(all, SETTLE_BOUND_MS);
  const settleMs = doneAt < 0 ? -1 : doneAt - lastFaultAt;
  say(doneAt < 0 ? `NOT all sagas terminal ${SETTLE_BOUND_MS} ms after the last fault` : `last saga terminal ${settleMs} ms after the last fault`);

  // Scenario 3: late answers keep arriving; terminal records must not change.
  const before = await fingerprint(query, all);
  await sleep(5_000);
  const after = await fingerprint(query, all);

  const results = await checkInvariants(query, all, ['COMPLETADA', 'COMPENSADA']);
  const timedOut = await query<{ n: number }>(
    `select count(*)::int as n from saga_log where id = any($1) and estado = 'COMPENSADA' and error_message like '%timeout_minutos%'`,
    [timed],
  );
  const outcomes = await query<{ estado: string; n: number }>(
    'select estado, count(*)::int as n from saga_log where id = any($1) group by estado order by estado',
    [all],
  );

  // Why sagas failed, with ids and numbers blanked out so that alike reasons group together.
  const reasons = await query<{ reason: string; n: number }>(
    `select regexp_replace(regexp_replace(coalesce(error_message, '?'), '[0-9a-f]{8}-[0-9a-f-]{27}', ':id', 'g'), '[0-9]+', 'N', 'g') as reason,
            count(*)::int as n
     from saga_log where id = any($1) and estado <> 'COMPLETADA' group by 1 order by 2 desc limit 5`,
    [all],
  );

  report.push(
    '',
    'Chaos run',
    `  sagas run            ${all.length} (${outcomes.map((o) => `${o.estado} ${o.n}`).join(', ')})`,
    ...reasons.map((r) => `    ${String(r.n).padStart(4)} × ${r.reason.slice(0, 110)}`),
    `  orchestrator kills   ${counts.kills} (SIGKILL), pauses ${counts.pauses} (SIGSTOP past the lease)`,
    `  participant faults   ${counts.faultRules} rules (10% 5xx, late answers past the ${CALL_TIMEOUT_MS} ms call timeout), ${counts.participantOutages} outage(s)`,
    `  database faults      ${counts.backendTerminations} backend termination(s), ${counts.postgresRestarts} PostgreSQL restart(s)`,
    `  POST retries         ${counts.postRetries} (a request that found its orchestrator dead or paused)`,
    `  fenced writes        ${logCounts.fencedWrites} refused, ${logCounts.leasesLost} leases lost`,
    `  settled              ${settleMs < 0 ? 'NO' : `${settleMs} ms`} after the last fault (bound ${SETTLE_BOUND_MS} ms)`,
    `  scenario 6           ${timedOut[0]?.n ?? 0}/${timed.length} sagas whose deadline passed with no orchestrator compensated`,
    '',
    'Invariants (violations; 0 expected)',
  );
  const extra = [
    { name: 'I1', violations: settleMs < 0 ? ['not all sagas terminal within the bound'] : [] },
    { name: 'S3', description: 'terminal records never change (5 s of late answers)', checked: all.length, violations: before === after ? [] : ['terminal records changed'] },
    { name: 'S6', description: 'deadline passed while down: failed and compensated', checked: timed.length, violations: (timedOut[0]?.n ?? 0) === timed.length ? [] : ['a saga whose deadline passed did not compensate'] },
    { name: 'S7', description: 'duplicate requests give one saga; another body is refused', checked: 3, violations: dupViolations },
  ];
  for (const r of [...results, ...extra.filter((e) => e.name !== 'I1')]) {
    const v = r.violations.length + (r.name === 'I1' ? extra[0]!.violations.length : 0);
    report.push(`  ${r.name}  ${String(v).padStart(4)}   ${'description' in r ? r.description : ''} (${'checked' in r ? r.checked : ''} checked)`);
    for (const line of r.violations.slice(0, 5)) report.push(`          ${line}`);
    if (v > 0) exitCode = 1;
  }
  report.push('', exitCode === 0 ? 'chaos: 0 violations' : 'chaos: VIOLATIONS FOUND');
} catch (err) {
  report.push(`chaos run failed: ${(err as Error).stack ?? String(err)}`);
  exitCode = 1;
} finally {
  for (const p of [...orchestrators, participants]) {
    p.resume();
    await p.kill('SIGKILL');
  }
  await pool.end().catch(() => undefined);
  await adminQuery(`drop database if exists ${dbName} with (force)`).catch(() => undefined);
  await embedded?.stop().catch(() => undefined);
  if (embedded !== undefined) {
    const { rm } = await import('node:fs/promises');
    await rm(dataDir, { recursive: true, force: true });
  }
}
process.stdout.write(report.join('\n') + '\n');
process.exit(exitCode);
