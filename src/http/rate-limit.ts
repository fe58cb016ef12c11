// Rate limits on the routes that cost the most or matter the most: every POST
// (starting sagas, operator actions, lotes) and every route that always needs a
// token (the operator views and actions). Two token buckets per request: one
// for the client's address, taken before authentication (so a flood of bad
// tokens is limited too), and one for the token, taken after it. Each bucket
// holds `perMinute` requests and refills continuously; an empty one answers
// 429 with Retry-After, the seconds until one request is allowed again.
import type { Context, Next } from 'koa';
import type { Registry } from 'prom-client';
import { registerRateLimitMetrics } from '../metrics.js';
import { HttpError } from './errors.js';
import type { Guard, RouteSpec } from './route-spec.js';

export type LimitKind = 'token' | 'direccion';

interface Bucket {
  tokens: number;
  at: number;
}

/** One kind of limit: a bucket per key, at most `maxKeys` kept (the least recently seen go first). */
class Buckets {
  private readonly buckets = new Map<string, Bucket>();
  constructor(
    private readonly perMinute: number,
    private readonly maxKeys: number,
    private readonly now: () => number,
  ) {}

  /** Takes one request for `key`: 0 when allowed, otherwise the seconds to wait. */
  take(key: string): number {
    const now = this.now();
    const perMs = this.perMinute / 60_000;
    const found = this.buckets.get(key);
    const bucket = found ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    // Re-inserted, so the map's order is by last use and the oldest is evicted first.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }
}

export interface RateLimitOptions {
  /** Requests per minute per token; 0: no limit. */
  tokenPerMinute: number;
  /** Requests per minute per client address; 0: no limit. */
  addressPerMinute: number;
  /** Keys remembered per kind (default 100,000): memory stays bounded whatever the clients do. */
  maxKeys?: number;
  /** The clock, in ms (tests move it). */
  now?: () => number;
}

export class RateLimiter {
  private readonly byToken: Buckets | undefined;
  private readonly byAddress: Buckets | undefined;
  private readonly counters: ReturnType<typeof registerRateLimitMetrics>[] = [];

  constructor(opts: RateLimitOptions) {
    const now = opts.now ?? (() => Date.now());
    const maxKeys = opts.maxKeys ?? 100_000;
    this.byToken = opts.tokenPerMinute > 0 ? new Buckets(opts.tokenPerMinute, maxKeys, now) : undefined;
    this.byAddress = opts.addressPerMinute > 0 ? new Buckets(opts.addressPerMinute, maxKeys, now) : undefined;
  }

  /** Counts refusals in `registry` as http_rate_limited_total{limite}. */
  countInto(registry: Registry): void {
    this.counters.push(registerRateLimitMetrics(registry));
  }

  /** Throws 429 with Retry-After when `key` has no request left under `kind`. */
  take(kind: LimitKind, key: string): void {
    const buckets = kind === 'token' ? this.byToken : this.byAddress;
    const wait = buckets?.take(key) ?? 0;
    if (wait === 0) return;
    for (const c of this.counters) c.refused(kind);
    throw new HttpError(
      429,
      'demasiadas_solicitudes',
      kind === 'token' ? 'Este token hizo demasiadas solicitudes; reintente más tarde' : 'Esta dirección hizo demasiadas solicitudes; reintente más tarde',
      { reintentar_en_s: wait },
      { 'Retry-After': String(wait) },
    );
  }

  /** Keys remembered now, per kind (for tests of the memory bound). */
  keys(): Record<LimitKind, number> {
    return { token: this.byToken?.size ?? 0, direccion: this.byAddress?.size ?? 0 };
  }
}

/** Whether a route is rate-limited: every POST, and every route that always needs a token. */
export const isLimited = (spec: Pick<RouteSpec, 'method' | 'auth'>): boolean => spec.method === 'POST' || spec.auth.kind === 'token';

/**
 * Wraps an app's guard: on limited routes the address is limited before the
 * guard runs and the token after it (the guard puts the operator, with its
 * token id, in ctx.state).
 */
export function rateLimitedGuard(guard: Guard, limiter: RateLimiter | undefined): Guard {
  return (rule, spec) => {
    const inner = guard(rule, spec);
    if (limiter === undefined || spec === undefined || !isLimited(spec)) return inner;
    return async (ctx: Context, next: Next) => {
      limiter.take('direccion', ctx.ip);
      await inner(ctx, async () => {
        const tokenId = (ctx.state.operator as { tokenId?: string } | undefined)?.tokenId;
        if (tokenId !== undefined) limiter.take('token', tokenId);
        await next();
      });
    };
  };
}
