// The two Koa apps of the reference participants: Campaigns on its own, and the
// Aeropartners app serving Payments and Reporting. Both use a pg.Pool directly,
// independent of the orchestrator's ORM, and each has its own fault rules.
import Router from '@koa/router';
import Koa from 'koa';
import type pg from 'pg';
import { jsonErrors } from '../../http/errors.js';
import type { Logger } from '../../log.js';
import { campaignSpec } from './campaigns.js';
import { FaultInjector, faultInjection } from './faults.js';
import { DEFAULT_PAGOS_MONTO_MAXIMO, paymentSpec } from './payments.js';
import { reportSpec } from './reporting.js';
import { ResourceService, type Dedupe, type ResourceStats } from './resources.js';

export interface ParticipantOptions {
  pool: pg.Pool;
  log: Logger;
  /** Serves /__faults and applies its rules; off in production. */
  faults: boolean;
  /** Payments above this amount are refused with a 422 (default 1 000 000). */
  pagosMontoMaximo?: number;
  /** How a repeated request is recognised (default `recurso`; see ResourceService). */
  dedupe?: Dedupe;
}

interface AnyService {
  name: string;
  mount(router: Router): void;
  stats(): Promise<ResourceStats>;
}

/** Campaigns: /api/campaigns, /health, /__stats and (with faults) /__faults. */
export function campaignsApp(opts: ParticipantOptions): Koa {
  const log = opts.log.child({ app: 'campaigns' });
  return participantApp('campaigns', opts, log, [new ResourceService(campaignSpec, opts.pool, log, opts.dedupe)]);
}

/** Payments and Reporting: /pagos, /reporting, /health, /__stats and (with faults) /__faults. */
export function aeropartnersApp(opts: ParticipantOptions): Koa {
  const log = opts.log.child({ app: 'aeropartners' });
  const montoMaximo = opts.pagosMontoMaximo ?? DEFAULT_PAGOS_MONTO_MAXIMO;
  return participantApp('aeropartners', opts, log, [
    new ResourceService(paymentSpec(montoMaximo), opts.pool, log, opts.dedupe),
    new ResourceService(reportSpec, opts.pool, log, opts.dedupe),
  ]);
}

function participantApp(name: string, opts: ParticipantOptions, log: Logger, services: AnyService[]): Koa {
  const app = new Koa();
  const router = new Router();

  router.get('/health', async (ctx) => {
    try {
      await opts.pool.query('select 1');
      ctx.body = { estado: 'ok', servicio: name };
    } catch (err) {
      log.warn({ err }, 'health check: database unreachable');
      ctx.status = 503;
      ctx.body = { error: 'no_disponible', detalle: 'La base de datos no responde' };
    }
  });
  router.get('/__stats', async (ctx) => {
    const stats: Record<string, ResourceStats> = {};
    for (const service of services) stats[service.name] = await service.stats();
    ctx.body = stats;
  });
  for (const service of services) service.mount(router);

  // Outermost, so that it sees the final status, error answers included.
  app.use(async (ctx, next) => {
    const started = performance.now();
    await next();
    log.debug(
      { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) },
      'request',
    );
  });
  app.use(jsonErrors(log));
  app.use(faultInjection(new FaultInjector(), opts.faults, log));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  return app;
}
