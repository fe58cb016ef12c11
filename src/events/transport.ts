// One interface for the relay's three ways to reach Pulsar: the `pulsar-client`
// package (binary protocol, needs libpulsar), the binary protocol spoken here
// (binary-transport.ts, no native library) and Pulsar's WebSocket API over `ws`.
// The relay gives a transport messages in sequence-id order and gets back one
// outcome per message; everything about a connection stays inside the transport.

/** One saga event as the broker receives it. */
export interface OutboxMessage {
  /** The broker's deduplication key for this producer name: grows with every message sent. */
  sequenceId: number;
  /** The saga id: Pulsar keeps the order of messages with one key. */
  key: string;
  /** The JSON payload (see eventPayload). */
  payload: Buffer;
  properties: Record<string, string>;
  /** Event time, epoch milliseconds. */
  eventTime: number;
}

/**
 * What became of one message:
 *  - stored: the broker has it (or had it already, and dropped this copy as a duplicate);
 *  - refused: the broker or the client turned this message down; another send of the
 *    same message would be turned down again (for example, too big);
 *  - unavailable: the broker could not be reached or did not answer in time; the
 *    message may or may not be stored.
 */
export type PublishOutcome = { kind: 'stored' } | { kind: 'refused'; error: string } | { kind: 'unavailable'; error: string };

/** A client certificate and its key (PEM), presented in the TLS handshake of pulsar+ssl:// or wss://. */
export interface ClientCertificate {
  cert: string | Buffer;
  key: string | Buffer;
}

/** The same as files, for pulsar-client, which reads them itself (PULSAR_TLS_CERT_FILE, PULSAR_TLS_KEY_FILE). */
export interface ClientCertificateFiles {
  certFile: string;
  keyFile: string;
}

export type TransportName = 'pulsar-client' | 'websocket' | 'binary';

export interface EventTransport {
  readonly name: TransportName;
  /** Where it publishes, for the logs. */
  readonly target: string;
  /**
   * Sends `messages` (ascending sequence ids) in order, connecting first if needed,
   * and resolves with one outcome per message, in the same order. Never rejects.
   * Several messages (of one saga too) may be in flight at once: one producer keeps
   * the order of its sends. `replay`: the messages were sent before, with an unknown
   * outcome; a transport that batches sends them one by one, so that the broker's
   * deduplication judges each alone (a batch that straddles the highest stored
   * sequence id cannot be judged).
   */
  publish(messages: readonly OutboxMessage[], opts?: { replay?: boolean }): Promise<PublishOutcome[]>;
  /** Closes the producer, so that another relay may open one under the same name. */
  close(): Promise<void>;
}

/** The Pulsar topic name in full: `saga-events` is `persistent://public/default/saga-events`. */
export function fullTopicName(topic: string): string {
  if (/^(non-)?persistent:\/\//.test(topic)) return topic;
  const parts = topic.split('/');
  if (parts.length === 3) return `persistent://${topic}`;
  return `persistent://public/default/${topic}`;
}

/** A WebSocket API URL of the topic: ws://host:port/ws/v2/<api>/persistent/tenant/namespace/topic?<params>. */
export function topicSocketUrl(webUrl: string, api: 'producer' | 'reader', topic: string, params: Record<string, string>): string {
  const base = new URL(webUrl);
  base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = new URL(`/ws/v2/${api}/${fullTopicName(topic).replace('://', '/')}`, base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}
