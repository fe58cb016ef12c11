// Every setting comes from the environment; this is the only file that reads process.env.
import { z } from 'zod';
import type { AnySagaType } from './saga/saga-type.js';
import { parseFaults } from './faults.js';

const port = z.coerce.number().int().min(0).max(65535);
const optionalUrl = z.string().url().optional();

/** The origins the team's web front end is served from in development. */
export const DEFAULT_CORS_ORIGINS = [
  'http://localhost:3000',
  'http://127.0.0.1:3000',
  'http://localhost:5500',
  'http://127.0.0.1:5500',
] as const;

/** A comma-separated list of exact origins (scheme://host[:port]); `*` is refused. */
const originList = z
  .string()
  .transform((v) => v.split(',').map((o) => o.trim()).filter((o) => o !== ''))
  .pipe(
    z.array(
      z
        .string()
        .refine((o) => o !== '*', 'any origin (*) is not allowed: name each origin')
        .refine((o) => /^https?:\/\/[^/\s]+$/.test(o), 'an origin is scheme://host[:port], without a path'),
    ),
  );

const onOff = z.enum(['on', 'off']);

const schema = z.object({
  /**
   * `production` (the container image sets it) changes the defaults: the contract routes and /metrics need a
   * token, and SAGA_FAULTS, PARTICIPANT_FAULTS=on and the participants' /__faults are refused at start.
   */
  NODE_ENV: z.string().optional(),
  DATABASE_URL: optionalUrl,
  /** pulsar://host:6650: when set, the orchestrator publishes saga events to Pulsar. */
  PULSAR_URL: z.string().min(1).optional(),
  /** The broker's web service, for the WebSocket transport; defaults to http://<host of PULSAR_URL>:8085. */
  PULSAR_WEB_URL: optionalUrl,
  /** auto: pulsar-client when it loads, otherwise the binary protocol spoken by the relay (over TLS for a pulsar+ssl:// URL). */
  PULSAR_TRANSPORT: z.enum(['auto', 'pulsar-client', 'binary', 'websocket']).default('auto'),
  PULSAR_TOPIC: z.string().default('saga-events'),
  /** A token (JWT) for a broker with token authentication: every transport presents it. */
  PULSAR_AUTH_TOKEN: z.string().min(1).optional(),
  /** For pulsar+ssl:// (and a wss:// PULSAR_WEB_URL): a PEM file of the certificates to trust instead of the system's. */
  PULSAR_TLS_CA_FILE: z.string().min(1).optional(),
  /**
   * For pulsar+ssl:// (and a wss:// PULSAR_WEB_URL): a client certificate and its key (PEM files), both or
   * neither, for a broker that authenticates by certificate; with PULSAR_AUTH_TOKEN set, the token authenticates.
   */
  PULSAR_TLS_CERT_FILE: z.string().min(1).optional(),
  PULSAR_TLS_KEY_FILE: z.string().min(1).optional(),
  /** Defaults to the saga log's own (saga_outbox_relay.productor), shared by all its relays. */
  PULSAR_PRODUCER_NAME: z.string().min(1).optional(),
  PORT: port.default(8091),
  BFF_PORT: port.default(8090),
  CAMPAIGNS_PORT: port.default(8080),
  APP_PORT: port.default(8000),
  /**
   * The address every role listens on. Loopback by default: the participants'
   * fault injection and statistics must not be open to the network unless
   * asked for (HOST=0.0.0.0, as the container image sets).
   */
  HOST: z.string().default('127.0.0.1'),
  EMBEDDED_PG_DIR: z.string().default('.data/pg'),
  EMBEDDED_PG_PORT: port.default(54329),
  /** The participants' fault injection (/__faults); on by default under `npm start` alone, refused in production. */
  PARTICIPANT_FAULTS: onOff.optional(),
  PAGOS_MONTO_MAXIMO: z.coerce.number().positive().default(1_000_000),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** `pretty` (readable lines) or `json`; by default pretty when stdout is a terminal, JSON otherwise. */
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
  /** Origins whose browser pages may call the BFF (CORS), comma-separated. */
  CORS_ORIGINS: originList.default([...DEFAULT_CORS_ORIGINS]),
  /** How long a shard lease lasts without renewal; a dead process's sagas move after this. */
  SHARD_LEASE_MS: z.coerce.number().int().min(100).default(10_000),
  /** How often a process renews its leases and rebalances shards (default a third of the lease). */
  SHARD_RENEW_MS: z.coerce.number().int().min(10).optional(),
  /**
   * How long a saga-log write, or a read of sagas by id, may wait for others to
   * share its statement (0: none beyond the event loop's turn). Trades up to this
   * much latency per step for fewer transactions per saga when each process is
   * lightly loaded: docs/scale-out.md.
   */
  SAGA_BATCH_WINDOW_MS: z.coerce.number().int().min(0).max(1_000).default(0),
  /** How often each held shard is scanned for unfinished sagas that have no actor. */
  SAGA_SWEEP_MS: z.coerce.number().int().min(10).default(5_000),
  /** How long one participant call may take before its outcome counts as unknown. */
  CALL_TIMEOUT_MS: z.coerce.number().int().min(10).default(5_000),
  /** Scales every retry backoff of the saga definition; tests use a small value. */
  SAGA_BACKOFF_SCALE: z.coerce.number().positive().default(1),
  /** How long a step retries transient failures (refused connections, 5xx, timeouts) before the saga fails. */
  SAGA_STEP_BUDGET_MS: z.coerce.number().int().min(0).default(5 * 60_000),
  /** How long a compensation retries before it is declared failed (COMPENSACION_FALLIDA). */
  SAGA_COMPENSATION_BUDGET_MS: z.coerce.number().int().min(0).default(30 * 60_000),
  /**
   * Per step or compensation, by its tipo: `CANCELAR_CAMPANA=60000,PROCESAR_PAGO=900000`. Overrides the two
   * budgets above for the calls named.
   */
  SAGA_RETRY_BUDGETS_MS: z
    .string()
    .default('')
    .transform((raw, ctx) => retryBudgets(raw) ?? refuse(ctx, raw, 'debe ser TIPO=ms[,TIPO=ms…] con ms un entero no negativo')),
  /** How long an operator request waits for its order to be decided before answering 202. */
  OPERATOR_WAIT_MS: z.coerce.number().int().min(0).default(10_000),
  /** Megabytes of request bodies a BFF or orchestrator reads at once; past it, 503 with Retry-After. */
  BODY_BUDGET_MB: z.coerce.number().positive().default(64),
  // The bounds of docs/SECURITY-bounds.md (issue 17): each with its metric and the test that proves it.
  /** Megabytes of that budget one client (remote address) may hold at once; past it, 429 with Retry-After. */
  BODY_BUDGET_PER_CLIENT_MB: z.coerce.number().positive().default(8),
  /** How long a request body may take to arrive once its reading starts; past it, 408 and the connection closed. */
  BODY_READ_TIMEOUT_MS: z.coerce.number().int().min(10).default(10_000),
  /** The most bytes of a participant's answer that are read; a longer one is that call's failure (docs/SECURITY-bounds.md). */
  PARTICIPANT_ANSWER_MAX_BYTES: z.coerce.number().int().min(1_024).default(1024 * 1024),
  /** The deepest nesting of a participant's JSON answer that is taken; a deeper one is that call's failure. */
  PARTICIPANT_ANSWER_MAX_DEPTH: z.coerce.number().int().min(2).max(1_000).default(64),
  /** Server-sent-event streams (GET /saga/{id}/stream) one client (remote address) may hold open; past it, 429. */
  SSE_MAX_PER_CLIENT: z.coerce.number().int().min(1).default(32),
  /** Server-sent-event streams a process holds open in all; past it, 503. */
  SSE_MAX_TOTAL: z.coerce.number().int().min(1).default(1_000),
  /** How long an answer of GET /estadisticas is reused for the same window and tipo. */
  STATS_CACHE_MS: z.coerce.number().int().min(0).default(5_000),
  /** The statement timeout of the statistics queries; past it, 503 with Retry-After. */
  STATS_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(10).default(5_000),
  /** on: the contract routes need a token too (see docs/operations.md, "Authentication"). Default: on in production, off otherwise. */
  AUTH_CONTRATO: onOff.optional(),
  /** on: GET /metrics needs a token (operador or lector). Default: on in production, off otherwise. */
  METRICS_AUTH: onOff.optional(),
  /**
   * Requests per minute one token may make to POST routes and to the operator routes; past it, 429 with
   * Retry-After. 0: no limit. Default: 600 in production, no limit otherwise.
   */
  RATE_LIMIT_TOKEN_POR_MINUTO: z.coerce.number().int().min(0).optional(),
  /** The same, per client address (before authentication, so unauthenticated floods count). Default: 1200 in production, no limit otherwise. */
  RATE_LIMIT_DIRECCION_POR_MINUTO: z.coerce.number().int().min(0).optional(),
  /**
   * on (default): each process connects to PostgreSQL as its own role (saga_orchestrator, saga_bff, saga_relay,
   * saga_participantes), which the migrations create; DATABASE_URL is then only used to migrate. off: everything
   * connects as DATABASE_URL's user, as before (for a server where that user may not create roles).
   */
  PG_ROLES: onOff.default('on'),
  /**
   * The password of each role (src/persistence/db-roles.ts); unset: a development password, for loopback only.
   * In production (NODE_ENV=production) each process must be given its own.
   */
  PG_PASSWORD_SAGA_ORCHESTRATOR: z.string().default(''),
  PG_PASSWORD_SAGA_BFF: z.string().default(''),
  PG_PASSWORD_SAGA_RELAY: z.string().default(''),
  PG_PASSWORD_SAGA_PARTICIPANTES: z.string().default(''),
  /**
   * How the reference participants recognise a repeated request. recurso (default): a create or undo of a
   * resource id they already hold has no second effect, key or not. clave: only a repeated Idempotency-Key is
   * recognised, as with many real payment APIs; the chaos suite runs them so, so that its check of "one
   * effect per call" depends on the orchestrator's keys.
   */
  PARTICIPANT_DEDUPE: z.enum(['recurso', 'clave']).default('recurso'),
  /** Bugs switched on for the chaos suite to catch (src/faults.ts); never in production. */
  SAGA_FAULTS: z
    .string()
    .default('')
    .transform((raw, ctx) => {
      try {
        return parseFaults(raw);
      } catch {
        return refuse(ctx, raw, 'nombra una falla desconocida (src/faults.ts)');
      }
    }),
});

/** A setting refused with `message` inside a transform (zod reports it like a failed check). */
function refuse(ctx: z.RefinementCtx, input: string, message: string): never {
  ctx.addIssue({ code: 'custom', message, input });
  return z.NEVER;
}

/** `TIPO=ms,TIPO=ms` as a record, or null when malformed. */
function retryBudgets(raw: string): Record<string, number> | null {
  const out: Record<string, number> = {};
  for (const part of raw.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^([A-Za-z0-9_]+)=(\d{1,12})$/.exec(part);
    if (m === null) return null;
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The defaults that NODE_ENV=production changes, and what it refuses. */
const profiled = schema
  .superRefine((c, ctx) => {
    if ((c.PULSAR_TLS_CERT_FILE === undefined) !== (c.PULSAR_TLS_KEY_FILE === undefined)) {
      const missing = c.PULSAR_TLS_CERT_FILE === undefined ? 'PULSAR_TLS_CERT_FILE' : 'PULSAR_TLS_KEY_FILE';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'a client certificate needs both PULSAR_TLS_CERT_FILE and PULSAR_TLS_KEY_FILE' });
    }
    if (c.NODE_ENV !== 'production') return;
    if (c.SAGA_FAULTS.size > 0) {
      ctx.addIssue({ code: 'custom', path: ['SAGA_FAULTS'], message: 'refused in production (NODE_ENV=production): it switches bugs on' });
    }
    if (c.PARTICIPANT_FAULTS === 'on') {
      ctx.addIssue({ code: 'custom', path: ['PARTICIPANT_FAULTS'], message: 'refused in production (NODE_ENV=production): /__faults lets anyone break the participants' });
    }
  })
  .transform((c) => {
    const production = c.NODE_ENV === 'production';
    return {
      ...c,
      production,
      AUTH_CONTRATO: c.AUTH_CONTRATO ?? (production ? 'on' : 'off'),
      METRICS_AUTH: c.METRICS_AUTH ?? (production ? 'on' : 'off'),
      RATE_LIMIT_TOKEN_POR_MINUTO: c.RATE_LIMIT_TOKEN_POR_MINUTO ?? (production ? 600 : 0),
      RATE_LIMIT_DIRECCION_POR_MINUTO: c.RATE_LIMIT_DIRECCION_POR_MINUTO ?? (production ? 1200 : 0),
    };
  });

export type Config = z.infer<typeof profiled>;

/**
 * The base URL of every participant the saga types name, from the variable
 * each declares (e.g. CAMPAIGNS_URL), or its default. `overrides` wins over
 * the environment (npm start wires its own participants in).
 */
export function participantUrls(
  types: readonly AnySagaType[],
  overrides: Readonly<Record<string, string>> = {},
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const type of types) {
    for (const [name, setting] of Object.entries(type.participants)) {
      const url = overrides[setting.env] ?? env[setting.env] ?? setting.defaultUrl;
      if (!z.string().url().safeParse(url).success) throw new Error(`Invalid configuration: ${setting.env}: not a URL (${url})`);
      urls[name] = url;
    }
  }
  return urls;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = profiled.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  return parsed.data;
}
