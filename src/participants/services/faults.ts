// Fault injection for the reference participants: rules posted to /__faults make
// the next matching requests fail with a status, or arrive late. Rules are applied
// before anything else, so an injected failure has no effect and stores nothing.
import type { Context, Next } from 'koa';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { readJsonBody } from '../../http/body.js';
import type { Logger } from '../../log.js';
import { parseOrThrow } from './validation.js';

export const FAULTS_PATH = '/__faults';

const ruleSchema = z
  .object({
    route: z
      .string()
      .trim()
      .regex(/^[A-Za-z]+ \/\S*$/, 'Debe ser "<MÉTODO> <ruta>", p. ej. "POST /pagos" o "PATCH /pagos/:id/revertir"'),
    status: z.number().int().min(400).max(599).optional(),
    times: z.number().int().min(1).max(10_000).default(1),
    delayMs: z.number().int().min(0).max(120_000).default(0),
    /**
     * Where the delay goes: before the request is handled (a slow network on the
     * way in: a late request), or after it (the effect is applied, the answer is
     * late: what a caller that times out never learns).
     */
    delayPhase: z.enum(['request', 'response']).default('request'),
    /** Applies to each matching request with this probability (default: every one). */
    rate: z.number().gt(0).max(1).optional(),
  })
  .refine((r) => r.status !== undefined || r.delayMs > 0, {
    message: 'Indique status, delayMs o ambos',
    path: ['status'],
  });

export interface FaultRule {
  /** As given, e.g. "PATCH /pagos/:id/revertir". */
  route: string;
  /** Answered without running the handler; absent means "answer normally after the delay". */
  status?: number;
  /** How many more requests this rule applies to. */
  remaining: number;
  delayMs: number;
  delayPhase: 'request' | 'response';
  rate?: number;
}

interface CompiledRule extends FaultRule {
  method: string;
  segments: string[];
}

const splitPath = (path: string): string[] => path.split('/').filter((s) => s !== '');

/** The fault rules of one app, consumed in the order they were added. */
export class FaultInjector {
  private rules: CompiledRule[] = [];

  add(input: {
    route: string;
    status?: number | undefined;
    times: number;
    delayMs: number;
    delayPhase: 'request' | 'response';
    rate?: number | undefined;
  }): FaultRule {
    const [method = '', path = ''] = input.route.split(' ');
    const rule: CompiledRule = {
      route: input.route,
      ...(input.status !== undefined ? { status: input.status } : {}),
      remaining: input.times,
      delayMs: input.delayMs,
      delayPhase: input.delayPhase,
      ...(input.rate !== undefined ? { rate: input.rate } : {}),
      method: method.toUpperCase(),
      segments: splitPath(path),
    };
    this.rules.push(rule);
    return publicView(rule);
  }

  clear(): number {
    const n = this.rules.length;
    this.rules = [];
    return n;
  }

  list(): FaultRule[] {
    return this.rules.map(publicView);
  }

  /** The first rule matching the request, with one use consumed; undefined when none applies. */
  take(method: string, path: string): FaultRule | undefined {
    const segments = splitPath(path);
    const index = this.rules.findIndex((r) => matches(r, method.toUpperCase(), segments));
    const rule = this.rules[index];
    if (rule === undefined) return undefined;
    // A rule with a rate spares the request it does not pick, and keeps its uses.
    if (rule.rate !== undefined && Math.random() >= rule.rate) return undefined;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.rules.splice(index, 1);
    return publicView(rule);
  }
}

function matches(rule: CompiledRule, method: string, segments: string[]): boolean {
  if (rule.method !== method || rule.segments.length !== segments.length) return false;
  // A ":name" segment of the rule matches any one segment; the others must be equal.
  return rule.segments.every((s, i) => s.startsWith(':') || s === segments[i]);
}

function publicView(rule: CompiledRule): FaultRule {
  return {
    route: rule.route,
    ...(rule.status !== undefined ? { status: rule.status } : {}),
    remaining: rule.remaining,
    delayMs: rule.delayMs,
    delayPhase: rule.delayPhase,
    ...(rule.rate !== undefined ? { rate: rule.rate } : {}),
  };
}

/**
 * Koa middleware: serves GET/POST/DELETE /__faults and applies the rules to every
 * other request. When `enabled` is false it does nothing, and /__faults is a 404.
 */
export function faultInjection(injector: FaultInjector, enabled: boolean, log: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (!enabled) {
      await next();
      return;
    }
    if (ctx.path === FAULTS_PATH) {
      await serveFaults(ctx, injector, log);
      return;
    }

    const rule = injector.take(ctx.method, ctx.path);
    if (rule !== undefined) {
      log.warn({ method: ctx.method, path: ctx.path, rule }, 'injecting fault');
      if (rule.delayMs > 0 && rule.delayPhase === 'request') await sleep(rule.delayMs);
    }
    if (rule?.status === undefined) {
      await next();
      if (rule !== undefined && rule.delayMs > 0 && rule.delayPhase === 'response') await sleep(rule.delayMs);
      return;
    }
    ctx.status = rule.status;
    ctx.body = { error: 'falla_inyectada', detalle: `Falla inyectada en ${rule.route}` };
  };
}

async function serveFaults(ctx: Context, injector: FaultInjector, log: Logger): Promise<void> {
  switch (ctx.method) {
    case 'GET':
      ctx.body = { reglas: injector.list() };
      return;
    case 'POST': {
      const input = parseOrThrow(ruleSchema, await readJsonBody(ctx));
      const rule = injector.add(input);
      log.info({ rule }, 'fault rule added');
      ctx.status = 201;
      ctx.body = rule;
      return;
    }
    case 'DELETE': {
      const eliminadas = injector.clear();
      log.info({ eliminadas }, 'fault rules cleared');
      ctx.body = { eliminadas };
      return;
    }
    default:
      ctx.set('Allow', 'GET, POST, DELETE');
      ctx.status = 405;
      ctx.body = { error: 'metodo_no_permitido', detalle: `${ctx.method} ${FAULTS_PATH} no está permitido` };
  }
}
