// Duplicate requests through the BFFs: the same key twice, the same key fifty
// times at once, and the same key with another body.
import { postWithKey } from '../clients.js';
import type { RunContext, Stage } from '../context.js';
import { say } from '../processes.js';

export async function duplicates(ctx: RunContext, { cluster: cl }: Stage): Promise<void> {
  const { ledger } = ctx;
  say('duplicate requests');
  const once = ledger.request('duplicados', 0, 'completes').body;
  const twice = [
    (await postWithKey(cl.liveBffs, ctx.route, 'duplicado-1', once, ledger)).sagaId,
    (await postWithKey(cl.liveBffs, ctx.route, 'duplicado-1', once, ledger, 1)).sagaId,
  ];
  const burstBody = ledger.request('duplicados', 1, 'completes').body;
  const burst = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => (await postWithKey(cl.liveBffs, ctx.route, 'duplicado-50', burstBody, ledger, i)).sagaId),
  );
  const other = ledger.request('duplicados-otro-cuerpo', 0, 'completes');
  ledger.expected.delete(other.ref); // refused: no saga may come of it
  const mismatch = await fetch(`${cl.liveBffs()[0]!}${ctx.route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'duplicado-1' },
    body: JSON.stringify(other.body),
  });
  const violations = [
    ...(new Set(twice).size === 1 ? [] : ['the same key twice gave two sagas']),
    ...(new Set(burst).size === 1 ? [] : [`the same key 50 times at once gave ${new Set(burst).size} sagas`]),
    ...(mismatch.status === 422 ? [] : [`the same key with another body answered ${mismatch.status}, not 422`]),
  ];
  ledger.checks.push({
    name: 'S7',
    description: 'duplicate requests give one saga; the same key with another body is refused (422)',
    run: () => Promise.resolve({ checked: 3, violations }),
  });
}
