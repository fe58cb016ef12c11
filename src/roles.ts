// Each role of the system as a start function returning a handle to stop it.
// `npm start` runs them all in one process; `npm run start:<role>` runs one;
// tests start exactly the ones they need on free ports.
import type pg from 'pg';
import { participantUrls, type Config } from './config.js';
import type { Logger } from './log.js';
import { Orchestrator } from './orchestrator.js';
import { httpGateway, type HttpGateway, type ParticipantGateway } from './gateway/participant-gateway.js';
import { aeropartnersApp, campaignsApp } from './participants/services/apps.js';
import { migrateParticipants, participantPool } from './participants/database.js';
import { openDatabase, migrate, type Database } from './persistence/database.js';
import { roleUrls, type RolePasswords, type RuntimeRole } from './persistence/db-roles.js';
import { StartupProblem } from './startup-problem.js';
import { grantSagaLogPrivileges } from '../migrations/privileges.js';
import { registerDefinitions } from './persistence/definitions.js';
import { createPool } from './persistence/pool.js';
import { SagaQueries } from './persistence/saga-queries.js';
import { SagaStore } from './persistence/saga-store.js';
import { SagaWriter } from './persistence/saga-writer.js';
import { DefinitionRegistry } from './saga/registry.js';
import type { AnySagaType, PolicyOptions } from './saga/saga-type.js';
import { sagaTypes } from './sagas/index.js';
import { SagaIntake } from './saga-intake.js';
import { ShardDirectory } from './cluster/placement.js';
import { LoteWorker } from './operator/lotes.js';
import { bffApi } from './http/bff-api.js';
import { SagaChanges } from './cluster/saga-changes.js';
import { orchestratorApi } from './http/orchestrator-api.js';
import { listen, type RunningServer } from './http/server.js';
import { BodyBudget } from './http/body.js';
import { StreamLimits } from './http/sse.js';
import { StatsCache } from './http/statistics.js';
import { SagaStatsQueries } from './persistence/saga-stats.js';
import { registerBoundMetrics } from './metrics.js';
import { RateLimiter } from './http/rate-limit.js';
import { prepareEventRelay, type EventRelayOptions } from './events/event-relay.js';
import { relayMetrics } from './events/relay-metrics.js';
import { FAULTS, writerHooks, type Faults } from './faults.js';

export interface Role {
  /** Base URLs this role serves, by name. */
  urls: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Opens the saga log database as `url`'s user and applies pending migrations, then (unless `roles: false`)
 * creates the database roles and grants each its rights (migrations/privileges.ts).
 */
export async function openMigratedDatabase(url: string, opts: { roles?: boolean } = {}): Promise<Database> {
  const db = await openDatabase(url);
  try {
    await migrate(db, url, opts.roles === false ? {} : { privileges: grantSagaLogPrivileges });
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

/**
 * Migrates as DATABASE_URL's user, then gives the URL each of `roles` connects with: its own role
 * (src/persistence/db-roles.ts), or DATABASE_URL itself with PG_ROLES=off.
 */
export async function connectionsFor<R extends RuntimeRole>(config: Config, adminUrl: string, roles: readonly R[]): Promise<Record<R, string>> {
  const withRoles = config.PG_ROLES === 'on';
  if (withRoles) requirePasswords(config, roles);
  await (await openMigratedDatabase(adminUrl, { roles: withRoles })).close();
  if (!withRoles) return Object.fromEntries(roles.map((r) => [r, adminUrl])) as Record<R, string>;
  return roleUrls(adminUrl, roles, rolePasswords(config));
}

function rolePasswords(config: Config): RolePasswords {
  return {
    saga_orchestrator: config.PG_PASSWORD_SAGA_ORCHESTRATOR,
    saga_bff: config.PG_PASSWORD_SAGA_BFF,
    saga_relay: config.PG_PASSWORD_SAGA_RELAY,
    saga_participantes: config.PG_PASSWORD_SAGA_PARTICIPANTES,
  };
}

/** In production a role's development password (its name and -dev) is not accepted: each must be given. */
function requirePasswords(config: Config, roles: readonly RuntimeRole[]): void {
  if (!config.production) return;
  const given = rolePasswords(config);
  const missing = roles.filter((r) => (given[r] ?? '') === '').map((r) => `PG_PASSWORD_${r.toUpperCase()}`);
  if (missing.length > 0) {
    throw new StartupProblem(
      `NODE_ENV=production: set ${missing.join(', ')}, the password of this process's database role (docs/SECURITY.md),\n` +
        'or PG_ROLES=off to connect as DATABASE_URL\'s user.',
    );
  }
}

/** The call policies of every saga type, from the configuration. */
export function policyOptions(config: Config): PolicyOptions {
  return {
    backoffScale: config.SAGA_BACKOFF_SCALE,
    callTimeoutMs: config.CALL_TIMEOUT_MS,
    stepBudgetMs: config.SAGA_STEP_BUDGET_MS,
    compensationBudgetMs: config.SAGA_COMPENSATION_BUDGET_MS,
    budgetsMs: config.SAGA_RETRY_BUDGETS_MS,
  };
}

export interface SagaTypeOptions {
  /** The saga types to serve (default: every type under src/sagas, on the configuration's policies). */
  types?: AnySagaType[];
  /** The bytes of request bodies read at once (default: BODY_BUDGET_MB). */
  bodyBudget?: BodyBudget;
}

export interface OrchestratorRoleOptions extends SagaTypeOptions {
  /** Replaces the HTTP participant gateway (actor tests use a fake). */
  gateway?: ParticipantGateway;
  /** Participant base URLs by their variable name, over the environment (npm start wires its own participants). */
  participantEnv?: Record<string, string>;
  /** Replaces the `pulsar-client` module (tests use a fake with its API). */
  pulsarModule?: EventRelayOptions['pulsarModule'];
}

/** The bounds of a role's saga routes, from the configuration (docs/SECURITY-bounds.md). */
function routeBounds(config: Config, pool: pg.Pool, bodyBudget: BodyBudget | undefined) {
  return {
    bodyBudget:
      bodyBudget ??
      new BodyBudget(config.BODY_BUDGET_MB * 1024 * 1024, {
        perClientBytes: config.BODY_BUDGET_PER_CLIENT_MB * 1024 * 1024,
        readTimeoutMs: config.BODY_READ_TIMEOUT_MS,
      }),
    streams: new StreamLimits(config.SSE_MAX_PER_CLIENT, config.SSE_MAX_TOTAL),
    stats: new StatsCache(new SagaStatsQueries(pool, { statementTimeoutMs: config.STATS_STATEMENT_TIMEOUT_MS }), config.STATS_CACHE_MS),
  };
}

/** What both the orchestrator and the BFF serve their saga routes from. */
interface SagaRouteParts {
  pool: pg.Pool;
  queries: SagaQueries;
  changes: SagaChanges;
}

async function sagaRouteParts(db: Database, databaseUrl: string, log: Logger, batchWindowMs: number): Promise<SagaRouteParts> {
  const pool = createPool(databaseUrl, 5, log);
  const changes = new SagaChanges(databaseUrl, log, pool);
  await changes.start();
  return { pool, queries: new SagaQueries(db, pool, { batchWindowMs }), changes };
}

/** Says loudly that this process runs with bugs switched on (the chaos suite's SAGA_FAULTS), or open in production. */
function warnFaults(faults: Faults, log: Logger, config?: Config): void {
  for (const f of faults) log.warn({ fault: f }, `SAGA_FAULTS: ${f} is ON: ${FAULTS[f]}. Never in production.`);
  if (config?.production === true && config.AUTH_CONTRATO === 'off') {
    log.warn('NODE_ENV=production with AUTH_CONTRATO=off: anyone who reaches this port can start and read sagas');
  }
}

/** What the contract, operator and metrics routes of an app are guarded with, from the configuration. */
function httpGuards(config: Config) {
  return {
    authContract: config.AUTH_CONTRATO === 'on',
    metricsAuth: config.METRICS_AUTH === 'on',
    // Without a limit (the development default) no limiter stands in the request path at all.
    ...(config.RATE_LIMIT_TOKEN_POR_MINUTO === 0 && config.RATE_LIMIT_DIRECCION_POR_MINUTO === 0
      ? {}
      : { rateLimiter: new RateLimiter({ tokenPerMinute: config.RATE_LIMIT_TOKEN_POR_MINUTO, addressPerMinute: config.RATE_LIMIT_DIRECCION_POR_MINUTO }) }),
  };
}

export async function startOrchestratorRole(
  config: Config,
  databaseUrl: string,
  log: Logger,
  opts: OrchestratorRoleOptions = {},
): Promise<Role & { orchestrator: Orchestrator }> {
  const types = opts.types ?? sagaTypes(policyOptions(config));
  warnFaults(config.SAGA_FAULTS, log, config);
  const urls = await connectionsFor(config, databaseUrl, ['saga_orchestrator', 'saga_relay']);
  const db = await openDatabase(urls.saga_orchestrator);
  // With PULSAR_URL set, the outbox relay publishes saga events (src/events/event-relay.ts), on a connection
  // of its own role; fail before anything starts if the transport asked for cannot be had.
  const events = await prepareEventRelay(config, urls.saga_relay, log, opts).catch(async (err: unknown) => {
    await db.close();
    throw err;
  });
  const gateway =
    opts.gateway ??
    httpGateway(participantUrls(types, opts.participantEnv), config.SAGA_FAULTS, {
      maxBytes: config.PARTICIPANT_ANSWER_MAX_BYTES,
      maxDepth: config.PARTICIPANT_ANSWER_MAX_DEPTH,
    });
  const orchestrator = new Orchestrator({
    db,
    log,
    gateway,
    types,
    faults: config.SAGA_FAULTS,
    cluster: {
      leaseMs: config.SHARD_LEASE_MS,
      ...(config.SHARD_RENEW_MS === undefined ? {} : { renewMs: config.SHARD_RENEW_MS }),
      sweepMs: config.SAGA_SWEEP_MS,
    },
    writer: { commitWindowMs: config.SAGA_BATCH_WINDOW_MS },
  });
  if ('refusedAnswers' in gateway) registerBoundMetrics(orchestrator.metrics.registry, { answers: gateway as HttpGateway });
  await orchestrator.start();
  const parts = await sagaRouteParts(db, urls.saga_orchestrator, log, config.SAGA_BATCH_WINDOW_MS);
  // Idle, it looks for work every 10 s; a recorded lote wakes it at once (a missed notification waits that long).
  const lotes = new LoteWorker({ pool: parts.pool, owner: orchestrator.nodeId, log, idleMs: 10_000 });
  orchestrator.onLoteRecorded(() => lotes.wake());
  lotes.start();
  const app = orchestratorApi({
    ...parts,
    db,
    types,
    log,
    orchestrator,
    orderWaitMs: config.OPERATOR_WAIT_MS,
    ...httpGuards(config),
    ...routeBounds(config, parts.pool, opts.bodyBudget),
    faults: config.SAGA_FAULTS,
  });
  const server = await listen(app, config.PORT, config.HOST);
  const relay = events?.start(orchestrator.metrics.registry, orchestrator);
  // Without a relay the outbox metrics are still served (0 published, not active, the
  // dead letters and the lag the saga log holds), so a dashboard shows values, not "No data".
  if (events === undefined) relayMetrics(orchestrator.metrics.registry, parts.pool);
  return {
    orchestrator,
    urls: { orchestrator: server.url },
    async stop() {
      await server.close();
      await lotes.stop();
      await orchestrator.stop();
      await relay?.stop();
      await parts.changes.stop();
      await parts.pool.end();
      await db.close();
    },
  };
}

export async function startBffRole(config: Config, databaseUrl: string, log: Logger, opts: SagaTypeOptions = {}): Promise<Role> {
  const types = opts.types ?? sagaTypes(policyOptions(config));
  warnFaults(config.SAGA_FAULTS, log, config);
  const { saga_bff: url } = await connectionsFor(config, databaseUrl, ['saga_bff']);
  const db = await openDatabase(url);
  const parts = await sagaRouteParts(db, url, log, config.SAGA_BATCH_WINDOW_MS);
  // New sagas are recorded here, through the same group-commit writer as the orchestrators'.
  const writePool = createPool(url, 1, log);
  const registry = new DefinitionRegistry(types.flatMap((t) => t.versions as never[]));
  await registerDefinitions(parts.pool, registry);
  const faults = config.SAGA_FAULTS;
  const intake = new SagaIntake({ store: new SagaStore(parts.pool, new SagaWriter(writePool, { hooks: writerHooks(faults), commitWindowMs: config.SAGA_BATCH_WINDOW_MS, announceSagas: true }), { batchWindowMs: config.SAGA_BATCH_WINDOW_MS }), registry, types, log, faults });
  const { rows } = await parts.pool.query<{ n: number }>('select count(*)::int as n from saga_shards');
  const shardCount = rows[0]?.n ?? 0;
  const directory = new ShardDirectory(parts.pool, shardCount, log);
  const app = bffApi({
    ...parts,
    db,
    types,
    log,
    // New sagas start on the newest version a shard holder runs, in such a holder's shard.
    start: (req) => intake.start(req, (sagaId, tipo, versions) => directory.place(sagaId, tipo, versions)),
    orderWaitMs: config.OPERATOR_WAIT_MS,
    ...httpGuards(config),
    ...routeBounds(config, parts.pool, opts.bodyBudget),
    corsOrigins: config.CORS_ORIGINS,
    faults,
  });
  const server = await listen(app, config.BFF_PORT, config.HOST);
  return {
    urls: { bff: server.url },
    async stop() {
      await server.close();
      await parts.changes.stop();
      await parts.pool.end();
      await writePool.end();
      await db.close();
    },
  };
}

export async function startParticipantsRole(
  config: Config,
  databaseUrl: string,
  log: Logger,
  opts: { faults: boolean },
): Promise<Role & { participantEnv: Record<string, string> }> {
  // The participants own their schema and apply its migrations themselves (as DATABASE_URL's user).
  const withRoles = config.PG_ROLES === 'on';
  if (withRoles) requirePasswords(config, ['saga_participantes']);
  await migrateParticipants(databaseUrl, { roles: withRoles });
  // They connect as saga_participantes, which reaches their schema only (none of the saga log).
  const url = withRoles ? (await roleUrls(databaseUrl, ['saga_participantes'], rolePasswords(config))).saga_participantes : databaseUrl;
  const pool = participantPool(url, 10, log);
  const common = { pool, log, faults: opts.faults, pagosMontoMaximo: config.PAGOS_MONTO_MAXIMO, dedupe: config.PARTICIPANT_DEDUPE };
  const servers: RunningServer[] = [];
  try {
    servers.push(await listen(campaignsApp(common), config.CAMPAIGNS_PORT, config.HOST));
    servers.push(await listen(aeropartnersApp(common), config.APP_PORT, config.HOST));
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    await pool.end();
    throw err;
  }
  const [campaigns, app] = servers as [RunningServer, RunningServer];
  return {
    urls: { campaigns: campaigns.url, pagos: app.url, reporting: app.url },
    // The variables the campaign saga reads its participants' URLs from.
    participantEnv: { CAMPAIGNS_URL: campaigns.url, PAGOS_URL: app.url, REPORTING_URL: app.url },
    async stop() {
      await Promise.all(servers.map((s) => s.close()));
      await pool.end();
    },
  };
}
