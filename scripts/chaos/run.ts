// `npm run test:chaos [-- --short] [--sagas N] [--concurrency C] [--inject NAME]`
//
// Drives real processes on one PostgreSQL while breaking things, then checks
// the invariants on the recorded history and exits 1 if any is violated.
// `--short` is what CI runs. The scenarios, in order:
//  1. failover (issue 10's "done when"): kill -9 of one orchestrator, then of
//     one BFF, while 300 sagas are POSTed to a start:cluster-like cluster;
//  2. storm: everything at once (scenarios/storm.ts);
//  3. deadlines passing while every orchestrator is down;
//  4. a compensation down longer than its budget, then operator orders;
//  5. duplicate requests;
// and the outbox relay runs in every storm orchestrator throughout, against a
// deduplicating stand-in broker (scenarios/relay.ts).
// `--inject NAME` runs it with one bug switched on (injections.ts) and exits 0
// only if the checks meant to catch that bug report it.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createToken } from '../../src/operator/tokens.js';
import { waitForStates } from './clients.js';
import { sleep, type RunContext, type Stage } from './context.js';
import { Disruptions } from './disruptions.js';
import { INJECTIONS } from './injections.js';
import { checkInvariants } from './invariants.js';
import { postMortem } from './post-mortem.js';
import { Ledger } from './ledger.js';
import { say } from './processes.js';
import { report, type CheckOutcome } from './report.js';
import { budget } from './scenarios/budget.js';
import { deadlines } from './scenarios/deadlines.js';
import { duplicates } from './scenarios/duplicates.js';
import { failover } from './scenarios/failover.js';
import { outboxDrained, relayEnv, startBroker, withAcknowledgementsHeld } from './scenarios/relay.js';
import { storm } from './scenarios/storm.js';
import { cluster, openChaosDatabase, participantsProcess } from './system.js';
import { TerminalRecords } from './terminal-records.js';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    sagas: { type: 'string' },
    concurrency: { type: 'string' },
    orchestrators: { type: 'string', default: '3' },
    inject: { type: 'string' },
  },
});
const SHORT = values.short;
const SIZE = {
  sagas: Number(values.sagas ?? (SHORT ? 150 : 800)),
  concurrency: Number(values.concurrency ?? (SHORT ? 40 : 200)),
  keylessPauseMs: SHORT ? 1_000 : 300,
};
const ORCHESTRATORS = Number(values.orchestrators);
const LEASE_MS = 2_000;
const CALL_TIMEOUT_MS = 800;
/** Every saga must be final this long after the last fault (I1's bound). */
const BOUND_MS = 60_000;
const injected = values.inject === undefined ? undefined : INJECTIONS[values.inject];
if (values.inject !== undefined && injected === undefined) {
  console.error(`--inject: unknown; one of ${Object.keys(INJECTIONS).join(', ')}`);
  process.exit(2);
}

const ledger = new Ledger();
const broker = await startBroker();
const logDir = path.join(tmpdir(), `saga-chaos-logs-${randomBytes(3).toString('hex')}`);
await mkdir(logDir, { recursive: true });
const db = await openChaosDatabase();
const participants = await participantsProcess(db.url, logDir);
const storming = cluster(
  {
    orchestrators: ORCHESTRATORS,
    bffs: 2,
    campaignsPort: participants.campaignsPort,
    appPort: participants.appPort,
    // Through the proxy: their answers from PostgreSQL can be lost.
    env: { DATABASE_URL: db.proxiedUrl },
    orchestratorEnv: {
      SHARD_LEASE_MS: String(LEASE_MS),
      SHARD_RENEW_MS: '400',
      SAGA_SWEEP_MS: '1000',
      CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS),
      // Each runs the outbox relay (one publishes at a time) to the deduplicating stand-in broker.
      ...relayEnv(broker),
      ...injected?.orchestrator,
    },
    ...(injected?.orchestratorEach === undefined ? {} : { orchestratorEnvOf: injected.orchestratorEach }),
    bffEnv: { ...injected?.bff },
  },
  logDir,
);
const terminal = new TerminalRecords(db.query);

let passed = false;
const lines: string[] = [];
try {
  say(`chaos run${SHORT ? ' (short)' : ''}: logs in ${logDir}${values.inject === undefined ? '' : `; injected: ${values.inject}`}`);
  await participants.process.start();
  const ctx: RunContext = {
    short: SHORT,
    db,
    ledger,
    participants,
    logDir,
    token: await createToken(db.pool, 'caos', 'operador'),
    route: '/saga/crear-campana-completa',
    extraEnv: { orchestrator: { ...injected?.orchestrator }, bff: { ...injected?.bff } },
  };
  terminal.start();

  await failover(ctx, SHORT ? ['orchestrator-1', 'bff-1'] : ['orchestrator-1', 'orchestrator-2', 'bff-1', 'bff-2']);

  await storming.start();
  const stage: Stage = {
    cluster: storming,
    disruptions: new Disruptions({ cluster: storming, participants, db, ledger, leaseMs: LEASE_MS, callTimeoutMs: CALL_TIMEOUT_MS }),
  };
  await storm(ctx, stage, SIZE, terminal);
  // Every orchestrator is killed there: the relay among them, with messages stored and not yet answered.
  await withAcknowledgementsHeld(ctx, broker, () => deadlines(ctx, stage));
  await budget(ctx, stage, SHORT ? 6 : 12);
  await duplicates(ctx, stage);
  await stage.disruptions.restarted();

  const settledAt = await waitForStates(db.query, null, ['COMPLETADA', 'COMPENSADA'], ledger.lastFaultAt + BOUND_MS);
  say(settledAt < 0 ? `NOT every saga final ${BOUND_MS / 1000} s after the last fault` : `every saga final ${((settledAt - ledger.lastFaultAt) / 1000).toFixed(1)} s after the last fault`);
  await sleep(3_000); // answers that were late keep arriving: nothing final may change
  await outboxDrained(ctx, broker);
  const settling = { lastFaultAt: ledger.lastFaultAt, settledAt: settledAt < 0 ? null : settledAt, boundMs: BOUND_MS };

  const checks: CheckOutcome[] = await checkInvariants(db.query, ledger.expected, settling);
  for (const c of [terminal.check(), ...ledger.checks]) checks.push({ name: c.name, description: c.description, ...(await c.run(db.query)) });
  const sagas = await db.query<{ estado: string; n: number }>('select estado, count(*)::int as n from saga_log group by estado order by estado');
  // Why sagas failed, with ids and numbers blanked so that alike reasons group together.
  const reasons = await db.query<{ reason: string; n: number }>(
    `select regexp_replace(regexp_replace(coalesce(error_message, '?'), '[0-9a-f]{8}-[0-9a-f-]{27}', ':id', 'g'), '[0-9]+', 'N', 'g') as reason,
            count(*)::int as n
     from saga_log where estado <> 'COMPLETADA' group by 1 order by 2 desc limit 6`,
  );
  const out = report(ledger, {
    title: `Chaos run${SHORT ? ' (short)' : ''}: ${ORCHESTRATORS} orchestrators and 2 BFFs in the storm, lease ${LEASE_MS} ms, call timeout ${CALL_TIMEOUT_MS} ms`,
    sagas,
    reasons,
    settleMs: settling.settledAt === null ? null : settling.settledAt - settling.lastFaultAt,
    boundMs: BOUND_MS,
    checks,
    ...(injected === undefined || values.inject === undefined ? {} : { injected: { name: values.inject, injection: injected } }),
  });
  lines.push(...out.lines);
  passed = out.passed;
  const kept = await postMortem(db.query, checks.flatMap((c) => c.violations), logDir).catch(() => null);
  if (kept !== null) lines.push(`the history of the sagas named above: ${kept}`);
} catch (err) {
  lines.push(`chaos run failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await terminal.stop();
  await storming.stop('SIGKILL').catch(() => undefined);
  await participants.process.kill('SIGKILL').catch(() => undefined);
  await broker.stop().catch(() => undefined);
  await db.close();
}
process.stdout.write(lines.join('\n') + '\n');
// The embedded server's exit hook calls process.exit(0): the code must be given here.
process.exit(passed ? 0 : 1);
