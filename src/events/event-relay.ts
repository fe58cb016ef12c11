// Builds the orchestrator's outbox relays from its configuration: picks the transport
// (pulsar-client when it loads, otherwise the binary protocol spoken here), logs the choice, runs the
// process's one relay over the shards it holds (src/events/outbox-relay.ts), and
// registers the relay's metrics.
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import { errorText, type Logger } from '../log.js';
import { createPool } from '../persistence/pool.js';
import type { ShardLease, ShardListener } from '../cluster/shards.js';
import { producerName as outboxProducerName, shardProducerName } from './outbox-queries.js';
import { OutboxRelay } from './outbox-relay.js';
import { loadPulsarClient, type PulsarModule } from './pulsar.js';
import { pulsarClientTransport } from './pulsar-client-transport.js';
import { relayMetrics } from './relay-metrics.js';
import type { EventTransport } from './transport.js';
import { BinaryClient } from './binary-transport.js';
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

/** Opens producers of one transport: one per shard, each under its shard's name. */
export interface TransportFactory {
  name: EventTransport['name'];
  /** A producer under `producerName` (not connected until its first publish). */
  create(producerName: string): EventTransport;
}

/**
 * Which transport to use: PULSAR_TRANSPORT=pulsar-client, binary or websocket forces one;
 * `auto` takes pulsar-client when the package loads (libpulsar installed), else the
 * binary protocol spoken here (src/events/binary-transport.ts), over TLS for a
 * pulsar+ssl:// URL. Decided (and said) once for all the shards' producers; the binary
 * transport's producers share one connection (one BinaryClient per process).
 */
export async function chooseTransportFactory(config: Config, log: Logger, opts: EventRelayOptions = {}): Promise<TransportFactory> {
  const serviceUrl = config.PULSAR_URL ?? 'pulsar://127.0.0.1:6650';
  const authToken = config.PULSAR_AUTH_TOKEN;
  const tlsCa = config.PULSAR_TLS_CA_FILE === undefined ? undefined : readFileSync(config.PULSAR_TLS_CA_FILE);
  const certFiles = config.PULSAR_TLS_CERT_FILE === undefined || config.PULSAR_TLS_KEY_FILE === undefined ? undefined : { certFile: config.PULSAR_TLS_CERT_FILE, keyFile: config.PULSAR_TLS_KEY_FILE };
  const tlsCert = certFiles === undefined ? undefined : { cert: readFileSync(certFiles.certFile), key: readFileSync(certFiles.keyFile) };
  const auth = {
    ...(authToken === undefined ? {} : { authToken }),
    ...(tlsCa === undefined ? {} : { tlsCa }),
    ...(tlsCert === undefined ? {} : { tlsCert }),
  };
  const websocket: TransportFactory = {
    name: 'websocket',
    create: (producerName) => websocketTransport({ webUrl: pulsarWebUrl(config), topic: config.PULSAR_TOPIC, producerName, log, ...auth }),
  };
  const binaryFactory = (): TransportFactory => {
    const client = new BinaryClient({ serviceUrl, topic: config.PULSAR_TOPIC, log, ...auth });
    return { name: 'binary', create: (producerName) => client.producer(producerName) };
  };
  if (config.PULSAR_TRANSPORT === 'websocket') return websocket;
  if (config.PULSAR_TRANSPORT === 'binary') return binaryFactory();
  const load = opts.pulsarModule ?? (() => loadPulsarClient());
  let module: PulsarModule;
  try {
    module = await load();
  } catch (err) {
    // Asked for explicitly: refuse to start, with the loader's explanation.
    if (config.PULSAR_TRANSPORT === 'pulsar-client') throw err;
    const reason = errorText(err).split('. ')[0];
    log.info({ reason }, 'pulsar-client is not available: publishing over the binary protocol without it');
    return binaryFactory();
  }
  return {
    name: 'pulsar-client',
    create: (producerName) =>
      pulsarClientTransport({
        serviceUrl,
        topic: config.PULSAR_TOPIC,
        producerName,
        log,
        loadModule: () => Promise.resolve(module),
        ...(authToken === undefined ? {} : { authToken }),
        ...(config.PULSAR_TLS_CA_FILE === undefined ? {} : { tlsCaFile: config.PULSAR_TLS_CA_FILE }),
        ...(certFiles === undefined ? {} : { tlsCertFiles: certFiles }),
      }),
  };
}

/** Where the relays learn which shards the process holds (the orchestrator, from its lease manager). */
export interface ShardSource {
  /** Calls `listener.acquired` for each shard held now, then on every change; returns a function that ends the calls. */
  onShards(listener: ShardListener): () => void;
  /** A relay's write was refused by the fence: `lease` is not held any more. */
  leaseFenced(lease: ShardLease): void;
}

export interface PreparedEventRelay {
  transport: EventTransport['name'];
  /** Starts publishing the shards `shards` holds, with the relays' metrics on `registry`. */
  start(registry: Registry, shards: ShardSource): RunningEventRelay;
}

/**
 * When PULSAR_URL is set, picks the transport and the producer names' prefix (rejecting
 * when the configured transport cannot be had) without publishing yet, so a role can
 * fail before it starts anything; undefined without PULSAR_URL.
 */
export async function prepareEventRelay(
  config: Config,
  databaseUrl: string,
  log: Logger,
  opts: EventRelayOptions = {},
): Promise<PreparedEventRelay | undefined> {
  if (config.PULSAR_URL === undefined) return undefined;
  // The relay's statements run one after the other; the probe and the metrics use the others.
  const pool = createPool(databaseUrl, 4, log);
  let factory: TransportFactory;
  let producerPrefix: string;
  try {
    producerPrefix = config.PULSAR_PRODUCER_NAME ?? (await outboxProducerName(pool));
    factory = await chooseTransportFactory(config, log, opts);
  } catch (err) {
    await pool.end();
    throw err;
  }
  const target = factory.create(shardProducerName(producerPrefix, 0)).target;
  log.info(
    { transport: factory.name, target, producerNames: `${producerPrefix}-<shard>` },
    `saga events go to Pulsar through ${factory.name}, each shard's from the process that holds it`,
  );
  return {
    transport: factory.name,
    start(registry, source) {
      let relay: OutboxRelay | undefined = undefined;
      const metrics = relayMetrics(registry, pool, () => relay?.shards() ?? []);
      relay = new OutboxRelay({
        db: pool,
        log,
        producerPrefix,
        transport: (name) => factory.create(name),
        metrics,
        onFenced: (lease) => source.leaseFenced(lease),
      });
      const running = relay;
      running.start();
      const unsubscribe = source.onShards(running);
      return {
        transport: factory.name,
        relay: running,
        async stop() {
          unsubscribe();
          await running.stop();
          await pool.end();
        },
      };
    },
  };
}
