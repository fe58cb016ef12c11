import type Router from '@koa/router';
import { pingDatabase, type Database } from '../persistence/database.js';

/** GET /health: 200 when the database answers, 503 when it does not. */
export function healthRoute(router: Router, service: string, db: Database): void {
  router.get('/health', async (ctx) => {
    const ok = await pingDatabase(db);
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'healthy' : 'unhealthy', service, database: ok ? 'ok' : 'error' };
  });
}
