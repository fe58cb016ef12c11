// The subset of the `pulsar-client` npm package (apache/pulsar-client-node) that the
// outbox relay uses. The package is an optional dependency: it wraps the C++
// libpulsar, which must be installed on the machine before `npm install` can build
// it, so nothing here imports it statically and its types are described by hand.
import type { ClientCertificateFiles } from './transport.js';

/** An opaque message id, as returned by `Producer.send`. */
export interface PulsarMessageId {
  toString(): string;
}

export interface PulsarProducerMessage {
  data: Buffer;
  /** String-valued message properties. */
  properties?: Record<string, string>;
  /** Event time in epoch milliseconds. */
  eventTimestamp?: number;
  /** With broker deduplication on, a message whose sequenceId is not above the last one
   * persisted for this producer name is dropped. */
  sequenceId?: number;
  /** Messages with the same key go to the same partition, in order. */
  partitionKey?: string;
  orderingKey?: string;
}

export interface PulsarProducer {
  send(message: PulsarProducerMessage): Promise<PulsarMessageId>;
  flush(): Promise<null>;
  close(): Promise<null>;
}

export interface PulsarProducerConfig {
  topic: string;
  /** Must be unique per topic among connected producers; deduplication state is kept per name. */
  producerName?: string;
  /** 0 means no timeout: a send then waits for the broker for ever. */
  sendTimeoutMs?: number;
  maxPendingMessages?: number;
  blockIfQueueFull?: boolean;
  batchingEnabled?: boolean;
  properties?: Record<string, string>;
}

export interface PulsarClientConfig {
  serviceUrl: string;
  operationTimeoutSeconds?: number;
  connectionTimeoutMs?: number;
  /** An authentication object of the package (AuthenticationToken here). */
  authentication?: unknown;
  tlsTrustCertsFilePath?: string;
}

export interface PulsarClient {
  createProducer(config: PulsarProducerConfig): Promise<PulsarProducer>;
  close(): Promise<null>;
}

/** The package's export (`module.exports = Pulsar`): we use its `Client`, and `AuthenticationToken` for a token. */
export interface PulsarModule {
  Client: new (config: PulsarClientConfig) => PulsarClient;
  AuthenticationToken?: new (params: { token: string }) => unknown;
  AuthenticationTls?: new (params: { certificatePath: string; privateKeyPath: string }) => unknown;
}

export const PULSAR_CLIENT_PACKAGE = 'pulsar-client';

function hasClient(value: unknown): value is PulsarModule {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { Client?: unknown }).Client === 'function'
  );
}

/**
 * Loads `pulsar-client` on demand. It is CommonJS (`module.exports = Pulsar`), so from
 * ESM the object arrives as the default export. Rejects with an explanation when the
 * optional dependency (or the libpulsar it links to) is missing.
 */
export async function loadPulsarClient(moduleName: string = PULSAR_CLIENT_PACKAGE): Promise<PulsarModule> {
  let loaded: unknown;
  try {
    // A variable specifier: TypeScript neither resolves nor needs the package's types.
    loaded = await import(moduleName);
  } catch (cause) {
    throw new Error(
      `PULSAR_URL is set but the optional dependency ${moduleName} is not installed or cannot load ` +
        `(it needs the C++ library libpulsar; see docs/pulsar.md, linked from the README). To publish saga events to Pulsar, install ` +
        `libpulsar and then run \`npm install ${moduleName}\`; otherwise unset PULSAR_URL to run without ` +
        `Pulsar (events stay in the saga_events outbox table). Cause: ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
      { cause },
    );
  }
  const candidate: unknown = (loaded as { default?: unknown }).default ?? loaded;
  if (!hasClient(candidate)) {
    throw new Error(`The module ${moduleName} loaded but has no Client constructor: is it pulsar-client?`);
  }
  return candidate;
}

/** A producer name for callers that give none. The relay names its producer after its saga log. */
export const RELAY_PRODUCER_NAME = 'saga-orchestrator-relay';

export interface PulsarProducerHandle {
  producer: PulsarProducer;
  /** Flushes and closes the producer, then the client. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Connects to `pulsarUrl` and opens a producer on `topic` under a stable name, so that
 * a broker with deduplication recognises the relay's replays after a restart.
 *
 * Pulsar refuses a second connected producer with the same name on a topic
 * (ProducerBusy). Only the active relay of a saga log opens one, so every relay of
 * that saga log uses the same name, and the broker's deduplication state follows the
 * sequence ids of the saga log whichever process publishes.
 */
export async function createPulsarProducer(
  pulsarUrl: string,
  topic: string,
  producerName: string = RELAY_PRODUCER_NAME,
  opts: {
    loadModule?: () => Promise<PulsarModule>;
    sendTimeoutMs?: number;
    operationTimeoutSeconds?: number;
    authToken?: string;
    tlsCaFile?: string;
    /** A client certificate and its key (PEM files), for a broker that authenticates by certificate (used without a token). */
    tlsCertFiles?: ClientCertificateFiles;
  } = {},
): Promise<PulsarProducerHandle> {
  const Pulsar = await (opts.loadModule ?? loadPulsarClient)();
  let authentication: unknown;
  if (opts.authToken !== undefined) {
    if (Pulsar.AuthenticationToken === undefined) throw new Error('this pulsar-client has no AuthenticationToken: PULSAR_AUTH_TOKEN cannot be used with it');
    authentication = new Pulsar.AuthenticationToken({ token: opts.authToken });
  } else if (opts.tlsCertFiles !== undefined) {
    if (Pulsar.AuthenticationTls === undefined) throw new Error('this pulsar-client has no AuthenticationTls: PULSAR_TLS_CERT_FILE cannot be used with it');
    authentication = new Pulsar.AuthenticationTls({ certificatePath: opts.tlsCertFiles.certFile, privateKeyPath: opts.tlsCertFiles.keyFile });
  }
  const client = new Pulsar.Client({
    serviceUrl: pulsarUrl,
    operationTimeoutSeconds: opts.operationTimeoutSeconds ?? 10,
    ...(authentication === undefined ? {} : { authentication }),
    ...(opts.tlsCaFile === undefined ? {} : { tlsTrustCertsFilePath: opts.tlsCaFile }),
  });
  let producer: PulsarProducer;
  try {
    producer = await client.createProducer({
      topic,
      producerName,
      // A send that fails after this rejects; the relay sends it again later.
      sendTimeoutMs: opts.sendTimeoutMs ?? 10_000,
      // Fail fast instead of blocking the relay when the local queue is full; a
      // relay batch is far smaller than this queue.
      blockIfQueueFull: false,
      maxPendingMessages: 10_000,
      // One message per sequence id, so the broker deduplicates message by message.
      batchingEnabled: false,
    });
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    producer,
    close() {
      closing ??= (async () => {
        try {
          await producer.flush().catch(() => undefined);
          await producer.close();
        } finally {
          await client.close();
        }
      })();
      return closing;
    },
  };
}
