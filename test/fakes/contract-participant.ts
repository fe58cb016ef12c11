// A participant in memory whose every obligation of the participant contract
// (docs/participant-contract.md) can be switched off, one at a time, to see
// `npm run test:participant` catch it. With no switch off it keeps the contract:
// answers stored per Idempotency-Key and replayed, a tombstone for an id undone
// before it was created, a 400 that does nothing, and prompt answers.
import Koa from 'koa';
import Router from '@koa/router';
import { readJsonBody } from '../../src/http/body.js';
import { listen, type RunningServer } from '../../src/http/server.js';

export interface ContractParticipantOptions {
  /** Collection path, e.g. /api/campaigns. */
  basePath: string;
  /** Last segment of the compensation path, e.g. cancel. */
  compensation: string;
  /** Body members whose absence is refused with a 400. */
  required: string[];
  /** Keeps a tombstone for an id compensated before its create (default true). */
  tombstones?: boolean;
  /** Replays the first answer to a repeated Idempotency-Key (default true); off, every request runs afresh. */
  replay?: boolean;
  /** A refused (400) create still makes the resource (default false). */
  refusalLeavesEffect?: boolean;
  /** Waits this long before every answer (default 0). */
  delayMs?: number;
}

type Answer = { status: number; body: unknown };

export async function startContractParticipant(opts: ContractParticipantOptions): Promise<{ url: string; close(): Promise<void> }> {
  const resources = new Map<string, 'ACTIVO' | 'DESHECHO'>();
  const tombstones = new Set<string>();
  const answered = new Map<string, Answer>();
  let executions = 0;
  const router = new Router();
  const respond = async (ctx: Koa.Context, act: () => Answer) => {
    if ((opts.delayMs ?? 0) > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
    const key = ctx.get('idempotency-key');
    const stored = opts.replay === false || key === '' ? undefined : answered.get(key);
    const answer = stored ?? act();
    if (key !== '' && answer.status < 500 && !answered.has(key)) answered.set(key, answer);
    ctx.status = answer.status;
    ctx.body = answer.body;
  };
  router.post(opts.basePath, async (ctx) => {
    const body = (await readJsonBody(ctx)) as Record<string, unknown>;
    const id = String(body.id);
    await respond(ctx, () => {
      executions += 1;
      const missing = opts.required.filter((m) => body[m] === undefined);
      if (missing.length > 0) {
        if (opts.refusalLeavesEffect === true) resources.set(id, 'ACTIVO');
        return { status: 400, body: { error: 'validacion', detalle: `faltan ${missing.join(', ')}` } };
      }
      if (opts.tombstones !== false && tombstones.has(id)) return { status: 409, body: { error: 'anulado', detalle: id } };
      if (!resources.has(id)) resources.set(id, 'ACTIVO');
      // `ejecucion` differs on every run of the effect: a run that was not a replay shows.
      return { status: 201, body: { id, estado: resources.get(id), ejecucion: executions } };
    });
  });
  router.patch(`${opts.basePath}/:id/${opts.compensation}`, async (ctx) => {
    const id = ctx.params.id!;
    await respond(ctx, () => {
      executions += 1;
      if (!resources.has(id)) {
        if (opts.tombstones !== false) tombstones.add(id);
        return { status: 404, body: { error: 'no_encontrado', detalle: id } };
      }
      resources.set(id, 'DESHECHO');
      return { status: 200, body: { id, estado: 'DESHECHO', ejecucion: executions } };
    });
  });
  const app = new Koa();
  app.use(router.routes());
  const server: RunningServer = await listen(app, 0);
  return { url: server.url, close: () => server.close() };
}
