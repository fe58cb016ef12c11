// A small participant service in memory, for saga types the reference services
// do not serve (a test's own participants): resources created by POST with the
// id the orchestrator chooses, undone by PATCH <id>/<compensation>, answered
// once per Idempotency-Key, and a tombstone for an id undone before it was
// created (its late create is refused), like the reference services.
import Koa from 'koa';
import Router from '@koa/router';
import { readJsonBody } from '../../src/http/body.js';
import { listen, type RunningServer } from '../../src/http/server.js';

export interface ResourceServiceOptions {
  /** Collection path, e.g. /medios. */
  basePath: string;
  /** Last segment of the compensation path, e.g. liberar. */
  compensation: string;
}

export interface ResourceService {
  url: string;
  /** Ids of the resources live now (created and not undone). */
  live(): string[];
  /** Every effect applied, in order: [id, 'crear' | 'deshacer']. */
  effects: [string, string][];
  /** The next `n` creates answer this status (e.g. 422 to refuse, 503 to fail). */
  failNext(status: number, n?: number): void;
  close(): Promise<void>;
}

export async function startResourceService(opts: ResourceServiceOptions): Promise<ResourceService> {
  const resources = new Map<string, { estado: 'ACTIVO' | 'DESHECHO'; body: unknown }>();
  const tombstones = new Set<string>();
  const answered = new Map<string, { status: number; body: unknown }>();
  const effects: [string, string][] = [];
  let failures: number[] = [];
  const router = new Router();
  const once = (ctx: Koa.Context, act: () => { status: number; body: unknown }) => {
    const key = ctx.get('idempotency-key');
    const seen = key === '' ? undefined : answered.get(key);
    const answer = seen ?? act();
    if (key !== '' && answer.status < 500) answered.set(key, answer);
    ctx.status = answer.status;
    ctx.body = answer.body;
  };
  router.post(opts.basePath, async (ctx) => {
    const body = (await readJsonBody(ctx)) as { id: string };
    once(ctx, () => {
      const status = failures.shift();
      if (status !== undefined) return { status, body: { error: 'falla', detalle: `respuesta ${status} de prueba` } };
      if (tombstones.has(body.id)) return { status: 409, body: { error: 'anulado', detalle: 'ya fue deshecho' } };
      if (!resources.has(body.id)) {
        resources.set(body.id, { estado: 'ACTIVO', body });
        effects.push([body.id, 'crear']);
      }
      return { status: 201, body: { id: body.id, estado: 'ACTIVO' } };
    });
  });
  router.patch(`${opts.basePath}/:id/${opts.compensation}`, (ctx) => {
    const id = ctx.params.id!;
    once(ctx, () => {
      const r = resources.get(id);
      if (r === undefined) {
        tombstones.add(id);
        return { status: 404, body: { error: 'no_encontrado', detalle: id } };
      }
      if (r.estado === 'ACTIVO') {
        r.estado = 'DESHECHO';
        effects.push([id, 'deshacer']);
      }
      return { status: 200, body: { id, estado: r.estado } };
    });
  });
  const app = new Koa();
  app.use(router.routes());
  const server: RunningServer = await listen(app, 0);
  return {
    url: server.url,
    live: () => [...resources.entries()].filter(([, r]) => r.estado === 'ACTIVO').map(([id]) => id),
    effects,
    failNext: (status, n = 1) => {
      failures = [...failures, ...Array.from({ length: n }, () => status)];
    },
    close: () => server.close(),
  };
}
