// The relay's transport over the `pulsar-client` package (Pulsar's binary protocol,
// through the C++ libpulsar). The message's sequence id is given explicitly, so the
// broker deduplicates on the relay's own numbering.
import type { Logger } from 'pino';
import { createPulsarProducer, type PulsarModule, type PulsarProducerHandle, type PulsarProducerMessage } from './pulsar.js';
import { errorText } from '../log.js';
import type { ClientCertificateFiles, EventTransport, OutboxMessage, PublishOutcome } from './transport.js';

export interface PulsarClientTransportOptions {
  serviceUrl: string;
  topic: string;
  producerName: string;
  log: Logger;
  loadModule?: () => Promise<PulsarModule>;
  sendTimeoutMs?: number;
  /** Token authentication (the package's AuthenticationToken). */
  authToken?: string;
  /** For pulsar+ssl://: a PEM file of the certificates to trust (tlsTrustCertsFilePath). */
  tlsCaFile?: string;
  /** A client certificate and its key (PEM files), used when there is no token. */
  tlsCertFiles?: ClientCertificateFiles;
}

// libpulsar results that concern one message: sending it again gives the same answer.
// Everything else (timeouts, disconnections, a busy producer name, a full queue) is
// about the connection or the broker, and the message may go through later.
const REFUSALS = /\b(MessageTooBig|InvalidMessage|ChecksumError)\b/;

export function pulsarClientTransport(opts: PulsarClientTransportOptions): EventTransport {
  let handle: PulsarProducerHandle | undefined;
  const drop = async (): Promise<void> => {
    const closing = handle;
    handle = undefined;
    await closing?.close().catch((err: unknown) => opts.log.debug({ err: errorText(err) }, 'closing the Pulsar producer failed'));
  };
  return {
    name: 'pulsar-client',
    target: `${opts.serviceUrl} ${opts.topic}`,
    async publish(messages: readonly OutboxMessage[]): Promise<PublishOutcome[]> {
      if (!handle) {
        try {
          handle = await createPulsarProducer(opts.serviceUrl, opts.topic, opts.producerName, {
            ...(opts.loadModule === undefined ? {} : { loadModule: opts.loadModule }),
            ...(opts.sendTimeoutMs === undefined ? {} : { sendTimeoutMs: opts.sendTimeoutMs }),
            ...(opts.authToken === undefined ? {} : { authToken: opts.authToken }),
            ...(opts.tlsCaFile === undefined ? {} : { tlsCaFile: opts.tlsCaFile }),
            ...(opts.tlsCertFiles === undefined ? {} : { tlsCertFiles: opts.tlsCertFiles }),
          });
        } catch (err) {
          const error = `cannot open a producer: ${errorText(err)}`;
          return messages.map(() => ({ kind: 'unavailable', error }));
        }
      }
      const producer = handle.producer;
      // Sent without waiting in between: the producer keeps the order of send() calls.
      const results = await Promise.allSettled(messages.map((m) => producer.send(pulsarMessage(m))));
      const outcomes = results.map((r): PublishOutcome => {
        if (r.status === 'fulfilled') return { kind: 'stored' };
        const error = errorText(r.reason);
        return REFUSALS.test(error) ? { kind: 'refused', error } : { kind: 'unavailable', error };
      });
      // A producer that failed for the connection's sake is opened anew next time.
      if (outcomes.some((o) => o.kind === 'unavailable')) await drop();
      return outcomes;
    },
    close: drop,
  };
}

export function pulsarMessage(m: OutboxMessage): PulsarProducerMessage {
  return {
    data: m.payload,
    properties: m.properties,
    partitionKey: m.key,
    sequenceId: m.sequenceId,
    eventTimestamp: m.eventTime,
  };
}
