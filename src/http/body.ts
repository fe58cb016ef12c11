// A JSON body reader with a size limit: malformed JSON is a 400 and an
// oversized body a 413, both as JSON errors, before any handler runs.
import type { Context } from 'koa';
import { HttpError } from './errors.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export async function readJsonBody(ctx: Context, limit = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > limit) throw tooLarge(limit);
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
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'json_invalido', 'El cuerpo no es JSON válido');
  }
}

const tooLarge = (limit: number) =>
  new HttpError(413, 'cuerpo_demasiado_grande', `El cuerpo supera el máximo de ${limit} bytes`);
