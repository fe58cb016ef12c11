// Operator orders on their way to a saga's actor. An order is written to the
// saga log's mailbox (saga_ordenes) and announced to the saga's orchestrator;
// the actor decides it like any other message and commits the decision with
// its audit row (saga_operaciones). The requester then reads the decision. An
// operation id is used once: a repeat returns the first decision.
import { SAGA_ORDER_CHANNEL } from '../cluster/notifications.js';
import { orderData, type OperatorAction } from '../saga/operations.js';
import type { SagaChanges } from '../cluster/saga-changes.js';
import { isoSql, type Queryable } from '../persistence/sql.js';

export interface OrderRequest {
  operacionId: string;
  sagaId: string;
  accion: OperatorAction;
  quien: string;
  motivo: string;
  requestId: string | null;
  compensacion?: string;
  detenerPlazo?: boolean;
  version?: number;
}

export interface Decided {
  id: string;
  saga_id: string;
  accion: string;
  quien: string;
  motivo: string;
  fecha: string;
  resultado: 'aceptada' | 'rechazada';
  detalle: string | null;
}

export type Submitted =
  | { kind: 'notFound' }
  /** The operation id was used before for another saga or action. */
  | { kind: 'reused' }
  | { kind: 'decided'; operacion: Decided }
  | { kind: 'pending' };


const DECIDED_SQL = `select id, saga_id, accion, quien, motivo,
    ${isoSql('fecha')} as fecha, resultado, detalle
  from saga_operaciones where id = $1`;

export class OrderDesk {
  constructor(
    private readonly db: Queryable,
    private readonly changes: SagaChanges,
  ) {}

  /** Puts the order in the mailbox (once per operation id) and tells the saga's orchestrator. */
  async submit(req: OrderRequest): Promise<Submitted> {
    const seen = await this.seen(req);
    if (seen !== null) return seen;
    const datos = orderData(req);
    const { rows } = await this.db.query<{ shard: number }>(
      `with placed as (
         insert into saga_ordenes (id, saga_id, shard, accion, quien, motivo, datos, request_id, fecha_solicitud)
         select $1, l.id, l.shard, $3, $4, $5, $6, $7, now() from saga_log l
          where l.id = $2 and not exists (select 1 from saga_operaciones o where o.id = $1)
         on conflict (id) do nothing
         returning shard, saga_id)
       select shard, pg_notify($8, shard || ':' || saga_id) from placed`,
      [req.operacionId, req.sagaId, req.accion, req.quien, req.motivo, datos, req.requestId, SAGA_ORDER_CHANNEL],
    );
    if (rows.length > 0) return { kind: 'pending' };
    // Not placed: no such saga, or the same id arrived meanwhile.
    return (await this.seen(req)) ?? { kind: 'notFound' };
  }

  /** Waits at most `ms` for the order's decision; null if it is still pending then. */
  async decision(req: Pick<OrderRequest, 'operacionId' | 'sagaId'>, ms: number): Promise<Decided | null> {
    const until = Date.now() + ms;
    for (;;) {
      // Subscribed before reading, so a decision committed in between wakes us.
      const wait = this.changes.wait(req.sagaId, Math.min(500, Math.max(0, until - Date.now())));
      try {
        const { rows } = await this.db.query<Decided>(DECIDED_SQL, [req.operacionId]);
        if (rows[0] !== undefined) return rows[0];
        if (Date.now() >= until) return null;
        await wait.done;
      } finally {
        wait.cancel();
      }
    }
  }

  /** What is known of this operation id already: decided, pending, or used for something else. */
  private async seen(req: OrderRequest): Promise<Submitted | null> {
    const decided = await this.db.query<Decided>(DECIDED_SQL, [req.operacionId]);
    const d = decided.rows[0];
    if (d !== undefined) return d.saga_id === req.sagaId && d.accion === req.accion ? { kind: 'decided', operacion: d } : { kind: 'reused' };
    const pending = await this.db.query<{ saga_id: string; accion: string; shard: number }>(
      'select saga_id, accion, shard from saga_ordenes where id = $1',
      [req.operacionId],
    );
    const p = pending.rows[0];
    if (p === undefined) return null;
    return p.saga_id === req.sagaId && p.accion === req.accion ? { kind: 'pending' } : { kind: 'reused' };
  }
}
