// What the three reference participants have in common: a resource created by
// POST (with an id the client may choose), read by GET, and compensated by an
// idempotent PATCH that, for an id never seen, leaves a tombstone so that a late
// create of that id is refused. Each service describes its table and rules in a
// ResourceSpec; the routes and their transactions live here.
import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type pg from 'pg';
import type { z } from 'zod';
import { readJsonBody } from '../../http/body.js';
import type { Logger } from '../../log.js';
import { canonicalJson, sha256 } from './hash.js';
import { respondIdempotent, type Answer } from './idempotency.js';
import { isGuid, parseOrThrow } from './validation.js';

/** The columns every resource table has. */
export interface ResourceRow {
  id: string;
  estado: string;
  solicitud_hash: string;
}

export interface ResourceTables {
  recursos: string;
  /** Ids compensated before they were created: their create is refused. */
  anulados: string;
  idempotencia: string;
  /** Append-only log of every effect applied. */
  efectos: string;
}

/** A service's tables, named after its resources table as the participants migration creates them. */
export function resourceTables(recursos: string): ResourceTables {
  return { recursos, anulados: `${recursos}_anulados`, idempotencia: `${recursos}_idempotencia`, efectos: `${recursos}_efectos` };
}

export interface ResourceSpec<S extends z.ZodType<{ id?: string | null | undefined }>, R extends ResourceRow> {
  /** Service name, as in logs and /__stats. */
  servicio: string;
  /** The resource in messages, e.g. "campaña". */
  recurso: string;
  /** Collection path, e.g. "/api/campaigns". */
  basePath: string;
  /** Last path segment of the compensation, e.g. "cancel" or "revertir". */
  compensacion: string;
  tables: ResourceTables;
  estados: { creado: string; compensado: string };
  /** Timestamp column set by the compensation, e.g. "cancelado_en". */
  compensadoEn: string;
  schema: S;
  /** A business rule refusing the request (422), or undefined when it is accepted. */
  rejection(input: z.output<S>): string | undefined;
  /** Inserts the resource with estado `estados.creado` and returns its row. */
  insert(client: pg.PoolClient, id: string, input: z.output<S>, solicitudHash: string): Promise<R>;
  toJson(row: R): Record<string, unknown>;
}

export interface ResourceStats {
  creados: number;
  /** Resources compensated (cancelled or reverted). */
  cancelados: number;
  /** Ids compensated before being created: tombstones. */
  anulados: number;
}

const notFound = (recurso: string, id: string, extra = ''): Answer => ({
  status: 404,
  body: { error: 'no_encontrado', detalle: `No existe ${recurso} con id ${id}${extra}` },
});

/**
 * How a service recognises a request it has already applied. `recurso`: by the
 * resource id as well as by the Idempotency-Key, so a repeated create or undo
 * has no second effect, key or not. `clave`: by the Idempotency-Key only, as
 * many real payment APIs do: a create or undo repeated without the key (or
 * under another) is applied again, and the effect log shows it twice.
 */
export type Dedupe = 'recurso' | 'clave';

/** Serialises every create and compensation of one id (a transaction-scoped advisory lock). */
async function lockId(client: pg.PoolClient, table: string, id: string): Promise<void> {
  await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`${table}:${id.toLowerCase()}`]);
}

export class ResourceService<S extends z.ZodType<{ id?: string | null | undefined }>, R extends ResourceRow> {
  private readonly log: Logger;

  constructor(
    private readonly spec: ResourceSpec<S, R>,
    private readonly pool: pg.Pool,
    log: Logger,
    private readonly dedupe: Dedupe = 'recurso',
  ) {
    this.log = log.child({ servicio: spec.servicio });
  }

  get name(): string {
    return this.spec.servicio;
  }

  mount(router: Router): void {
    const { basePath, compensacion, tables } = this.spec;
    router.post(basePath, async (ctx) => {
      const raw = await readJsonBody(ctx);
      const input = parseOrThrow(this.spec.schema, raw);
      await respondIdempotent(ctx, this.pool, tables.idempotencia, raw, (client) =>
        this.create(client, input),
      );
    });
    router.get(`${basePath}/:id`, async (ctx) => {
      const answer = await this.get(ctx.params.id ?? '');
      ctx.status = answer.status;
      ctx.body = answer.body;
    });
    router.patch(`${basePath}/:id/${compensacion}`, async (ctx) => {
      const id = ctx.params.id ?? '';
      await respondIdempotent(ctx, this.pool, tables.idempotencia, undefined, (client) =>
        this.compensate(client, id),
      );
    });
  }

  async create(client: pg.PoolClient, input: z.output<S>): Promise<Answer> {
    const { spec } = this;
    const id = (input.id ?? randomUUID()).toLowerCase();
    // The fingerprint of the content: the id is what it is compared under.
    const solicitudHash = sha256(canonicalJson({ ...input, id: undefined }));

    await lockId(client, spec.tables.recursos, id);
    const tombstone = await client.query(`select 1 from ${spec.tables.anulados} where id = $1`, [id]);
    if (tombstone.rowCount !== 0) {
      this.log.warn({ id }, 'create refused: id was compensated before it was created');
      return anulado(spec.recurso, id);
    }
    const existing = await this.select(client, id);
    if (existing !== undefined) {
      // The same create again (a retry under another key, or none): the resource as it is.
      if (existing.estado === spec.estados.compensado) return anulado(spec.recurso, id);
      if (this.dedupe === 'clave') return this.applyAgain(client, id, 'creado_en', 'crear', 201);
      if (existing.solicitud_hash === solicitudHash) return { status: 200, body: spec.toJson(existing) };
      return {
        status: 409,
        body: { error: 'conflicto', detalle: `Ya existe ${spec.recurso} ${id} con otros datos` },
      };
    }

    const rejection = spec.rejection(input);
    if (rejection !== undefined) {
      this.log.info({ id, rejection }, 'create rejected');
      return { status: 422, body: { error: 'rechazado', detalle: rejection } };
    }
    const row = await spec.insert(client, id, input, solicitudHash);
    await this.recordEffect(client, id, 'crear');
    this.log.info({ id, sagaId: (input as { saga_id?: unknown }).saga_id }, `${spec.recurso} created`);
    return { status: 201, body: spec.toJson(row) };
  }

  async get(id: string): Promise<Answer> {
    if (!isGuid(id)) return notFound(this.spec.recurso, id);
    const row = await this.select(this.pool, id);
    return row === undefined ? notFound(this.spec.recurso, id) : { status: 200, body: this.spec.toJson(row) };
  }

  async compensate(client: pg.PoolClient, rawId: string): Promise<Answer> {
    const { spec } = this;
    // No resource can ever have a malformed id, so there is nothing to remember either.
    if (!isGuid(rawId)) return notFound(spec.recurso, rawId);
    const id = rawId.toLowerCase();

    await lockId(client, spec.tables.recursos, id);
    const row = await this.select(client, id, true);
    if (row === undefined) {
      await client.query(`insert into ${spec.tables.anulados} (id) values ($1) on conflict (id) do nothing`, [id]);
      this.log.warn({ id }, 'compensation of an unknown id: tombstone recorded');
      return notFound(spec.recurso, id, '; queda anulado y no podrá crearse');
    }
    if (row.estado === spec.estados.compensado) {
      return this.dedupe === 'clave' ? this.applyAgain(client, id, spec.compensadoEn, 'compensar', 200) : { status: 200, body: spec.toJson(row) };
    }
    const updated = await client.query<R>(
      `update ${spec.tables.recursos} set estado = $2, ${spec.compensadoEn} = now() where id = $1 returning *`,
      [id, spec.estados.compensado],
    );
    await this.recordEffect(client, id, 'compensar');
    this.log.info({ id }, `${spec.recurso} compensated`);
    return { status: 200, body: spec.toJson(updated.rows[0]!) };
  }

  /** Keyed only (`clave`): the same effect once more, as a service that does not look the resource up would. */
  private async applyAgain(client: pg.PoolClient, id: string, column: string, accion: 'crear' | 'compensar', status: number): Promise<Answer> {
    const updated = await client.query<R>(`update ${this.spec.tables.recursos} set ${column} = now() where id = $1 returning *`, [id]);
    await this.recordEffect(client, id, accion);
    this.log.info({ id, accion }, `${this.spec.recurso}: ${accion} applied again (no Idempotency-Key match)`);
    return { status, body: this.spec.toJson(updated.rows[0]!) };
  }

  private async recordEffect(client: pg.PoolClient, id: string, accion: 'crear' | 'compensar'): Promise<void> {
    await client.query(`insert into ${this.spec.tables.efectos} (recurso_id, accion) values ($1, $2)`, [id, accion]);
  }

  async stats(): Promise<ResourceStats> {
    const { tables, estados } = this.spec;
    const result = await this.pool.query<ResourceStats>(
      `select
         (select count(*)::int from ${tables.recursos}) as creados,
         (select count(*)::int from ${tables.recursos} where estado = $1) as cancelados,
         (select count(*)::int from ${tables.anulados}) as anulados`,
      [estados.compensado],
    );
    return result.rows[0]!;
  }

  private async select(db: pg.Pool | pg.PoolClient, id: string, forUpdate = false): Promise<R | undefined> {
    const result = await db.query<R>(
      `select * from ${this.spec.tables.recursos} where id = $1${forUpdate ? ' for update' : ''}`,
      [id],
    );
    return result.rows[0];
  }
}

function anulado(recurso: string, id: string): Answer {
  return {
    status: 409,
    body: { error: 'anulado', detalle: `${recurso} ${id} fue anulado por una compensación y no puede crearse` },
  };
}
