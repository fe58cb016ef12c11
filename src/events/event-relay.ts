// Builds the orchestrator's outbox relay from its configuration: picks the transport
// (pulsar-client when it loads, otherwise the WebSocket API), logs the choice, and
// registers the relay's metrics.
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import { errorText, type Logger } from '../log.js';
import { createPool } from '../persistence/pool.js';
import { OutboxRelay } from './outbox-relay.js';
import { producerName as outboxProducerName } from './outbox-queries.js';
import { loadPulsarClient, type PulsarModule } from './pulsar.js';
import { pulsarClientTransport } from './pulsar-client-transport.js';
import { relayMetrics } from './relay-metrics.js';
import type { EventTransport } from './transport.js';
import { websocketTransport } from './websocket-transport.js';

export interface EventRelayOptions {
  /** Replaces the `pulsar-client` module (tests use a fake with its API). */
  pulsarModule?: () => Promise<PulsarModule>;
}

export interface RunningEventRelay {
  transport: EventTransport['name'];
  relay: OutboxRelay;
  stop(): Promise<void>;
}

/** PULSAR_WEB_URL, or the web service's default port on PULSAR_URL's host. */
export function pulsarWebUrl(config: Pick<Config, 'PULSAR_URL' | 'PULSAR_WEB_URL'>): string {
  if (config.PULSAR_WEB_URL !== undefined) return config.PULSAR_WEB_URL;
  const host = config.PULSAR_URL === undefined ? '127.0.0.1' : new URL(config.PULSAR_URL).hostname;
  return `http://${host}:8085`;
}

/**
 * Which transport to use: PULSAR_TRANSPORT=pulsar-client or websocket forces one;
 * `auto` takes pulsar-client when the package loads (libpulsar installed), else WebSocket.
 */
export async function chooseTransport(
  config: Config,
  producerName: string,
  log: Logger,
  opts: EventRelayOptions = {},
): Promise<EventTransport> {
  const serviceUrl = config.PULSAR_URL ?? 'pulsar://127.0.0.1:6650';
  const websocket = () =>
    websocketTransport({ webUrl: pulsarWebUrl(config), topic: config.PULSAR_TOPIC, producerName, log });
  if (config.PULSAR_TRANSPORT === 'websocket') return websocket();
  const load = opts.pulsarModule ?? (() => loadPulsarClient());
  let module: PulsarModule;
  try {
    module = await load();
  } catch (err) {
    // Asked for explicitly: refuse to start, with the loader's explanation.
    if (config.PULSAR_TRANSPORT === 'pulsar-client') throw err;
    log.info({ reason: errorText(err).split('. ')[0] }, 'pulsar-client is not available: publishing through the WebSocket API');
    return websocket();
  }
  return pulsarClientTransport({ serviceUrl, topic: config.PULSAR_TOPIC, producerName, log, loadModule: () => Promise.resolve(module) });
}

export interface PreparedEventRelay {
  transport: EventTransport['name'];
  /** Starts publishing, with the relay's metrics on `registry`. */
  start(registry: Registry): RunningEventRelay;
}

/**
 * When PULSAR_URL is set, picks the transport and the producer name (rejecting when
 * the configured transport cannot be had) without publishing yet, so a role can fail
 * before it starts anything; undefined without PULSAR_URL.
 */
export async function prepareEventRelay(
  config: Config,
  databaseUrl: string,
  log: Logger,
  opts: EventRelayOptions = {},
): Promise<PreparedEventRelay | undefined> {
  if (config.PULSAR_URL === undefined) return undefined;
  const pool = createPool(databaseUrl, 2, log);
  let transport: EventTransport;
  let producerName: string;
  try {
    producerName = config.PULSAR_PRODUCER_NAME ?? (await outboxProducerName(pool));
    transport = await chooseTransport(config, producerName, log, opts);
  } catch (err) {
    await pool.end();
    throw err;
  }
  log.info({ transport: transport.name, target: transport.target, producerName }, `saga events go to Pulsar through ${transport.name}`);
  return {
    transport: transport.name,
    start(registry) {
      const relay = new OutboxRelay({ databaseUrl, transport, log, metrics: relayMetrics(registry, pool) });
      relay.start();
      return {
        transport: transport.name,
        relay,
        async stop() {
          await relay.stop();
          await pool.end();
        },
      };
    },
  };
}
