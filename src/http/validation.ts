// zod problems become the contract's field list: [{ campo, mensaje }], in Spanish.
// Query strings go through parseQuery: an empty parameter means "no filter"
// (the team's clients send `?estado=&tipo=`), and a repeated one is refused.
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
  throw badRequest(oneProblemPerField(parsed.error.issues.map((issue) => toFieldProblem(issue, value))));
}

/**
 * A query string against its schema: parameters given empty are left out, as
 * if absent, and a parameter given twice is a 400 naming it.
 */
export function parseQuery<S extends z.ZodType>(schema: S, query: Record<string, string | string[] | undefined>): z.infer<S> {
  const given: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) throw badRequest([{ campo: name, mensaje: 'no puede repetirse' }]);
    if (value !== undefined && value !== '') given[name] = value;
  }
  return parseOrThrow(schema, given);
}

/** The first problem of each field: one field, one message a person can act on. */
function oneProblemPerField(problems: FieldProblem[]): FieldProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => (seen.has(p.campo) ? false : (seen.add(p.campo), true)));
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
  if (issue.code === 'too_small') {
    const min = String(issue.minimum);
    return { campo, mensaje: issue.inclusive === false ? `debe ser mayor que ${min}` : `debe ser como mínimo ${min}` };
  }
  if (issue.code === 'too_big') {
    const max = String(issue.maximum);
    return { campo, mensaje: issue.inclusive === false ? `debe ser menor que ${max}` : `debe ser como máximo ${max}` };
  }
  return { campo, mensaje: issue.message };
}
