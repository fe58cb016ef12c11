// GET /saga/{saga_id}/stream: a saga's status as server-sent events. The first
// event is the status at once; another follows each time the saga changes (the
// writer's per-transition NOTIFY, through SagaChanges), until the client goes
// away. Like the other contract reads, it needs a token only with
// AUTH_CONTRATO=on; the dashboard reads it with fetch, so it can send one.
//
// Streams are bounded (issue 17: one client held 3,000 open and slowed every
// other request): at most SSE_MAX_PER_CLIENT per remote address (429 past it)
// and SSE_MAX_TOTAL per process (503 past it), both with Retry-After; and a
// client that does not read its stream is dropped once MAX_UNREAD_BYTES wait
// for it. A closed stream gives back its slot, its subscription and its timer.
import type Router from '@koa/router';
import { z } from 'zod';
import type { SagaQueries } from '../persistence/saga-queries.js';
import { HttpError, notFound } from './errors.js';
import { sagaIdParam } from './params.js';
import { CONTRACT_READ, route, type Guard, type RouteSpec } from './route-spec.js';
import type { SagaChanges } from '../cluster/saga-changes.js';
import { errorResponse, sagaIdParams } from './schemas.js';

/** Bytes written to a stream and not yet taken by its client, past which the client is dropped. */
export const MAX_UNREAD_BYTES = 1024 * 1024;

/** The open streams of a process, per client and in all. */
export class StreamLimits {
  private total = 0;
  private readonly byClient = new Map<string, number>();
  /** Streams refused, by which bound (sse_streams_refused_total). */
  readonly refusals = { cliente: 0, total: 0 };
  constructor(
    readonly perClient: number,
    readonly max: number,
  ) {}

  /** Takes a slot for `client`, or says which bound refused it. */
  open(client: string): 'ok' | 'cliente' | 'total' {
    const mine = this.byClient.get(client) ?? 0;
    if (mine >= this.perClient) {
      this.refusals.cliente += 1;
      return 'cliente';
    }
    if (this.total >= this.max) {
      this.refusals.total += 1;
      return 'total';
    }
    this.total += 1;
    this.byClient.set(client, mine + 1);
    return 'ok';
  }

  close(client: string): void {
    this.total = Math.max(0, this.total - 1);
    const left = (this.byClient.get(client) ?? 0) - 1;
    if (left > 0) this.byClient.set(client, left);
    else this.byClient.delete(client);
  }

  /** Streams open now (sse_streams_open). */
  count(): number {
    return this.total;
  }

  /** Clients with a stream open now. */
  clients(): number {
    return this.byClient.size;
  }
}

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
    429: errorResponse('Este cliente ya tiene abiertos SSE_MAX_PER_CLIENT flujos (con Retry-After)'),
    503: errorResponse('El proceso ya tiene abiertos SSE_MAX_TOTAL flujos (con Retry-After)'),
  },
};

export function mountSagaStream(
  router: Router,
  guard: Guard,
  deps: {
    queries: Pick<SagaQueries, 'status'>;
    changes: Pick<SagaChanges, 'subscribe' | 'watch'>;
    heartbeatMs?: number;
    limits?: StreamLimits;
  },
): void {
  const limits = deps.limits ?? new StreamLimits(32, 1_000);
  route(router, guard, sagaStreamSpec, async (ctx) => {
    const sagaId = sagaIdParam(ctx);
    const first = await deps.queries.status(sagaId);
    if (first === null) throw notFound(`SAGA ${sagaId} no encontrada`);
    const client = ctx.req.socket.remoteAddress ?? '';
    const slot = limits.open(client);
    if (slot === 'cliente') {
      throw new HttpError(429, 'demasiadas_conexiones', `Este cliente ya tiene ${limits.perClient} flujos abiertos`, {}, { 'Retry-After': '5' });
    }
    if (slot === 'total') {
      throw new HttpError(503, 'sobrecargado', 'Demasiados flujos abiertos; reintente en un momento', {}, { 'Retry-After': '5' });
    }

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
    /** Writes `text`, or drops a client that leaves more than MAX_UNREAD_BYTES unread. */
    const send = (text: string) => {
      if (stream.writableLength > MAX_UNREAD_BYTES) close();
      else stream.write(text);
    };

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
            send(`event: estado\ndata: ${text}\n\n`);
          }
        } while (again && !closed);
      } finally {
        reading = false;
      }
    };
    // A change (or a reconnection of the listener, null) reads the status again;
    // subscribed after the first read, so one read more covers a change in between.
    // The watch makes the writer tell every change of this saga, not only its end;
    // once it is recorded, one read more covers a change before it.
    let unwatch = () => undefined as void;
    void deps.changes.watch(sagaId).then((stop) => {
      if (closed) stop();
      else {
        unwatch = stop;
        void refresh();
      }
    });
    const unsubscribe = deps.changes.subscribe(sagaId, () => void refresh());
    void refresh();
    const heartbeat = setInterval(() => send(': ping\n\n'), deps.heartbeatMs ?? 15_000);
    function close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      unsubscribe();
      unwatch();
      limits.close(client);
      // A client that does not read is not waited for: its buffered bytes go with the socket.
      if (stream.writableLength > MAX_UNREAD_BYTES) stream.destroy();
      else stream.end();
    }
    ctx.req.once('close', close);
    ctx.res.once('close', close);
    // A client that left while its saga was being read has no close event to come: give its slot back now.
    if (ctx.req.socket.destroyed) close();
  });
}
