// Static files served from a fixed table of URL path -> file, never from a path
// taken from the request, so nothing outside the table can be read. Files are
// read once and kept in memory with an ETag; browsers revalidate (no-cache).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import type Router from '@koa/router';

export interface StaticFile {
  /** Absolute path on disk. */
  file: string;
  /** Content-Type of the answer. */
  type: string;
}

const require = createRequire(import.meta.url);

/** The directory an installed npm package lives in. */
export function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    // Packages whose exports hide package.json: walk up from their entry point.
    let dir = path.dirname(require.resolve(name));
    while (dir !== path.dirname(dir)) {
      const manifest = path.join(dir, 'package.json');
      if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
      dir = path.dirname(dir);
    }
    throw new Error(`package ${name} is not installed`);
  }
}

export const CONTENT_TYPES = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  png: 'image/png',
  svg: 'image/svg+xml',
} as const;

/** Serves each URL path of `files` with GET (and HEAD). */
export function serveStaticFiles(router: Router, files: Record<string, StaticFile>): void {
  const loaded = new Map<string, Promise<{ body: Buffer; etag: string }>>();
  const load = (f: StaticFile) => {
    let entry = loaded.get(f.file);
    if (entry === undefined) {
      entry = readFile(f.file).then((body) => ({ body, etag: `"${createHash('sha1').update(body).digest('base64url')}"` }));
      // A failed read is tried again on the next request.
      entry.catch(() => loaded.delete(f.file));
      loaded.set(f.file, entry);
    }
    return entry;
  };
  for (const [urlPath, f] of Object.entries(files)) {
    router.get(urlPath, async (ctx) => {
      const { body, etag } = await load(f);
      ctx.set('ETag', etag);
      ctx.set('Cache-Control', 'no-cache');
      ctx.set('X-Content-Type-Options', 'nosniff');
      if (ctx.get('If-None-Match') === etag) {
        ctx.status = 304;
        return;
      }
      ctx.type = f.type;
      ctx.body = body;
    });
  }
}
