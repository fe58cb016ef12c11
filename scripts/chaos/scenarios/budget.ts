// A compensation endpoint down for longer than its retry budget, and the
// operator who then finishes the job. The orchestrators run with a 3 s budget
// for CANCELAR_CAMPANA (SAGA_RETRY_BUDGETS_MS); Campaigns answers 503 to every
// cancel; sagas whose report is refused revert their payment but cannot
// cancel their campaign, and must end COMPENSACION_FALLIDA naming that undo.
// Then the endpoint comes back and, while orchestrators are killed, an
// operator retries half of them (reintentar) and declares the other half done
// by hand (omitir): every one must end COMPENSADA, with nothing live but the
// campaigns an operator recorded as omitted.
import { operatorOrder, postWithKey, waitForStates, type OrderRecord } from '../clients.js';
import { runPool, sleep, type RunContext, type Stage } from '../context.js';
import type { Check } from '../ledger.js';
import { say, type ManagedProcess } from '../processes.js';

const UNDO = 'CANCELAR_CAMPANA';
const BUDGET_MS = 3_000;

export async function budget(ctx: RunContext, { cluster: cl, disruptions: dis }: Stage, sagas: number): Promise<void> {
  const { ledger, db } = ctx;
  say(`compensation budget: ${UNDO} down longer than its ${BUDGET_MS} ms budget, then operator orders while orchestrators die`);
  // The sagas before must not meet the outage: wait for them to be final.
  await waitForStates(db.query, null, ['COMPLETADA', 'COMPENSADA'], Date.now() + 60_000);
  await restartAll(cl.orchestrators, dis, { ...ctx.extraEnv.orchestrator, SAGA_RETRY_BUDGETS_MS: `${UNDO}=${BUDGET_MS}` });
  // (The first rule that matches a request decides: the outage goes before the 10% ones.)
  await dis.clearFaults();
  await dis.faultRule(ctx.participants.campaigns, { route: 'PATCH /api/campaigns/:id/cancel', status: 503, times: 10_000 });
  await dis.baseFaults();
  ledger.fault('endpointOutages');

  const ids = await runPool(sagas, sagas, async (i) => {
    const { body } = ledger.request('presupuesto', i, 'reportRefused');
    return (await postWithKey(cl.liveBffs, ctx.route, `presupuesto-${i}`, body, ledger, i)).sagaId;
  });
  const failedAt = await waitForStates(db.query, ids, ['COMPENSACION_FALLIDA', 'COMPLETADA', 'COMPENSADA'], Date.now() + 60_000);
  const outstanding = await db.query<{ id: string; estado: string; pendiente: string | null }>(
    `select id::text, estado, (select c->>'estado' from jsonb_array_elements(snapshot->'compensations') c where c->>'tipo' = $2) as pendiente
     from saga_log where id = any($1::uuid[])`,
    [ids, UNDO],
  );
  say(`  ${outstanding.filter((r) => r.estado === 'COMPENSACION_FALLIDA').length}/${sagas} COMPENSACION_FALLIDA; the endpoint comes back`);
  await dis.clearFaults();
  await dis.baseFaults();
  ledger.faultEnded();

  // Back to the normal budget first (a retried undo must not meet the short one again).
  await restartAll(cl.orchestrators, dis, ctx.extraEnv.orchestrator);
  // The orders go out while one orchestrator after another is killed.
  const orders: OrderRecord[] = [];
  const killer = (async () => {
    for (const o of cl.orchestrators) {
      await dis.kill(o, 'orchestrator');
      dis.restartLater(o, 1_500);
      await sleep(1_000);
    }
  })();
  orders.push(
    ...(await Promise.all(
      ids.map((id, i) =>
        i % 2 === 0
          ? operatorOrder(cl.liveBffs, ctx.token, id, 'reintentar', { motivo: 'caos: Campaigns volvió' }, `caos-reintentar-${i}`)
          : operatorOrder(cl.liveBffs, ctx.token, id, 'omitir', { motivo: 'caos: cancelada a mano en Campaigns', compensacion: UNDO }, `caos-omitir-${i}`),
      ),
    )),
  );
  await killer;
  await dis.restarted();
  ledger.note(
    'budget',
    `${outstanding.filter((r) => r.estado === 'COMPENSACION_FALLIDA').length}/${sagas} ended COMPENSACION_FALLIDA ${failedAt < 0 ? '(not all in time)' : ''}; ` +
      `operator: ${orders.filter((o) => o.resultado === 'aceptada').length}/${orders.length} orders accepted (reintentar and omitir), ${orders.reduce((n, o) => n + o.sends - 1, 0)} sent again`,
  );
  ledger.checks.push(exhausted(outstanding, orders));
}

/** Every orchestrator killed at once and started again with `env`. */
async function restartAll(orchestrators: ManagedProcess[], dis: Stage['disruptions'], env: Record<string, string>): Promise<void> {
  for (const o of orchestrators) {
    o.setEnv(env);
    await dis.kill(o, 'orchestrator');
  }
  await Promise.all(orchestrators.map((o) => o.start()));
}

/** B1: an undo that outran its budget ends COMPENSACION_FALLIDA naming it; the operator's orders on it are accepted. */
function exhausted(outstanding: { id: string; estado: string; pendiente: string | null }[], orders: OrderRecord[]): Check {
  return {
    name: 'B1',
    description: `an undo down longer than its budget ends COMPENSACION_FALLIDA naming it; reintentar and omitir then finish it`,
    run: () => {
      const violations = [
        ...outstanding
          .filter((r) => r.estado !== 'COMPENSACION_FALLIDA' || r.pendiente !== 'fallida')
          .map((r) => `${r.id}: ${r.estado}, ${UNDO} ${r.pendiente ?? 'not in its plan'} (expected COMPENSACION_FALLIDA, fallida)`),
        ...orders.filter((o) => o.resultado !== 'aceptada').map((o) => `${o.key} on ${o.sagaId}: ${o.resultado ?? 'no decision'}`),
      ];
      return Promise.resolve({ checked: outstanding.length, violations });
    },
  };
}
