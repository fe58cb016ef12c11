// Deadlines that pass while no orchestrator runs: sagas with a tiny
// timeout_minutos whose payment is made but answered late (past the call
// timeout: an unknown outcome), then every orchestrator killed past their
// deadline and started again. They must fail and undo what they did,
// the payment whose answer never came included.
import { postWithKey } from '../clients.js';
import { runPool, sleep, type RunContext, type Stage } from '../context.js';
import type { Check } from '../ledger.js';
import { say } from '../processes.js';

export async function deadlines(ctx: RunContext, { cluster: cl, disruptions: dis }: Stage): Promise<void> {
  const { ledger } = ctx;
  say('deadlines passing while every orchestrator is down');
  // The payment is made at once and answered 4 s late: its call times out, the deadline (1.8 s) passes meanwhile.
  // (The first rule that matches a request decides: this one goes before the 10% ones.)
  await dis.clearFaults();
  await dis.faultRule(ctx.participants.app, { route: 'POST /pagos', delayMs: 4_000, delayPhase: 'response', times: 1_000 });
  await dis.baseFaults();
  const refs: string[] = [];
  await runPool(10, 10, async (i) => {
    const { ref, body } = ledger.request('plazo', i, 'deadline');
    refs.push(ref);
    await postWithKey(cl.liveBffs, ctx.route, `plazo-${i}`, body, ledger, i);
  });
  await sleep(800);
  for (const o of cl.orchestrators) await dis.kill(o, 'orchestrator');
  await sleep(2_500);
  for (const o of cl.orchestrators) await o.start();
  await dis.clearFaults();
  await dis.baseFaults();
  ledger.faultEnded();
  ledger.checks.push(deadlinePassed(refs));
}

/** S6: every saga whose deadline passed while no orchestrator ran failed for it, and compensated. */
function deadlinePassed(refs: string[]): Check {
  return {
    name: 'S6',
    description: 'a deadline that passed while no orchestrator ran fails the saga, which compensates',
    async run(query) {
      const rows = await query<{ id: string; estado: string; error_message: string | null }>(
        `select id::text, estado, error_message from saga_log where datos->'pago'->>'referencia_pago' = any($1::text[])`,
        [refs],
      );
      const violations = rows
        .filter((r) => r.estado !== 'COMPENSADA' || !(r.error_message ?? '').includes('timeout_minutos'))
        .map((r) => `${r.id}: ${r.estado} (${r.error_message ?? 'no error'})`);
      if (rows.length !== refs.length) violations.push(`${refs.length - rows.length} of the sagas were not recorded`);
      return { checked: rows.length, violations };
    },
  };
}
