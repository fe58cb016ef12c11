// Idempotency-Key handling shared by the participant services, each with its own
// table `<svc>_idempotencia`. The key row is inserted first, in the same
// transaction as the effect and its stored answer: a concurrent request with the
// same key blocks on the unique index until that transaction ends, then reads the
// committed answer. Answers below 500 are stored; a 5xx rolls everything back, so
// a retry performs the effect afresh.
import type { Context } from 'koa';
import type pg from 'pg';
import { HttpError } from '../../http/errors.js';
import { canonicalJson, sha256 } from './hash.js';
import { inTransaction } from './transaction.js';

/** A finished HTTP answer, as stored and replayed. */
export interface Answer {
  status: number;
  body: unknown;
}

/** What the effect of a request does inside the request's transaction. */
export type Effect = (client: pg.PoolClient) => Promise<Answer>;

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
export const REPLAYED_HEADER = 'Idempotent-Replayed';
const MAX_KEY_LENGTH = 255;

export interface IdempotentRequest {
  /** The Idempotency-Key, or undefined when the client sent none. */
  key: string | undefined;
  method: string;
  path: string;
  body: unknown;
}

interface StoredRow {
  request_hash: string;
  status: number | null;
  respuesta: unknown;
}

/**
 * Runs `effect` at most once per key. Without a key the effect simply runs in a
 * transaction. An HttpError below 500 thrown by the effect becomes the stored
 * answer (its partial writes undone); any other error rolls back and propagates.
 */
export async function runIdempotent(
  pool: pg.Pool,
  table: string,
  request: IdempotentRequest,
  effect: Effect,
): Promise<Answer & { replayed: boolean }> {
  if (request.key === undefined) {
    const answer = await inTransaction(pool, effect);
    return { ...answer, replayed: false };
  }
  const key = request.key;
  const requestHash = sha256(`${request.method} ${request.path}\n${canonicalJson(request.body)}`);
  return inTransaction(pool, async (client) => {
    const inserted = await client.query(
      `insert into ${table} (clave, request_hash, metodo, ruta) values ($1, $2, $3, $4)
       on conflict (clave) do nothing returning clave`,
      [key, requestHash, request.method, request.path],
    );
    if (inserted.rowCount === 0) {
      // The first request with this key has committed (we waited for it): replay its answer.
      const stored = await client.query<StoredRow>(
        `select request_hash, status, respuesta from ${table} where clave = $1`,
        [key],
      );
      const row = stored.rows[0];
      if (row === undefined || row.status === null) {
        // Cannot happen: the key row and its answer are committed together.
        throw new Error(`idempotency row ${table}/${key} without an answer`);
      }
      if (row.request_hash !== requestHash) {
        return {
          status: 422,
          body: {
            error: 'idempotency_key_reutilizada',
            detalle: `La clave ${IDEMPOTENCY_HEADER} ya se usó con otra solicitud`,
          },
          replayed: false,
        };
      }
      return { status: row.status, body: row.respuesta, replayed: true };
    }

    await client.query('savepoint efecto');
    let answer: Answer;
    try {
      answer = await effect(client);
    } catch (err) {
      if (!(err instanceof HttpError) || err.status >= 500) throw err;
      await client.query('rollback to savepoint efecto');
      answer = { status: err.status, body: { error: err.code, detalle: err.detalle } };
    }
    if (answer.status >= 500) {
      // Not stored: the throw rolls back the key row too, so a retry runs the effect again.
      throw new HttpError(answer.status, 'interno', 'Error interno del servidor');
    }
    await client.query(`update ${table} set status = $2, respuesta = $3 where clave = $1`, [
      key,
      answer.status,
      JSON.stringify(answer.body),
    ]);
    return { ...answer, replayed: false };
  });
}

/** Reads the Idempotency-Key header of a Koa request; an empty header counts as absent. */
export function idempotencyKeyOf(ctx: Context): string | undefined {
  const key = ctx.get(IDEMPOTENCY_HEADER).trim();
  if (key === '') return undefined;
  if (key.length > MAX_KEY_LENGTH) {
    throw new HttpError(400, 'validacion', [
      { campo: IDEMPOTENCY_HEADER, mensaje: `No puede superar ${MAX_KEY_LENGTH} caracteres` },
    ]);
  }
  return key;
}

/** Runs an effect under the request's Idempotency-Key and writes its answer to `ctx`. */
export async function respondIdempotent(
  ctx: Context,
  pool: pg.Pool,
  table: string,
  body: unknown,
  effect: Effect,
): Promise<void> {
  const answer = await runIdempotent(
    pool,
    table,
    { key: idempotencyKeyOf(ctx), method: ctx.method, path: ctx.path, body },
    effect,
  );
  if (answer.replayed) ctx.set(REPLAYED_HEADER, 'true');
  ctx.status = answer.status;
  ctx.body = answer.body;
}
