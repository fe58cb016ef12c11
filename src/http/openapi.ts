// The OpenAPI 3.1 document of an app, generated from its RouteSpecs (whose zod
// schemas the routes parse with), at GET /openapi.json, and a docs page at
// GET /docs made of Swagger UI's static files from node_modules: no CDN.
import type Router from '@koa/router';
import { z } from 'zod';
import { koaPath, type RouteSpec } from './route-spec.js';
import { CONTENT_TYPES, packageDir, serveStaticFiles } from './static-files.js';
import path from 'node:path';

type JsonSchema = Record<string, unknown>;

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
}

/** A zod schema as a JSON Schema 2020-12 object for OpenAPI 3.1 (which uses that dialect). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
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

function operation(spec: RouteSpec): JsonSchema {
  const responses = Object.fromEntries(
    Object.entries(spec.responses).map(([status, r]) => [
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
    ...(spec.auth === 'ninguno' ? { security: [] } : { security: [{ bearer: [] }], 'x-rol': spec.auth }),
    parameters: [...parameters('path', spec.params), ...parameters('query', spec.query), ...parameters('header', spec.headers)],
    ...(spec.body === undefined
      ? {}
      : { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(spec.body, 'input') } } } }),
    responses,
  };
}

export function openApiDocument(info: OpenApiInfo, specs: readonly RouteSpec[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const spec of specs) {
    const item = (paths[spec.path] ??= {});
    item[spec.method.toLowerCase()] = operation(spec);
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
          description: 'Un token de `npm run token -- --nombre NOMBRE --rol operador|lector`',
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

/** The docs' spec for the route table: these routes are documented too. */
export const openApiRouteSpecs = (tag: string): RouteSpec[] => [
  {
    method: 'GET',
    path: '/openapi.json',
    summary: 'Este documento OpenAPI 3.1',
    tag,
    auth: 'ninguno',
    responses: { 200: { description: 'El documento', schema: z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }) } },
  },
  {
    method: 'GET',
    path: '/docs',
    summary: 'La documentación legible de la API (Swagger UI, sin conexión)',
    tag,
    auth: 'ninguno',
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
