// The OpenAPI 3.1 document of an app, generated from its RouteSpecs (whose zod
// schemas the routes parse with), at GET /openapi.json, and a docs page at
// GET /docs made of Swagger UI's static files from node_modules: no CDN.
import type Router from '@koa/router';
import { z } from 'zod';
import { excludesSomeRole, koaPath, PUBLIC, type ResponseSpec, type RouteSpec } from './route-spec.js';
import { errorResponse } from './schemas.js';
import { CONTENT_TYPES, packageDir, serveStaticFiles } from './static-files.js';
import path from 'node:path';

type JsonSchema = Record<string, unknown>;

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
}

/** A zod schema as a JSON Schema 2020-12 object for OpenAPI 3.1 (which uses that dialect). */
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const generated: JsonSchema = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' });
  // The dialect is the document's (jsonSchemaDialect), not repeated in every schema.
  delete generated.$schema;
  return generated;
}

function parameters(where: 'path' | 'query' | 'header', schema: z.ZodObject | undefined): JsonSchema[] {
  if (schema === undefined) return [];
  const object = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === 'path' || (object.required ?? []).includes(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

/** Whether the app asks this route for a token, and which answers that adds. */
function security(spec: RouteSpec, authContract: boolean): { security: JsonSchema[]; roles?: readonly string[]; responses: Record<number, ResponseSpec> } {
  const rule = spec.auth;
  if (rule.kind === 'none' || (rule.kind === 'contract' && !authContract)) return { security: [], responses: {} };
  const responses: Record<number, ResponseSpec> = { 401: errorResponse('Falta un token válido (Authorization: Bearer <token>)') };
  if (excludesSomeRole(rule.roles)) responses[403] = errorResponse(`El rol del token no puede hacer esto (pueden: ${rule.roles.join(', ')})`);
  return { security: [{ bearer: [] }], roles: rule.roles, responses };
}

/**
 * The answers every route of its kind can give besides its own: a query
 * parameter with text PostgreSQL cannot store (every route), a body that is
 * not JSON, too large, or read while the body budget is full (routes with a
 * body), and those of its authentication.
 */
function commonResponses(spec: RouteSpec, auth: Record<number, ResponseSpec>): Record<number, ResponseSpec> {
  const responses: Record<number, ResponseSpec> = {
    400: errorResponse('Un parámetro con un carácter no permitido (NUL o un sustituto UTF-16 suelto)'),
    ...auth,
  };
  if (spec.body !== undefined) {
    responses[413] = errorResponse('El cuerpo supera 1 MB');
    responses[415] = errorResponse('El cuerpo no es application/json');
    responses[503] = errorResponse('Demasiados cuerpos leyéndose a la vez (sobrecargado, con Retry-After)');
  }
  return responses;
}

function operation(spec: RouteSpec, authContract: boolean): JsonSchema {
  const auth = security(spec, authContract);
  const all = { ...commonResponses(spec, auth.responses), ...spec.responses };
  const responses = Object.fromEntries(
    Object.entries(all).map(([status, r]) => [
      status,
      {
        description: r.description,
        ...(r.schema === undefined ? {} : { content: { [r.contentType ?? 'application/json']: { schema: jsonSchema(r.schema, 'output') } } }),
      },
    ]),
  );
  return {
    operationId: `${spec.method.toLowerCase()}${spec.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: spec.summary,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    tags: [spec.tag],
    security: auth.security,
    ...(auth.roles === undefined ? {} : { 'x-roles': auth.roles }),
    parameters: [...parameters('path', spec.params), ...parameters('query', spec.query), ...parameters('header', spec.headers)],
    ...(spec.body === undefined
      ? {}
      : { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(spec.body, 'input') } } } }),
    responses,
  };
}

/**
 * The OpenAPI 3.1 document of an app's routes. `authContract`: the app runs
 * with AUTH_CONTRATO=on, so the contract routes ask for a token too.
 */
export function openApiDocument(info: OpenApiInfo, specs: readonly RouteSpec[], opts: { authContract: boolean }): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const spec of specs) {
    const item = (paths[spec.path] ??= {});
    item[spec.method.toLowerCase()] = operation(spec, opts.authContract);
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'Un token de `npm run token -- --nombre NOMBRE --rol operador|lector|cliente`. Las rutas de operación lo piden siempre; ' +
            'las del contrato, solo con AUTH_CONTRATO=on.',
        },
      },
    },
  };
}

const DOCS_PAGE = `<!doctype html>
<html lang="es">
<head>
  <meta charset="utf-8">
  <title>API · Aeropartners SAGA</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <style>body { margin: 0 } .topbar { display: none }</style>
</head>
<body>
  <div id="docs"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

const DOCS_INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#docs',
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: false,
  defaultModelsExpandDepth: 0,
});
`;

const VERSION = '0.1.0';

/** The document's title and description for an app. */
export function apiInfo(service: 'bff' | 'saga-orchestrator'): OpenApiInfo {
  return service === 'bff'
    ? {
        title: 'Aeropartners SAGA · BFF',
        version: VERSION,
        description:
          'El contrato que usan el front end y los clientes del equipo (puerto 8090), las acciones de operador, el panel ' +
          'y sus datos. Los errores son siempre JSON `{error, detalle, detail}`.',
      }
    : {
        title: 'Aeropartners SAGA · Orquestador',
        version: VERSION,
        description:
          'La API del orquestador (puerto 8091): las mismas rutas de SAGA que el BFF (una SAGA iniciada aquí corre aquí). ' +
          'Los errores son siempre JSON `{error, detalle, detail}`.',
      };
}

/** The docs' own routes: documented too. */
export const openApiRouteSpecs: RouteSpec[] = [
  {
    method: 'GET',
    path: '/openapi.json',
    summary: 'Este documento OpenAPI 3.1',
    tag: 'Servicio',
    auth: PUBLIC,
    responses: { 200: { description: 'El documento', schema: z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }) } },
  },
  {
    method: 'GET',
    path: '/docs',
    summary: 'La documentación legible de la API (Swagger UI, sin conexión)',
    tag: 'Servicio',
    auth: PUBLIC,
    responses: { 200: { description: 'Una página HTML', schema: z.string(), contentType: 'text/html' } },
  },
];

/** A route path with its parameter names and a trailing slash dropped: `/saga/:/status`. */
const shape = (p: string) => p.replace(/:[^/]+/g, ':').replace(/(.)\/$/, '$1');

/**
 * Routes of `router` that no spec describes ("GET /x"), static assets under
 * /ui/ and /docs/ aside: each app logs them at start, and a test requires none.
 */
export function undocumentedRoutes(router: Router, specs: readonly RouteSpec[]): string[] {
  const documented = new Set(specs.map((s) => `${s.method} ${shape(koaPath(s.path))}`));
  const missing: string[] = [];
  for (const layer of router.stack) {
    const routePath = String(layer.path);
    if (/^\/(ui|docs)\/./.test(routePath)) continue;
    for (const method of layer.methods) {
      if (method === 'HEAD') continue;
      const key = `${method} ${shape(routePath)}`;
      if (!documented.has(key) && !missing.includes(key)) missing.push(key);
    }
  }
  return missing;
}

/** GET /openapi.json and the docs page with its assets under /docs/. */
export function mountOpenApi(router: Router, document: () => JsonSchema): void {
  let cached: JsonSchema | undefined;
  router.get('/openapi.json', (ctx) => {
    ctx.body = cached ??= document();
  });
  router.get('/docs', (ctx) => {
    ctx.type = CONTENT_TYPES.html;
    ctx.body = DOCS_PAGE;
  });
  router.get('/docs/init.js', (ctx) => {
    ctx.type = CONTENT_TYPES.js;
    ctx.body = DOCS_INIT;
  });
  const swagger = packageDir('swagger-ui-dist');
  serveStaticFiles(router, {
    '/docs/swagger-ui.css': { file: path.join(swagger, 'swagger-ui.css'), type: CONTENT_TYPES.css },
    '/docs/swagger-ui-bundle.js': { file: path.join(swagger, 'swagger-ui-bundle.js'), type: CONTENT_TYPES.js },
  });
}
