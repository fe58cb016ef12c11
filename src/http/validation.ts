// zod problems become the contract's field list: [{ campo, mensaje }], in Spanish.
import type { z } from 'zod';
import { badRequest, type FieldProblem } from './errors.js';

const TYPE_NAMES: Record<string, string> = {
  number: 'un número',
  string: 'un texto',
  object: 'un objeto',
  boolean: 'un booleano',
  array: 'una lista',
  record: 'un objeto',
};

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw badRequest(parsed.error.issues.map((issue) => toFieldProblem(issue, value)));
}

/** The value at `path` inside `root`, or undefined where the path does not exist. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function toFieldProblem(issue: z.core.$ZodIssue, input: unknown): FieldProblem {
  const campo = issue.path.map(String).join('.') || '(cuerpo)';
  if (issue.code === 'invalid_type') {
    const missing = valueAt(input, issue.path) === undefined;
    return { campo, mensaje: missing ? 'es obligatorio' : `debe ser ${TYPE_NAMES[issue.expected] ?? issue.expected}` };
  }
  if (issue.code === 'too_small' && issue.origin === 'string') return { campo, mensaje: 'no puede estar vacío' };
  if (issue.code === 'too_small') return { campo, mensaje: `debe ser mayor que ${String(issue.minimum)}` };
  if (issue.code === 'too_big') return { campo, mensaje: `debe ser como máximo ${String(issue.maximum)}` };
  return { campo, mensaje: issue.message };
}
