// Each role of the system as a start function returning a handle to stop it.
// `npm start` runs them all in one process; `npm run start:<role>` runs one;
// tests start exactly the ones they need on free ports.
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { Orchestrator } from './orchestrator.js';
import { httpGateway, type ParticipantGateway } from './participants/gateway.js';
import { aeropartnersApp, campaignsApp } from './participants/services/apps.js';
import { openDatabase, migrate, type Database } from './persistence/database.js';
import { createPool } from './persistence/pool.js';
import { SagaQueries } from './persistence/saga-queries.js';
import { crearCampanaCompleta } from './sagas/crear-campana-completa/definition.js';
import { bffApi } from './http/bff-api.js';
import { SagaCompletions } from './http/saga-completions.js';
import { orchestratorApi } from './http/orchestrator-api.js';
import { listen, type RunningServer } from './http/server.js';
import { prepareEventRelay, type EventRelayOptions } from './events/event-relay.js';

export interface Role {
  /** Base URLs this role serves, by name. */
  urls: Record<string, string>;
  stop(): Promise<void>;
}

/** Opens the saga log database and applies pending migrations. */
export async function openMigratedDatabase(url: string): Promise<Database> {
  const db = await openDatabase(url);
  try {
    await migrate(db, url);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

export interface OrchestratorRoleOptions {
  /** Replaces the HTTP participant gateway (actor tests use a fake). */
  gateway?: ParticipantGateway;
  /** Replaces the `pulsar-client` module (tests use a fake with its API). */
  pulsarModule?: EventRelayOptions['pulsarModule'];
}

export async function startOrchestratorRole(
  config: Config,
  databaseUrl: string,
  log: Logger,
  opts: OrchestratorRoleOptions = {},
): Promise<Role & { orchestrator: Orchestrator }> {
  const db = await openMigratedDatabase(databaseUrl);
  // With PULSAR_URL set, the outbox relay publishes saga events (src/events/event-relay.ts);
  // fail before anything starts if the transport asked for cannot be had.
  const events = await prepareEventRelay(config, databaseUrl, log, opts).catch(async (err: unknown) => {
    await db.close();
    throw err;
  });
  const orchestrator = new Orchestrator({
    db,
    log,
    gateway:
      opts.gateway ??
      httpGateway({ campaigns: config.CAMPAIGNS_URL, pagos: config.PAGOS_URL, reporting: config.REPORTING_URL }),
    definitions: [crearCampanaCompleta({ backoffScale: config.SAGA_BACKOFF_SCALE, callTimeoutMs: config.CALL_TIMEOUT_MS })],
    cluster: {
      leaseMs: config.SHARD_LEASE_MS,
      ...(config.SHARD_RENEW_MS === undefined ? {} : { renewMs: config.SHARD_RENEW_MS }),
      sweepMs: config.SAGA_SWEEP_MS,
    },
  });
  await orchestrator.start();
  const server = await listen(orchestratorApi({ orchestrator, db, log }), config.PORT, config.HOST);
  const relay = events?.start(orchestrator.metrics.registry);
  return {
    orchestrator,
    urls: { orchestrator: server.url },
    async stop() {
      await server.close();
      await orchestrator.stop();
      await relay?.stop();
      await db.close();
    },
  };
}

export async function startBffRole(config: Config, databaseUrl: string, log: Logger): Promise<Role> {
  const db = await openMigratedDatabase(databaseUrl);
  const completions = new SagaCompletions(databaseUrl, log);
  await completions.start();
  const app = bffApi({ db, queries: new SagaQueries(db), orchestratorUrl: config.ORCHESTRATOR_URL, log, completions });
  const server = await listen(app, config.BFF_PORT, config.HOST);
  return {
    urls: { bff: server.url },
    async stop() {
      await completions.stop();
      await server.close();
      await db.close();
    },
  };
}

export async function startParticipantsRole(
  config: Config,
  databaseUrl: string,
  log: Logger,
  opts: { faults: boolean },
): Promise<Role> {
  // Participants own their tables; the shared migrations create them.
  const db = await openMigratedDatabase(databaseUrl);
  await db.close();
  const pool = createPool(databaseUrl, 10, log);
  const common = { pool, log, faults: opts.faults, pagosMontoMaximo: config.PAGOS_MONTO_MAXIMO };
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
    async stop() {
      await Promise.all(servers.map((s) => s.close()));
      await pool.end();
    },
  };
}
