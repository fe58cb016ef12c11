// A route described as data: method, path, who may call it, and the zod
// schemas of what it takes and answers. The OpenAPI document is generated from
// these (src/http/openapi.ts), and the routes parse their input with the same
// schemas, so the document cannot drift from what the code accepts.
import type { z } from 'zod';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Who may call a route: anyone, any valid token (lector or operador), or an operador. */
export type AuthRole = 'ninguno' | 'lector' | 'operador';

export interface ResponseSpec {
  description: string;
  /** The body's schema; absent for answers without a body. */
  schema?: z.ZodType;
  /** Defaults to application/json. */
  contentType?: string;
}

export interface RouteSpec {
  method: HttpMethod;
  /** The path in OpenAPI form, e.g. `/saga/{saga_id}/status`. */
  path: string;
  summary: string;
  description?: string;
  /** Groups the route in the docs page. */
  tag: string;
  auth: AuthRole;
  params?: z.ZodObject;
  query?: z.ZodObject;
  headers?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<number, ResponseSpec>;
}

/** `/saga/{saga_id}/status` as a Koa router path: `/saga/:saga_id/status`. */
export function koaPath(openApiPath: string): string {
  return openApiPath.replace(/\{([^}]+)\}/g, ':$1');
}

/** Defines a route spec with its literal types checked. */
export const routeSpec = (spec: RouteSpec): RouteSpec => spec;
