// CORS for browser pages served from another origin (the team's front end on
// localhost:3000 or a live server on 127.0.0.1:5500). Only the listed origins
// get an Access-Control-Allow-Origin, and it is always their own origin, never
// `*`. No cookies are involved: operator routes take a bearer token in the
// Authorization header, which the preflight allows.
import type Koa from 'koa';
import cors from '@koa/cors';

/** Headers a page may send: JSON bodies, the operator's token, and a retry key. */
export const CORS_ALLOWED_HEADERS = ['Content-Type', 'Authorization', 'Idempotency-Key'] as const;

/** Mounts CORS on `app` for exactly `origins` (scheme://host[:port]); put it before the routes. */
export function mountCors(app: Koa, origins: readonly string[]): void {
  const allowed = new Set(origins);
  app.use(
    cors({
      // An origin not on the list gets no CORS header at all, so the browser blocks the page.
      origin: (ctx) => {
        const origin = ctx.get('Origin');
        return allowed.has(origin) ? origin : '';
      },
      allowMethods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
      allowHeaders: [...CORS_ALLOWED_HEADERS],
      exposeHeaders: ['Content-Type', 'Retry-After'],
      maxAge: 600,
      credentials: false,
    }),
  );
}
