// Each role of the system as a start function returning a handle to stop it.
// `npm start` runs them all in one process; `npm run start:<role>` runs one;
// tests start exactly the ones they need on free ports.
import { hostname } from 'node:os';
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
import { OutboxRelay } from './events/outbox-relay.js';
import { createPulsarProducer, RELAY_PRODUCER_NAME, type PulsarModule } from './events/pulsar.js';

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
  pulsarModule?: () => Promise<PulsarModule>;
}

export async function startOrchestratorRole(
  config: Config,
  databaseUrl: string,
  log: Logger,
  opts: OrchestratorRoleOptions = {},
): Promise<Role & { orchestrator: Orchestrator }> {
  // Fail before anything starts if Pulsar was asked for and cannot be had.
  // The producer name is stable across restarts, so a broker with deduplication
  // recognises the outbox row ids it has already seen from this host.
  const pulsar =
    config.PULSAR_URL === undefined
      ? undefined
      : await createPulsarProducer(
          config.PULSAR_URL,
          config.PULSAR_TOPIC,
          config.PULSAR_PRODUCER_NAME ?? `${RELAY_PRODUCER_NAME}-${hostname()}`,
          opts.pulsarModule === undefined ? {} : { loadModule: opts.pulsarModule },
        );
  const db = await openMigratedDatabase(databaseUrl);
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
  const relayPool = pulsar ? createPool(databaseUrl, 2, log) : undefined;
  const relay = pulsar && relayPool ? new OutboxRelay({ pool: relayPool, producer: pulsar.producer, log }) : undefined;
  relay?.start();
  return {
    orchestrator,
    urls: { orchestrator: server.url },
    async stop() {
      await server.close();
      await orchestrator.stop();
      await relay?.stop();
      await pulsar?.close();
      await relayPool?.end();
      await db.close();
    },
  };
}

export async function startBffRole(config: Config, databaseUrl: string, log: Logger): Promise<Role> {
  const db = await openMigratedDatabase(databaseUrl);
  const completions = new SagaCompletions(databaseUrl, log);
  await completions.start();
  const app = bffApi({
    db,
    queries: new SagaQueries(db),
    orchestratorUrl: config.ORCHESTRATOR_URL,
    log,
    completions,
    corsOrigins: config.CORS_ORIGINS,
  });
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
