// Reading a JSON request body, defensively. Before any handler runs:
//  - only `application/json` is accepted (415 otherwise): a plain cross-site
//    form or text POST cannot start sagas or change anything;
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

/** Bytes of request bodies being read at once, across the process. */
export class BodyBudget {
  private used = 0;
  private most = 0;
  /** Bodies refused because the budget was full. */
  refused = 0;
  constructor(readonly limitBytes: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) {
      this.refused += 1;
      return false;
    }
    this.used += bytes;
    this.most = Math.max(this.most, this.used);
    return true;
  }

  /** The most bytes ever held at once. */
  peak(): number {
    return this.most;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  inUse(): number {
    return this.used;
  }
}

/** A process's default budget: 64 MB of bodies being read, then new bodies wait outside. */
export const defaultBodyBudget = new BodyBudget(64 * 1024 * 1024);

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
  if (declared > limit) throw tooLarge(limit);
  // A chunked body of unknown length reserves the most it may be.
  const reserved = chunked && declared === 0 ? limit : declared;
  if (!budget.take(reserved)) {
    ctx.set('Connection', 'close');
    throw new HttpError(503, 'sobrecargado', 'Demasiadas solicitudes en curso; reintente en un momento', {}, { 'Retry-After': '1' });
  }
  let text: string;
  try {
    text = await readText(ctx, limit);
  } finally {
    budget.give(reserved);
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

async function readText(ctx: Context, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      // Drain nothing more: the client is told at once and the socket closed after the answer.
      ctx.set('Connection', 'close');
      throw tooLarge(limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
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
