// Request shapes are checked with zod; a mismatch is a 400 listing every field problem.
import type { z } from 'zod';
import { badRequest, type FieldProblem } from '../../http/errors.js';

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems: FieldProblem[] = parsed.error.issues.map((issue) => ({
    campo: issue.path.length > 0 ? issue.path.map(String).join('.') : '(cuerpo)',
    mensaje: issue.message,
  }));
  throw badRequest(problems);
}

/** Any 8-4-4-4-12 hex id, as PostgreSQL's uuid type accepts (no version check). */
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isGuid = (value: string): boolean => GUID.test(value);
