// The operators' dashboard, served by the BFF at /ui (and / redirects there):
// static ES modules from src/ui/ plus Preact, htm and uPlot straight from
// node_modules, joined by an import map. No build step and no CDN: what
// `npm install` put on disk is all the browser loads.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';
import { z } from 'zod';
import type { AnySagaType } from '../saga/saga-type.js';
import { jsonSchema } from './openapi.js';
import { PUBLIC, type RouteSpec } from './route-spec.js';
import { CONTENT_TYPES, packageDir, serveStaticFiles, type StaticFile } from './static-files.js';

const UI_DIR = fileURLToPath(new URL('../ui/', import.meta.url));

const sagaTypesBody = z.object({
  tipos: z.array(
    z.object({
      tipo: z.string(),
      ruta: z.string(),
      ejemplo: z.unknown(),
      esquema: z.record(z.string(), z.unknown()),
      claves: z.array(z.string()),
    }),
  ),
});

export const dashboardSpecs: RouteSpec[] = [
  {
    method: 'GET',
    path: '/ui',
    summary: 'El panel de operación (HTML)',
    tag: 'Panel',
    auth: PUBLIC,
    responses: { 200: { description: 'La página del panel', schema: z.string(), contentType: 'text/html' } },
  },
  {
    method: 'GET',
    path: '/ui/ejemplo.json',
    summary: 'El cuerpo de ejemplo del primer tipo de SAGA (POST /saga/crear-campana-completa en esta instalación)',
    tag: 'Panel',
    auth: PUBLIC,
    responses: { 200: { description: 'Un cuerpo para la ruta del primer tipo de SAGA', schema: z.record(z.string(), z.unknown()) } },
  },
  {
    method: 'GET',
    path: '/ui/tipos.json',
    summary: 'Los tipos de SAGA que se pueden iniciar: su ruta, un cuerpo de ejemplo, el JSON Schema del cuerpo (el formulario «Nueva SAGA» se hace con él) y los datos de negocio por los que se buscan (los filtros del panel)',
    tag: 'Panel',
    auth: PUBLIC,
    responses: { 200: { description: 'Cada tipo de SAGA registrado', schema: sagaTypesBody } },
  },
  {
    method: 'GET',
    path: '/',
    summary: 'Redirige al panel (/ui)',
    tag: 'Panel',
    auth: PUBLIC,
    responses: { 302: { description: 'A /ui' } },
  },
];

function typeOf(file: string): string {
  const ext = path.extname(file).slice(1);
  return ext in CONTENT_TYPES ? CONTENT_TYPES[ext as keyof typeof CONTENT_TYPES] : 'application/octet-stream';
}

/** The URL table: each file of src/ui, and the few library files the page imports. */
export function dashboardFiles(): Record<string, StaticFile> {
  const files: Record<string, StaticFile> = {};
  for (const name of readdirSync(UI_DIR)) {
    if (!/\.(js|css|html|svg|png)$/.test(name)) continue;
    files[`/ui/${name}`] = { file: path.join(UI_DIR, name), type: typeOf(name) };
  }
  const index = files['/ui/index.html'];
  if (index === undefined) throw new Error(`src/ui/index.html is missing in ${UI_DIR}`);
  files['/ui'] = index;
  const preact = packageDir('preact');
  const uplot = packageDir('uplot');
  const vendor: Record<string, string> = {
    'preact.mjs': path.join(preact, 'dist', 'preact.mjs'),
    'hooks.mjs': path.join(preact, 'hooks', 'dist', 'hooks.mjs'),
    'htm.mjs': path.join(packageDir('htm'), 'dist', 'htm.module.js'),
    'uPlot.esm.js': path.join(uplot, 'dist', 'uPlot.esm.js'),
    'uPlot.min.css': path.join(uplot, 'dist', 'uPlot.min.css'),
  };
  for (const [name, file] of Object.entries(vendor)) files[`/ui/vendor/${name}`] = { file, type: typeOf(name) };
  return files;
}

/** What the dashboard needs of each saga type: its route, example body and request schema (the create form), its search keys (the filters). */
export function sagaTypesOf(types: readonly AnySagaType[]): z.infer<typeof sagaTypesBody> {
  return {
    tipos: types.map((t) => ({
      tipo: t.tipo,
      ruta: t.route,
      ejemplo: t.example(),
      esquema: jsonSchema(t.request, 'input'),
      claves: [...t.searchKeyNames],
    })),
  };
}

export function mountDashboard(router: Router, types: readonly AnySagaType[]): void {
  const tipos = sagaTypesOf(types);
  router.get('/', (ctx) => ctx.redirect('/ui'));
  router.get('/ui/', (ctx) => ctx.redirect('/ui'));
  router.get('/ui/ejemplo.json', (ctx) => {
    ctx.body = tipos.tipos[0]?.ejemplo ?? {};
  });
  router.get('/ui/tipos.json', (ctx) => {
    ctx.body = tipos;
  });
  serveStaticFiles(router, dashboardFiles());
}
