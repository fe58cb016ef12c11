// The relay's transport over Pulsar's WebSocket API (/ws/v2/producer/...), for
// machines without libpulsar. Checked against the Pulsar 4.0 websocket module
// (ProducerHandler, data/ProducerMessage): the producer takes `producerName` and
// `initialSequenceId` as query parameters, and each message a payload, key,
// properties, event time and context; a message's own `sequenceId` field is NOT
// read. The proxy's producer numbers the messages of a session itself, from
// initialSequenceId + 1 upwards. So this transport opens a session with
// initialSequenceId = (first sequence id to send) - 1 and sends consecutive
// sequence ids only; at a gap, or after any failed message, it opens a new session.
// The broker then sees the relay's own sequence ids, and drops replays (answering
// them as stored) exactly as with the binary client.
//
// Throughput: messages are pipelined (up to maxPendingMessages unacknowledged, acks
// matched by their context) and the proxy's producer batches them (batchingEnabled,
// batchingMaxMessages, batchingMaxPublishDelay, maxPendingMessages: the proxy reads
// the last three only when batchingEnabled is given). One producer keeps the order of
// its sends, so several events of one saga may be in flight at once. A batch is one
// entry for deduplication (judged by its lowest and highest sequence ids), so a replay
// of messages whose outcome is unknown goes through an unbatched session: a batch
// formed anew could straddle the highest id the broker stored, which it cannot judge.
import WebSocket from 'ws';
import type { Logger } from 'pino';
import { errorText } from '../log.js';
import { fullTopicName, topicSocketUrl, type ClientCertificate, type EventTransport, type OutboxMessage, type PublishOutcome } from './transport.js';

export interface WebSocketTransportOptions {
  /** The broker's web service, e.g. http://127.0.0.1:8085. */
  webUrl: string;
  topic: string;
  producerName: string;
  log: Logger;
  /** How long the broker may take to store one message before it counts as unavailable. */
  sendTimeoutMs?: number;
  /** How long a connection attempt may take. */
  connectTimeoutMs?: number;
  /** The proxy producer batches messages (default true); replays are never batched. */
  batchingEnabled?: boolean;
  /** At most this many messages per batch (default 1000). */
  batchingMaxMessages?: number;
  /** A batch is sent at the latest this long after its first message (ms, default 5). */
  batchingMaxPublishDelayMs?: number;
  /** Messages sent and not yet acknowledged, at most (default 10000): the proxy's queue has room for them. */
  maxPendingMessages?: number;
  /** A token for a broker with token authentication, sent as `Authorization: Bearer`. */
  authToken?: string;
  /** For a wss:// web service: the certificates to trust (PEM) instead of the system's. */
  tlsCa?: string | Buffer;
  /** For a wss:// web service: a client certificate and its key (PEM), presented in the TLS handshake. */
  tlsCert?: ClientCertificate;
}

/** The answer to one message (Pulsar's ProducerAck). */
interface ProducerAck {
  result: string;
  messageId?: string;
  errorMsg?: string;
  errorCode?: number;
  context?: string;
}

// WebSocketError codes of a message the proxy could not read: sending it again
// gives the same answer.
const UNREADABLE = new Set([3 /* FailedToDeserializeFromJSON */, 7 /* PayloadEncodingError */]);
// The Java client's refusals of one message (UnknownError with this text).
const REFUSED_TEXT = /InvalidMessageException|MessageTooBig|exceeds the max|max message size/i;

class Session {
  private readonly waiting = new Map<string, (outcome: PublishOutcome) => void>();
  private closedError: string | undefined;
  /** The sequence id the proxy will give the next message of this session. */
  nextSequenceId: number;

  constructor(
    readonly ws: WebSocket,
    initialSequenceId: number,
    readonly batching: boolean,
  ) {
    this.nextSequenceId = initialSequenceId + 1;
    ws.on('message', (data: WebSocket.RawData) => this.onAck(data));
    ws.on('close', (code: number) => this.fail(`connection closed (${code})`));
    ws.on('error', (err: Error) => this.fail(err.message));
  }

  get open(): boolean {
    return this.closedError === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  send(m: OutboxMessage): Promise<PublishOutcome> {
    const context = String(m.sequenceId);
    this.nextSequenceId = m.sequenceId + 1;
    if (!this.open) return Promise.resolve({ kind: 'unavailable', error: this.closedError ?? 'not connected' });
    return new Promise((resolve) => {
      this.waiting.set(context, resolve);
      this.ws.send(
        JSON.stringify({
          payload: m.payload.toString('base64'),
          key: m.key,
          properties: m.properties,
          eventTime: new Date(m.eventTime).toISOString(),
          context,
        }),
        (err?: Error) => {
          if (err) this.settle(context, { kind: 'unavailable', error: err.message });
        },
      );
    });
  }

  /** Settles every message still waiting as unavailable and drops the connection. */
  fail(error: string): void {
    this.closedError ??= error;
    for (const context of [...this.waiting.keys()]) this.settle(context, { kind: 'unavailable', error });
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  async close(): Promise<void> {
    this.fail('closed by the relay');
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
  }

  private settle(context: string, outcome: PublishOutcome): void {
    const resolve = this.waiting.get(context);
    if (!resolve) return;
    this.waiting.delete(context);
    resolve(outcome);
  }

  private onAck(data: WebSocket.RawData): void {
    let ack: ProducerAck;
    try {
      ack = JSON.parse(rawText(data)) as ProducerAck;
    } catch {
      return;
    }
    if (ack.context === undefined) return;
    if (ack.result === 'ok') {
      this.settle(ack.context, { kind: 'stored' });
      return;
    }
    const error = `${ack.result}: ${ack.errorMsg ?? ''}`;
    const refused = UNREADABLE.has(ack.errorCode ?? 0) || REFUSED_TEXT.test(ack.errorMsg ?? '');
    this.settle(ack.context, refused ? { kind: 'refused', error } : { kind: 'unavailable', error });
  }
}

export function websocketTransport(opts: WebSocketTransportOptions): EventTransport {
  const sendTimeoutMs = opts.sendTimeoutMs ?? 10_000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  const maxPending = opts.maxPendingMessages ?? 10_000;
  if (!Number.isInteger(maxPending) || maxPending < 1) throw new RangeError('maxPendingMessages must be a positive integer');
  let session: Session | undefined;

  const connect = async (initialSequenceId: number, batching: boolean): Promise<Session> => {
    const url = topicSocketUrl(opts.webUrl, 'producer', opts.topic, producerParams(opts, initialSequenceId, batching));
    // A producer closed a moment ago may still hold the name on the broker (409).
    for (let attempt = 1; ; attempt++) {
      try {
        return await open(url, initialSequenceId, batching, { timeoutMs: connectTimeoutMs, authToken: opts.authToken, tlsCa: opts.tlsCa, tlsCert: opts.tlsCert });
      } catch (err) {
        if (!(err instanceof BusyError) || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const batchingEnabled = opts.batchingEnabled ?? true;

  const publishRun = async (run: readonly OutboxMessage[], replay: boolean): Promise<PublishOutcome[]> => {
    const first = run[0]!;
    const batching = batchingEnabled && !replay;
    if (!session?.open || session.nextSequenceId !== first.sequenceId || session.batching !== batching) {
      await session?.close();
      session = undefined;
      try {
        session = await connect(first.sequenceId - 1, batching);
      } catch (err) {
        const error = `cannot open a producer: ${errorText(err)}`;
        return run.map(() => ({ kind: 'unavailable', error }));
      }
    }
    const current = session;
    // The proxy answers within sendTimeoutMs; this bound, re-armed at every answer, is
    // only for a proxy gone silent.
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => current.fail('no answer from the broker'), sendTimeoutMs + connectTimeoutMs);
    };
    arm();
    try {
      const outcomes = await pipeline(run, maxPending, (m) => current.send(m), arm);
      // After a failed message the proxy's numbering may differ from ours: start afresh.
      if (outcomes.some((o) => o.kind !== 'stored')) {
        await current.close();
        if (session === current) session = undefined;
      }
      return outcomes;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    name: 'websocket',
    target: `${opts.webUrl} ${fullTopicName(opts.topic)}`,
    async publish(messages: readonly OutboxMessage[], publishOpts: { replay?: boolean } = {}): Promise<PublishOutcome[]> {
      const outcomes: PublishOutcome[] = [];
      for (const run of consecutiveRuns(messages)) outcomes.push(...(await publishRun(run, publishOpts.replay === true)));
      return outcomes;
    },
    async close(): Promise<void> {
      const closing = session;
      session = undefined;
      await closing?.close();
    },
  };
}

class BusyError extends Error {}

/** A text frame's content, whichever form `ws` delivers it in. */
export function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** The producer URL's query: name and numbering, send timeout, and batching unless `batching` is false. */
export function producerParams(opts: WebSocketTransportOptions, initialSequenceId: number, batching: boolean): Record<string, string> {
  const params: Record<string, string> = {
    producerName: opts.producerName,
    initialSequenceId: String(initialSequenceId),
    sendTimeoutMillis: String(opts.sendTimeoutMs ?? 10_000),
    // Read by the proxy only when batchingEnabled is given: given always, with batching off too.
    batchingEnabled: String(batching),
    maxPendingMessages: String(opts.maxPendingMessages ?? 10_000),
  };
  if (batching) {
    params.batchingMaxMessages = String(opts.batchingMaxMessages ?? 1_000);
    params.batchingMaxPublishDelay = String(opts.batchingMaxPublishDelayMs ?? 5);
  }
  return params;
}

/**
 * Sends `items` in order, at most `window` unanswered at a time, and resolves with
 * their outcomes in the same order; `progress` is called at every answer.
 */
export async function pipeline<T, R>(items: readonly T[], window: number, send: (item: T) => Promise<R>, progress: () => void = () => undefined): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await send(items[i]!);
      progress();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, items.length) }, worker));
  return results;
}

function open(
  url: string,
  initialSequenceId: number,
  batching: boolean,
  opts: Pick<WebSocketTransportOptions, 'authToken' | 'tlsCa' | 'tlsCert'> & { timeoutMs: number },
): Promise<Session> {
  return new Promise((resolve, reject) => {
    // No permessage-deflate: compressing each small frame cost more CPU (here and in the
    // broker) than everything else the relay does per event.
    const ws = new WebSocket(url, {
      handshakeTimeout: opts.timeoutMs,
      perMessageDeflate: false,
      ...(opts.authToken === undefined ? {} : { headers: { authorization: `Bearer ${opts.authToken}` } }),
      ...(opts.tlsCa === undefined ? {} : { ca: opts.tlsCa }),
      ...(opts.tlsCert === undefined ? {} : { cert: opts.tlsCert.cert, key: opts.tlsCert.key }),
    });
    ws.once('open', () => {
      ws.removeAllListeners('error');
      resolve(new Session(ws, initialSequenceId, batching));
    });
    ws.once('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      ws.terminate();
      reject(status === 409 ? new BusyError('producer name busy (409)') : new Error(`HTTP ${status} from the broker`));
    });
    ws.on('error', (err: Error) => reject(err));
  });
}

/** Splits messages into runs of consecutive sequence ids. */
export function consecutiveRuns(messages: readonly OutboxMessage[]): OutboxMessage[][] {
  const runs: OutboxMessage[][] = [];
  for (const m of messages) {
    const run = runs.at(-1);
    const last = run?.at(-1);
    if (run && last && m.sequenceId === last.sequenceId + 1) run.push(m);
    else runs.push([m]);
  }
  return runs;
}
