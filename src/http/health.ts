import type { Context } from 'koa';
import { pingDatabase, type Database } from '../persistence/database.js';

/** GET /health: 200 when the database answers, 503 when it does not. */
export function healthHandler(service: string, db: Database) {
  return async (ctx: Context): Promise<void> => {
    const ok = await pingDatabase(db);
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'healthy' : 'unhealthy', service, database: ok ? 'ok' : 'error' };
  };
}
