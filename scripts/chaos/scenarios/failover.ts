// Issue 10's "done when": on a cluster as `npm run start:cluster -- --bffs 2`
// starts it (two orchestrators, two BFFs, default lease and timeouts), kill -9
// one orchestrator or one BFF while 300 sagas are POSTed, 25 at a time, by
// clients that send a refused POST again to another BFF under the same key.
// All 300 must be accepted, and all final with the right outcome within 60 s
// of the kill. No other fault runs meanwhile: this is the failover alone.
import { postWithKey, waitForStates } from '../clients.js';
import { runPool, sleep, type RunContext } from '../context.js';
import { Ledger } from '../ledger.js';
import { percentile } from '../../bench/measure.js';
import { say } from '../processes.js';
import { cluster as startCluster } from '../system.js';

const SAGAS = 300;
const CONCURRENCY = 25;
const KILL_AFTER = 100;
const BOUND_MS = 60_000;

export async function failover(ctx: RunContext, victims: string[]): Promise<void> {
  const { ledger } = ctx;
  const cl = startCluster(
    {
      orchestrators: 2,
      bffs: 2,
      campaignsPort: ctx.participants.campaignsPort,
      appPort: ctx.participants.appPort,
      env: { DATABASE_URL: ctx.db.url },
      orchestratorEnv: ctx.extraEnv.orchestrator,
      bffEnv: ctx.extraEnv.bff,
    },
    ctx.logDir,
  );
  await cl.start();
  try {
    for (const name of victims) {
      const victim = [...cl.orchestrators, ...cl.bffs].find((p) => p.name === name);
      if (victim === undefined) throw new Error(`no process ${name} in the failover cluster`);
      const scenario = `failover-${name}`;
      say(`failover: kill -9 ${name} after ${KILL_AFTER} of ${SAGAS} sagas are accepted (concurrency ${CONCURRENCY})`);
      const retries0 = ledger.postRetries;
      let accepted = 0;
      let killedAt = 0;
      const t0 = Date.now();
      const kill = (async () => {
        while (accepted < KILL_AFTER) await sleep(5);
        await victim.kill('SIGKILL');
        killedAt = Date.now();
        ledger.fault(victim.name.startsWith('bff') ? 'bffKills' : 'orchestratorKills');
      })();
      const runs = await runPool(SAGAS, CONCURRENCY, async (i) => {
        const { body } = ledger.request(scenario, i, Ledger.kindOf(i));
        const run = await postWithKey(cl.liveBffs, ctx.route, `${scenario}-${i}`, body, ledger, i);
        accepted += 1;
        return run;
      });
      await kill;
      const acceptedIn = Date.now() - t0;
      const ids = runs.map((r) => r.sagaId);
      const finalAt = await waitForStates(ctx.db.query, ids, ['COMPLETADA', 'COMPENSADA'], killedAt + BOUND_MS);
      const latencies = runs.map((r) => r.latencyMs).sort((a, b) => a - b);
      const settled = finalAt < 0 ? `NOT all final ${BOUND_MS / 1000} s after the kill` : `all final ${((finalAt - killedAt) / 1000).toFixed(1)} s after the kill`;
      ledger.note(
        'failover',
        `kill -9 ${name}: ${new Set(ids).size}/${SAGAS} accepted in ${(acceptedIn / 1000).toFixed(1)} s ` +
          `(${ledger.postRetries - retries0} POSTs sent again; accept p50 ${percentile(latencies, 50)} ms, max ${latencies[latencies.length - 1] ?? 0} ms); ${settled}`,
      );
      ledger.checks.push(doneWhen(name, ids, finalAt < 0 ? null : finalAt - killedAt));
      await victim.start();
      ledger.faultEnded();
    }
  } finally {
    // Cleanly: the leases go back at once, for the next cluster of the run.
    await cl.stop('SIGTERM');
  }
}

/** F1: every saga accepted, and final with the outcome its request calls for, within the bound. */
function doneWhen(victim: string, ids: string[], settleMs: number | null) {
  return {
    name: 'F1',
    description: `kill -9 of ${victim} during intake: all ${SAGAS} accepted, final as expected within ${BOUND_MS / 1000} s`,
    run: async (query: RunContext['db']['query']) => {
      const rows = await query<{ id: string; estado: string; refused: boolean }>(
        `select id::text, estado, datos->'reporte'->>'tipo_reporte' = 'inexistente' as refused from saga_log where id = any($1::uuid[])`,
        [ids],
      );
      const violations: string[] = [];
      if (new Set(ids).size !== SAGAS) violations.push(`${new Set(ids).size} distinct sagas accepted for ${SAGAS} requests`);
      if (rows.length !== new Set(ids).size) violations.push(`${new Set(ids).size - rows.length} accepted sagas are not in the saga log`);
      if (settleMs === null) violations.push(`not all final within ${BOUND_MS / 1000} s of the kill`);
      for (const r of rows) {
        const want = r.refused ? 'COMPENSADA' : 'COMPLETADA';
        if (r.estado !== want) violations.push(`${r.id}: ${r.estado}, expected ${want}`);
      }
      return { checked: rows.length, violations };
    },
  };
}
