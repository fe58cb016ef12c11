// Every setting comes from the environment; this is the only file that reads process.env.
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const optionalUrl = z.string().url().optional();

const schema = z.object({
  DATABASE_URL: optionalUrl,
  /** pulsar://host:6650: when set, the orchestrator publishes saga events to Pulsar. */
  PULSAR_URL: z.string().min(1).optional(),
  /** The broker's web service, for the WebSocket transport; defaults to http://<host of PULSAR_URL>:8085. */
  PULSAR_WEB_URL: optionalUrl,
  /** auto: pulsar-client when it loads, otherwise the WebSocket API. */
  PULSAR_TRANSPORT: z.enum(['auto', 'pulsar-client', 'websocket']).default('auto'),
  PULSAR_TOPIC: z.string().default('saga-events'),
  /** Defaults to the saga log's own (saga_outbox_relay.productor), shared by all its relays. */
  PULSAR_PRODUCER_NAME: z.string().min(1).optional(),
  PORT: port.default(8091),
  BFF_PORT: port.default(8090),
  CAMPAIGNS_PORT: port.default(8080),
  APP_PORT: port.default(8000),
  HOST: z.string().default('0.0.0.0'),
  ORCHESTRATOR_URL: z.string().url().default('http://127.0.0.1:8091'),
  CAMPAIGNS_URL: z.string().url().default('http://127.0.0.1:8080'),
  PAGOS_URL: z.string().url().default('http://127.0.0.1:8000'),
  REPORTING_URL: z.string().url().default('http://127.0.0.1:8000'),
  EMBEDDED_PG_DIR: z.string().default('.data/pg'),
  EMBEDDED_PG_PORT: port.default(54329),
  PARTICIPANT_FAULTS: z.enum(['on', 'off']).optional(),
  PAGOS_MONTO_MAXIMO: z.coerce.number().positive().default(1_000_000),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** How long a shard lease lasts without renewal; a dead process's sagas move after this. */
  SHARD_LEASE_MS: z.coerce.number().int().min(100).default(10_000),
  /** How often a process renews its leases and rebalances shards (default a third of the lease). */
  SHARD_RENEW_MS: z.coerce.number().int().min(10).optional(),
  /** How often each held shard is scanned for unfinished sagas that have no actor. */
  SAGA_SWEEP_MS: z.coerce.number().int().min(10).default(5_000),
  /** How long one participant call may take before its outcome counts as unknown. */
  CALL_TIMEOUT_MS: z.coerce.number().int().min(10).default(5_000),
  /** Scales every retry backoff of the saga definition; tests use a small value. */
  SAGA_BACKOFF_SCALE: z.coerce.number().positive().default(1),
});

export type Config = z.infer<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  return parsed.data;
}
