// A route described as data: method, path, who may call it, and the zod
// schemas of what it takes and answers. Routes are registered from their spec
// (`route` below: the path and the authentication come from it, and handlers
// parse with its schemas), and the OpenAPI document is generated from the same
// specs (src/http/openapi.ts), so the document cannot drift from the code.
import type Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type { z } from 'zod';
import { ROLES, type Rol } from '../operator/tokens.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Who may call a route:
 * - `none`: anyone (health, metrics, the docs, the dashboard's files);
 * - `contract`: anyone, unless the app runs with AUTH_CONTRATO=on: then a
 *   bearer token of one of `roles` (the team's clients send no token);
 * - `token`: always a bearer token of one of `roles` (the operator routes).
 */
export type AuthRule = { kind: 'none' } | { kind: 'contract'; roles: readonly Rol[] } | { kind: 'token'; roles: readonly Rol[] };

export const PUBLIC: AuthRule = { kind: 'none' };
export const contractRoles = (...roles: Rol[]): AuthRule => ({ kind: 'contract', roles });
export const tokenRoles = (...roles: Rol[]): AuthRule => ({ kind: 'token', roles });
/** Reading the contract: anyone, or with AUTH_CONTRATO=on any valid token. */
export const CONTRACT_READ: AuthRule = contractRoles(...ROLES);

/** True when some role may not call the route (so a 403 can happen). */
export const excludesSomeRole = (roles: readonly Rol[]): boolean => ROLES.some((r) => !roles.includes(r));

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
  /** Other paths the same route answers at (e.g. `/saga` beside `/saga/`); not in the document. */
  alias?: string;
  summary: string;
  description?: string;
  /** Groups the route in the docs page. */
  tag: string;
  auth: AuthRule;
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

/** Builds the middleware that enforces an AuthRule (given how the app authenticates), for the route of `spec`. */
export type Guard = (rule: AuthRule, spec?: RouteSpec) => Middleware;

const pass = async (_ctx: Context, next: Next): Promise<void> => {
  await next();
};

/**
 * The guard of an app: `authenticate(roles)` checks a bearer token; contract
 * routes use it only when `authContract` is on.
 */
export function guardFor(authenticate: (roles: readonly Rol[]) => Middleware, authContract: boolean): Guard {
  return (rule) => {
    if (rule.kind === 'token' || (rule.kind === 'contract' && authContract)) return authenticate(rule.roles);
    return pass;
  };
}

/** Registers `handler` at the spec's method and path(s), behind the spec's authentication. */
export function route(router: Router, guard: Guard, spec: RouteSpec, handler: Middleware): void {
  const paths = [koaPath(spec.path), ...(spec.alias === undefined ? [] : [spec.alias])];
  const method = spec.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
  router[method](paths, guard(spec.auth, spec), handler);
}
