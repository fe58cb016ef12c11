// The storm: sagas POSTed through the BFFs while everything breaks at once.
// Orchestrators and BFFs are killed with -9 and come back, an orchestrator is
// paused past its lease, the participants are cut off and one compensation
// endpoint is down for a while (10% of calls answer 5xx and some answer after
// the call timeout all along), backends are terminated, PostgreSQL restarts,
// and its answers get lost on the way back. Meanwhile an operator cancels
// sagas (some still running, some that just ended), and clients that send no
// Idempotency-Key retry the way the README tells them to.
import { operatorOrder, postWithKey, postWithoutKey, type KeylessRecord, type OrderRecord } from '../clients.js';
import { runPool, sleep, type RunContext, type Stage } from '../context.js';
import { Ledger, type Check } from '../ledger.js';
import { say } from '../processes.js';
import type { TerminalRecords } from '../terminal-records.js';

export interface StormSize {
  sagas: number;
  concurrency: number;
  /** Each of the two keyless clients waits this long between its requests. */
  keylessPauseMs: number;
}

export async function storm(ctx: RunContext, stage: Stage, size: StormSize, terminal: TerminalRecords): Promise<void> {
  const { ledger } = ctx;
  const { cluster: cl, disruptions: dis } = stage;
  say(`storm: ${size.sagas} sagas (concurrency ${size.concurrency}) and some without a key, while everything breaks`);
  await dis.baseFaults();
  const started: string[] = [];
  let storming = true;
  const t0 = Date.now();

  // Clients without a key: a couple all along, and a burst just as PostgreSQL's answers start to get lost,
  // whose writes commit unseen: the BFF must say it does not know, and name the saga.
  const noKey: Promise<KeylessRecord>[] = [];
  let keylessCount = 0;
  const keylessOne = () => {
    const i = keylessCount++;
    const { ref, body } = ledger.request('storm-sin-clave', i, Ledger.kindOf(i));
    const rec = postWithoutKey(cl.liveBffs, ctx.route, ref, body, ledger, i);
    noKey.push(rec);
    return rec;
  };
  // They also keep every BFF's connections in use, so that a cut finds them open.
  const keyless = Promise.all(
    Array.from({ length: 2 }, async () => {
      while (storming) {
        await keylessOne();
        await sleep(size.keylessPauseMs);
      }
    }),
  );
  const answersLostDuringIntake = async () => {
    const cut = dis.loseAnswers();
    await sleep(50);
    for (let i = 0; i < 10; i++) void keylessOne();
    await cut;
  };

  const chaos = (async () => {
    const plan = [
      () => dis.splitBrain(),
      answersLostDuringIntake,
      () => dis.participantOutage(),
      answersLostDuringIntake,
      () => dis.databaseFaults(),
      answersLostDuringIntake,
    ];
    for (let round = 0; plan.length > 0; round++) {
      await sleep(ctx.short ? 700 : 1_000);
      if (round % 3 === 2) await plan.shift()!();
      else await dis.killOne(round % 4 === 1 ? 'bff' : 'orchestrator');
    }
    await dis.restarted();
  })();

  // The operator: cancels, aimed two times in three at a saga that may still run, else at one that just ended.
  const orders: Promise<OrderRecord>[] = [];
  const operator = (async () => {
    for (let n = 0; storming; n++) {
      await sleep(ctx.short ? 400 : 250);
      const ended = terminal.seen();
      const target = n % 3 === 2 ? ended[ended.length - 1 - (n % Math.max(1, Math.min(5, ended.length)))] : started[started.length - 1 - Math.floor(Math.random() * Math.min(30, started.length))];
      if (target === undefined) continue;
      orders.push(operatorOrder(cl.liveBffs, ctx.token, target, 'cancelar', { motivo: 'caos: el cliente se arrepintió' }, `caos-cancelar-${n}`));
    }
  })();

  // Sagas with a key, spread over the storm rather than all at its start.
  const paceMs = ctx.short ? 30_000 / size.sagas : 50_000 / size.sagas;
  await runPool(size.sagas, size.concurrency, async (i) => {
    await sleep(i * paceMs - (Date.now() - t0));
    const { body } = ledger.request('storm', i, Ledger.kindOf(i));
    const { sagaId } = await postWithKey(cl.liveBffs, ctx.route, `storm-${i}`, body, ledger, i);
    started.push(sagaId);
  });
  await chaos;
  storming = false;
  await Promise.all([keyless, operator]);
  const sent = await Promise.all(orders);
  const records = await Promise.all(noKey);

  const decided = sent.filter((o) => o.resultado !== null);
  ledger.note(
    'storm',
    `operator cancels: ${sent.length} sent (${decided.filter((o) => o.resultado === 'aceptada').length} accepted, ` +
      `${decided.filter((o) => o.resultado === 'rechazada').length} refused, ${sent.length - decided.length} undecided), ` +
      `${sent.reduce((n, o) => n + o.sends - 1, 0)} sent again`,
  );
  const unknown = records.reduce((n, r) => n + r.unknown, 0);
  const lost = records.reduce((n, r) => n + r.answers.filter((a) => a.startsWith('sin respuesta (lost')).length, 0);
  ledger.note(
    'storm',
    `without a key: ${records.length} requests, ${records.reduce((n, r) => n + r.posts, 0)} POSTs; ${unknown} answered 503 resultado_desconocido ` +
      `(${records.reduce((n, r) => n + r.unknownWithId, 0)} naming the saga), ${lost} got no answer`,
  );
  ledger.checks.push(ordersDecided(sent), keylessOnce(records));
}

/** O1: every operator order sent while processes died was decided, and the decision told is the one audited. */
function ordersDecided(orders: OrderRecord[]): Check {
  return {
    name: 'O1',
    description: 'operator orders sent under faults are decided once, and answered as audited',
    async run(query) {
      const rows = await query<{ id: string; resultado: string }>('select id, resultado from saga_operaciones where id = any($1::text[])', [
        orders.map((o) => o.key),
      ]);
      const audited = new Map(rows.map((r) => [r.id, r.resultado]));
      const violations: string[] = [];
      for (const o of orders) {
        const a = audited.get(o.key);
        if (o.resultado === null) violations.push(`${o.key} on ${o.sagaId}: no decision within its bound (${a ?? 'not audited'})`);
        else if (a !== o.resultado) violations.push(`${o.key} on ${o.sagaId}: answered ${o.resultado}, audited ${a ?? 'nothing'}`);
      }
      return { checked: orders.length, violations };
    },
  };
}

/**
 * S8: a client without an Idempotency-Key that follows the README (ask for the
 * saga a 503 resultado_desconocido names; after no answer at all, look its
 * reference up before posting again) gets exactly one saga per request, and
 * is never told a bare 500.
 */
function keylessOnce(records: KeylessRecord[]): Check {
  return {
    name: 'S8',
    description: 'POSTs without a key, retried as the README says: one saga each, ambiguous answers name the saga',
    async run(query) {
      const rows = await query<{ ref: string; n: number }>(
        `select datos->'pago'->>'referencia_pago' as ref, count(*)::int as n from saga_log
         where datos->'pago'->>'referencia_pago' = any($1::text[]) group by 1`,
        [records.map((r) => r.ref)],
      );
      const count = new Map(rows.map((r) => [r.ref, r.n]));
      const violations: string[] = [];
      for (const r of records) {
        const n = count.get(r.ref) ?? 0;
        if (n !== 1) violations.push(`${r.ref}: ${n} sagas after ${r.posts} POSTs (${r.answers.join('; ')})`);
        if (r.sagaId === null) violations.push(`${r.ref}: the client never learnt its saga (${r.answers.join('; ')})`);
        if (r.otherServerErrors > 0) violations.push(`${r.ref}: ${r.otherServerErrors} answers 5xx other than 503`);
        if (r.unknown > r.unknownWithId) violations.push(`${r.ref}: ${r.unknown - r.unknownWithId} resultado_desconocido without the saga id`);
      }
      return { checked: records.length, violations };
    },
  };
}
