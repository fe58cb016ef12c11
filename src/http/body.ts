// Reading a JSON request body, defensively. Before any handler runs:
//  - only `application/json` is accepted (415 otherwise): a plain cross-site
//    form or text POST cannot start sagas or change anything; and only in
//    UTF-8: another declared charset is a 415, bytes that are not UTF-8 a 400
//    (they would otherwise be stored as U+FFFD, `Campa\ufffda`);
//  - the body is limited in size (413), and the bodies being read at once
//    share a byte budget (503 with Retry-After past it), so a flood of large
//    bodies cannot take the process's memory;
//  - malformed JSON is a 400, JSON nested deeper than MAX_DEPTH is a 400 (it
//    would overflow the stack of whatever walks it later), and so is text
//    PostgreSQL cannot store (NUL, a lone UTF-16 surrogate), naming the field.
import type { Context } from 'koa';
import { HttpError, type FieldProblem } from './errors.js';
import { hasUnstorable } from '../persistence/storable.js';

export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_DEPTH = 32;

/** Why a body was not read: the process's budget was full, its client's share was, or it came too slowly. */
export type BodyRefusal = 'presupuesto' | 'cliente' | 'plazo';

export interface BodyBudgetOptions {
  /**
   * The most bytes one client (one remote address) may hold of the budget at
   * once (BODY_BUDGET_PER_CLIENT_MB); past it, that client gets 429 while the
   * others still get in. Absent: no share, one client may take it all.
   */
  perClientBytes?: number;
  /**
   * How long a body may take to arrive, from its first byte read
   * (BODY_READ_TIMEOUT_MS); past it, 408 and the connection is closed, so a
   * client that sends a byte every few seconds cannot hold its share for ever.
   */
  readTimeoutMs?: number;
}

/**
 * Bytes of request bodies being read at once, across the process, and for each
 * client. 66 slow uploads of 1 MB from one address, a byte every 8 s, held the
 * whole 64 MB budget for as long as they liked, and every other client's POST
 * was a 503: each client now has a share, and each body a read deadline.
 */
export class BodyBudget {
  private used = 0;
  private most = 0;
  private readonly byClient = new Map<string, number>();
  /** Bodies refused because the process's budget was full (503). */
  refused = 0;
  /** Bodies refused or cut, by why (http_bodies_refused_total). */
  readonly refusals: Record<BodyRefusal, number> = { presupuesto: 0, cliente: 0, plazo: 0 };
  constructor(
    readonly limitBytes: number,
    readonly opts: BodyBudgetOptions = {},
  ) {}

  /** Reserves `bytes` for `client`; false when either the budget or the client's share is full. */
  take(bytes: number, client = ''): boolean {
    return this.admit(bytes, client) === 'ok';
  }

  /** Reserves `bytes` for `client`, or says which bound refused them. */
  admit(bytes: number, client = ''): 'ok' | 'presupuesto' | 'cliente' {
    const mine = this.byClient.get(client) ?? 0;
    if (this.opts.perClientBytes !== undefined && mine + bytes > this.opts.perClientBytes) {
      this.refusals.cliente += 1;
      return 'cliente';
    }
    if (this.used + bytes > this.limitBytes) {
      this.refused += 1;
      this.refusals.presupuesto += 1;
      return 'presupuesto';
    }
    this.used += bytes;
    this.byClient.set(client, mine + bytes);
    this.most = Math.max(this.most, this.used);
    return 'ok';
  }

  /** The most bytes ever held at once. */
  peak(): number {
    return this.most;
  }

  give(bytes: number, client = ''): void {
    this.used = Math.max(0, this.used - bytes);
    const left = (this.byClient.get(client) ?? 0) - bytes;
    if (left > 0) this.byClient.set(client, left);
    else this.byClient.delete(client);
  }

  inUse(): number {
    return this.used;
  }

  /** Bytes `client` holds now. */
  heldBy(client: string): number {
    return this.byClient.get(client) ?? 0;
  }
}

/** The defaults of BODY_BUDGET_MB, BODY_BUDGET_PER_CLIENT_MB and BODY_READ_TIMEOUT_MS. */
export const DEFAULT_BODY_BUDGET = { totalBytes: 64 * 1024 * 1024, perClientBytes: 8 * 1024 * 1024, readTimeoutMs: 10_000 };

/**
 * The budget of apps given none (the reference participants): 64 MB of bodies
 * being read, each within 10 s, with no per-client share, since their one
 * client is the orchestrator. The BFF and the orchestrator get theirs from the
 * configuration (src/roles.ts), with the share.
 */
export const defaultBodyBudget = new BodyBudget(DEFAULT_BODY_BUDGET.totalBytes, { readTimeoutMs: DEFAULT_BODY_BUDGET.readTimeoutMs });

export async function readJsonBody(
  ctx: Context,
  opts: { limit?: number; budget?: BodyBudget } = {},
): Promise<unknown> {
  const limit = opts.limit ?? MAX_BODY_BYTES;
  const budget = opts.budget ?? defaultBodyBudget;
  const declared = Number(ctx.get('content-length') || '0');
  const chunked = ctx.get('transfer-encoding') !== '';
  if (declared === 0 && !chunked) return undefined;
  if (!isJson(ctx.get('content-type'))) {
    throw new HttpError(415, 'tipo_de_contenido_no_soportado', 'El cuerpo debe ser JSON (Content-Type: application/json)');
  }
  const charset = charsetOf(ctx.get('content-type'));
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HttpError(415, 'tipo_de_contenido_no_soportado', `El cuerpo debe ser JSON en UTF-8, no ${charset}`);
  }
  if (declared > limit) throw tooLarge(limit);
  // A chunked body of unknown length reserves the most it may be.
  const reserved = chunked && declared === 0 ? limit : declared;
  const client = ctx.req.socket.remoteAddress ?? '';
  const admitted = budget.admit(reserved, client);
  if (admitted === 'cliente') {
    ctx.set('Connection', 'close');
    throw new HttpError(
      429,
      'demasiadas_solicitudes',
      'Este cliente ya envía demasiados cuerpos a la vez; reintente cuando terminen',
      {},
      { 'Retry-After': '1' },
    );
  }
  if (admitted === 'presupuesto') {
    ctx.set('Connection', 'close');
    throw new HttpError(503, 'sobrecargado', 'Demasiadas solicitudes en curso; reintente en un momento', {}, { 'Retry-After': '1' });
  }
  let text: string;
  try {
    text = await readText(ctx, limit, budget.opts.readTimeoutMs, () => (budget.refusals.plazo += 1));
  } finally {
    budget.give(reserved, client);
  }
  if (text.trim() === '') return undefined;
  if (depthOf(text) > MAX_DEPTH) {
    throw new HttpError(400, 'json_invalido', `El JSON anida más de ${MAX_DEPTH} niveles`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'json_invalido', 'El cuerpo no es JSON válido');
  }
  const problems = unstorableFields(value);
  if (problems.length > 0) throw new HttpError(400, 'validacion', problems);
  return value;
}

const isJson = (contentType: string) => /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType.trim());

/** The charset parameter of a Content-Type, lower-cased and unquoted; undefined when there is none. */
function charsetOf(contentType: string): string | undefined {
  const m = /;\s*charset\s*=\s*("?)([^";\s]*)\1/i.exec(contentType);
  return m === null ? undefined : m[2]!.toLowerCase();
}

/** Decodes UTF-8, refusing bytes that are not (JSON is UTF-8: RFC 8259, section 8.1). */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The body as bytes, at most `limit` of them, all within `timeoutMs` (else a 408 and the connection closed). */
async function readText(ctx: Context, limit: number, timeoutMs: number | undefined, onTimeout: () => void): Promise<string> {
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const req = ctx.req;
    let size = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err === undefined) resolve();
      else {
        // Read nothing more: the client is told at once and the socket closed after the answer.
        ctx.set('Connection', 'close');
        req.pause();
        reject(err);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) done(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    // Closed before its end: the client left (its answer goes nowhere, but its share comes back).
    const onClose = () => done(new HttpError(400, 'solicitud_invalida', 'El cliente cerró la conexión antes de enviar el cuerpo'));
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            onTimeout();
            done(new HttpError(408, 'tiempo_agotado', `El cuerpo no llegó completo en ${timeoutMs} ms`));
          }, timeoutMs);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
    if (req.destroyed) onClose();
  });
  try {
    return utf8.decode(Buffer.concat(chunks));
  } catch {
    throw new HttpError(400, 'json_invalido', 'El cuerpo no es texto UTF-8 válido');
  }
}

/** The deepest nesting of arrays and objects in JSON text, counted without parsing it. */
export function depthOf(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) max = Math.max(max, ++depth);
    else if (c === 125 || c === 93) depth--;
  }
  return max;
}

/** True when `s` holds a character PostgreSQL text cannot store (one definition, with storableText). */
export { hasUnstorable };

/** Every field (or key) of `value` holding text PostgreSQL cannot store. */
export function unstorableFields(value: unknown, path = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const mensaje = 'contiene un carácter no permitido (NUL o un sustituto UTF-16 suelto)';
  if (typeof value === 'string') {
    if (hasUnstorable(value)) problems.push({ campo: path || '(cuerpo)', mensaje });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => problems.push(...unstorableFields(v, path === '' ? String(i) : `${path}.${i}`)));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const at = path === '' ? k : `${path}.${k}`;
      if (hasUnstorable(k)) problems.push({ campo: at, mensaje: 'el nombre del campo contiene un carácter no permitido' });
      problems.push(...unstorableFields(v, at));
    }
  }
  return problems;
}

const tooLarge = (limit: number) =>
  new HttpError(413, 'cuerpo_demasiado_grande', `El cuerpo supera el máximo de ${limit} bytes`);
