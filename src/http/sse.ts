// GET /saga/{saga_id}/stream: a saga's status as server-sent events. The first
// event is the status at once; another follows each time the saga changes (the
// writer's per-transition NOTIFY, through SagaChanges), until the client goes
// away. Like the other contract reads, it needs a token only with
// AUTH_CONTRATO=on; the dashboard reads it with fetch, so it can send one.
import type Router from '@koa/router';
import { z } from 'zod';
import type { SagaQueries } from '../persistence/saga-queries.js';
import { notFound } from './errors.js';
import { sagaIdParam } from './params.js';
import { CONTRACT_READ, route, type Guard, type RouteSpec } from './route-spec.js';
import type { SagaChanges } from '../cluster/saga-changes.js';
import { errorResponse, sagaIdParams } from './schemas.js';

export const sagaStreamSpec: RouteSpec = {
  method: 'GET',
  path: '/saga/{saga_id}/stream',
  summary: 'El estado de una SAGA en vivo (server-sent events)',
  description:
    'Un evento `estado` con el cuerpo de GET /saga/{saga_id}/status al conectar, y otro cada vez que cambia. ' +
    'Un comentario cada 15 s mantiene viva la conexión.',
  tag: 'Contrato',
  auth: CONTRACT_READ,
  params: sagaIdParams,
  responses: {
    200: { description: 'Un flujo text/event-stream', schema: z.string(), contentType: 'text/event-stream' },
    404: errorResponse('SAGA desconocida'),
  },
};

export function mountSagaStream(
  router: Router,
  guard: Guard,
  deps: { queries: SagaQueries; changes: Pick<SagaChanges, 'subscribe'>; heartbeatMs?: number },
): void {
  route(router, guard, sagaStreamSpec, async (ctx) => {
    const sagaId = sagaIdParam(ctx);
    const first = await deps.queries.status(sagaId);
    if (first === null) throw notFound(`SAGA ${sagaId} no encontrada`);

    // Written to the socket directly (headers set so far, CORS and X-Request-Id,
    // are kept): Koa would report a client that leaves as an error.
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.respond = false;
    ctx.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    const stream = ctx.res;

    let last = JSON.stringify(first);
    stream.write(`retry: 2000\nevent: estado\ndata: ${last}\n\n`);

    // One read at a time; a change during a read is read again after it.
    let reading = false;
    let again = false;
    let closed = false;
    const refresh = async (): Promise<void> => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          const view = await deps.queries.status(sagaId).catch(() => null);
          const text = view === null ? last : JSON.stringify(view);
          if (!closed && text !== last) {
            last = text;
            stream.write(`event: estado\ndata: ${text}\n\n`);
          }
        } while (again && !closed);
      } finally {
        reading = false;
      }
    };
    // A change (or a reconnection of the listener, null) reads the status again;
    // subscribed after the first read, so one read more covers a change in between.
    const unsubscribe = deps.changes.subscribe(sagaId, () => void refresh());
    void refresh();
    const heartbeat = setInterval(() => stream.write(': ping\n\n'), deps.heartbeatMs ?? 15_000);
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      unsubscribe();
      stream.end();
    };
    ctx.req.once('close', close);
    ctx.res.once('close', close);
  });
}
