// `npx tsx scripts/bench/idle.ts [--orchestrators N] [--bffs M] [--seconds S]`
//
// What a cluster costs with no saga at all: the full path's processes are
// started as `npm run bench` starts them, left 15 s to settle, then watched for
// S seconds (default 20). Prints one JSON line: each orchestrator's and each
// BFF's CPU (% of one core, the mean over the processes), PostgreSQL's CPU (% of
// one core) and the transactions committed per second. This is the work each
// added process brings whatever the load (leases, sweeps, folds, polling): at a
// rate of R sagas/s it adds (CPU% / 100) × 1000 / R CPU-seconds per 1,000 sagas.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openMigratedDatabase } from '../../src/roles.js';
import { commitsSoFar, postgresCpuSeconds } from './measure.js';
import { cleanUp, createDatabase, postgresServer, startFull, startParticipants } from './processes.js';

const { values } = parseArgs({
  options: {
    orchestrators: { type: 'string', default: '1' },
    bffs: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '20' },
  },
});
const orchestrators = Number(values.orchestrators);
const bffs = Number(values.bffs);
const seconds = Number(values.seconds);
const opts = { logLevel: 'error' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let code = 1;
try {
  const server = await postgresServer();
  const url = await createDatabase(server.serverUrl, 'saga_idle');
  await (await openMigratedDatabase(url)).close();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    const participants = await startParticipants(server.serverUrl, { participants: 'stub' }, opts);
    const system = await startFull(url, participants.urls, { orchestrators, bffs }, opts);
    await sleep(15_000);
    const [cpu0, pg0, commits0, t0] = [system.cpu(), await postgresCpuSeconds(pool), await commitsSoFar(pool), performance.now()];
    await sleep(seconds * 1000);
    const [cpu1, pg1, commits1] = [system.cpu(), await postgresCpuSeconds(pool), await commitsSoFar(pool)];
    const s = (performance.now() - t0) / 1000;
    const pct = (cpu: number, processes: number) => Math.round((1000 * cpu) / s / processes) / 10;
    const line = {
      orchestrators,
      bffs,
      seconds: Math.round(s),
      orchestrator_cpu_pct_each: pct(cpu1.orchestrator - cpu0.orchestrator, orchestrators),
      bff_cpu_pct_each: pct((cpu1.bff ?? 0) - (cpu0.bff ?? 0), bffs),
      postgres_cpu_pct: pct(pg1 - pg0, 1),
      // commitsSoFar waits 1.2 s for the counters, in both readings: the interval is as long as measured.
      commits_per_second: Math.round((10 * (commits1 - commits0)) / s) / 10,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    await system.stop();
    code = 0;
  } finally {
    await pool.end();
  }
} catch (err) {
  process.stderr.write(`idle: ${(err as Error).stack ?? String(err)}\n`);
} finally {
  await cleanUp();
}
// The embedded server's exit hook calls process.exit(0): the code must be given here.
process.exit(code);
