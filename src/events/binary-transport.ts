// The relay's transport over Pulsar's binary protocol (pulsar://, port 6650), spoken
// here over a plain TCP socket (src/events/pulsar-wire.ts encodes it): no libpulsar, no
// WebSocket proxy. A run of messages goes out as batches: one SEND frame carries up to
// `batchMaxMessages` messages, each with its key (the saga id), properties, event time
// and sequence id; the frame's sequence id is the run's first and its highest sequence
// id the run's last, so the broker's deduplication judges the batch by its range, and
// stores it as one entry. Frames are pipelined on the connection and answered in order.
// A replay goes one message per frame, so the broker judges each alone.
//
// Connecting follows the protocol: CONNECT, then a topic lookup (following redirects
// to the broker that owns the topic), then PRODUCER under the shard's name (a name
// still held by a producer that just left is tried again for up to two seconds).
// The broker's pings are answered.
import net from 'node:net';
import type { Logger } from 'pino';
import { errorText } from '../log.js';
import { fullTopicName, type EventTransport, type OutboxMessage, type PublishOutcome } from './transport.js';
import {
  CommandType,
  FrameReader,
  PROTOCOL_VERSION,
  ServerError,
  commandFrame,
  encodeMessage as encodeFields,
  int,
  sendFrame,
  str,
  type Command,
  type Field,
} from './pulsar-wire.js';

export interface BinaryTransportOptions {
  /** pulsar://host:port */
  serviceUrl: string;
  topic: string;
  producerName: string;
  log: Logger;
  /** How long a SEND may wait for its receipt, re-armed at each receipt (default 10 s). */
  sendTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Messages in one SEND frame at most (default 1000). */
  batchMaxMessages?: number;
}

/** The broker's largest message when it does not say (its maxMessageSize default, 5 MiB). */
const DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024;
/** Room for the frame's command and metadata beside a batch's payload. */
const FRAME_OVERHEAD = 16 * 1024;
const PRODUCER_ID = 1;
// Errors of a SEND that sending the same bytes again would get again.
const REFUSING = new Set<number>([ServerError.ChecksumError, ServerError.NotAllowedError]);

class ProducerBusy extends Error {}

/** One TCP connection to a broker, CONNECTed. */
class Connection {
  private readonly reader = new FrameReader(DEFAULT_MAX_MESSAGE_SIZE + FRAME_OVERHEAD);
  private readonly requests = new Map<number, { answer: (c: Command) => void; fail: (err: Error) => void }>();
  private readonly receipts = new Map<number, (outcome: PublishOutcome) => void>();
  private nextRequest = 1;
  private closedError: string | undefined;
  maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  /** Re-armed at every receipt: the caller's watchdog. */
  onReceipt: () => void = () => undefined;

  private constructor(
    readonly url: string,
    private readonly socket: net.Socket,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let commands: Command[];
      try {
        commands = this.reader.push(chunk);
      } catch (err) {
        this.fail(`unreadable frame: ${errorText(err)}`);
        return;
      }
      for (const c of commands) this.dispatch(c);
    });
    socket.on('close', () => this.fail('connection closed'));
    socket.on('error', (err) => this.fail(err.message));
  }

  static async open(url: string, timeoutMs: number): Promise<Connection> {
    const { hostname, port } = new URL(url);
    const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6650) });
    const connection = new Connection(url, socket);
    const connected = await connection.exchange(
      CommandType.CONNECT,
      [
        [1, 'saga-orchestrator-relay'],
        [4, PROTOCOL_VERSION],
      ],
      undefined,
      timeoutMs,
    );
    if (connected.type !== CommandType.CONNECTED) {
      connection.close();
      throw new Error(`the broker answered CONNECT with ${describe(connected)}`);
    }
    connection.maxMessageSize = int(connected.fields, 3) ?? DEFAULT_MAX_MESSAGE_SIZE;
    return connection;
  }

  get open(): boolean {
    return this.closedError === undefined;
  }

  /**
   * Sends a command; with a request id, resolves with the answer that carries it, else with
   * the answer to CONNECT (CONNECTED, or an ERROR that names no request). A broker that does
   * not answer in time is given up: the connection is dropped, and its socket with it.
   */
  exchange(type: number, fields: readonly Field[], requestIdField: number | undefined, timeoutMs: number): Promise<Command> {
    const requestId = this.nextRequest++;
    const command = requestIdField === undefined ? fields : [...fields, [requestIdField, requestId] as const];
    return new Promise((resolve, reject) => {
      if (!this.open) {
        reject(new Error(this.closedError));
        return;
      }
      const key = requestIdField === undefined ? 0 : requestId;
      const timer = setTimeout(() => this.fail(`no answer from the broker within ${timeoutMs} ms`), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.requests.delete(key);
      };
      this.requests.set(key, {
        answer: (c) => {
          done();
          resolve(c);
        },
        fail: (err) => {
          done();
          reject(err);
        },
      });
      this.socket.write(commandFrame(type, command));
    });
  }

  /** Writes a SEND frame; the promise settles with its receipt or error. */
  send(sequenceId: number, frame: readonly Buffer[]): Promise<PublishOutcome> {
    return new Promise((resolve) => {
      if (!this.open) {
        resolve({ kind: 'unavailable', error: this.closedError ?? 'not connected' });
        return;
      }
      this.receipts.set(sequenceId, resolve);
      for (const part of frame) this.socket.write(part);
    });
  }

  /** Holds this tick's writes and sends them together at its end. */
  coalesce(): void {
    this.socket.cork();
    process.nextTick(() => this.socket.uncork());
  }

  private dispatch(c: Command): void {
    switch (c.type) {
      case CommandType.PING:
        this.socket.write(commandFrame(CommandType.PONG, []));
        return;
      case CommandType.SEND_RECEIPT:
        this.settle(int(c.fields, 2), { kind: 'stored' });
        this.onReceipt();
        return;
      case CommandType.SEND_ERROR: {
        const code = int(c.fields, 3) ?? ServerError.UnknownError;
        const error = `${serverErrorName(code)}: ${str(c.fields, 4) ?? ''}`;
        this.settle(int(c.fields, 2), REFUSING.has(code) ? { kind: 'refused', error } : { kind: 'unavailable', error });
        return;
      }
      case CommandType.CLOSE_PRODUCER:
        this.fail('the broker closed the producer');
        return;
      case CommandType.CONNECTED:
        this.requests.get(0)?.answer(c);
        return;
      default: {
        // LOOKUP_RESPONSE carries its request id in field 4; PRODUCER_SUCCESS, SUCCESS and ERROR in field 1.
        const requestId = int(c.fields, c.type === CommandType.LOOKUP_RESPONSE ? 4 : 1);
        const request = requestId === undefined ? undefined : this.requests.get(requestId);
        // A refused CONNECT (authentication, for one) comes as an ERROR with no request of ours.
        (request ?? (c.type === CommandType.ERROR ? this.requests.get(0) : undefined))?.answer(c);
      }
    }
  }

  private settle(sequenceId: number | undefined, outcome: PublishOutcome): void {
    if (sequenceId === undefined) return;
    const resolve = this.receipts.get(sequenceId);
    if (resolve === undefined) return;
    this.receipts.delete(sequenceId);
    resolve(outcome);
  }

  /** Every SEND still waiting settles as unavailable, every request fails, and the connection is dropped. */
  fail(error: string): void {
    this.closedError ??= error;
    for (const [sequenceId] of [...this.receipts]) this.settle(sequenceId, { kind: 'unavailable', error });
    for (const request of [...this.requests.values()]) request.fail(new Error(error));
    this.socket.destroy();
  }

  close(): void {
    this.fail('closed');
  }

  async closeProducer(timeoutMs: number): Promise<void> {
    if (!this.open) return;
    await this.exchange(CommandType.CLOSE_PRODUCER, [[1, PRODUCER_ID]], 2, timeoutMs).catch(() => undefined);
    this.close();
  }
}

function serverErrorName(code: number): string {
  const entry = Object.entries(ServerError).find(([, v]) => v === code);
  return entry?.[0] ?? `ServerError ${code}`;
}

function describe(c: Command): string {
  if (c.type === CommandType.ERROR) return `${serverErrorName(int(c.fields, 2) ?? 0)}: ${str(c.fields, 3) ?? ''}`;
  return `command ${c.type}`;
}

/** Finds the broker that serves `topic` (following redirects) and returns a connection to it. */
async function connectToOwner(serviceUrl: string, topic: string, timeoutMs: number): Promise<Connection> {
  let connection = await Connection.open(serviceUrl, timeoutMs);
  let authoritative = false;
  for (let hop = 0; hop < 8; hop++) {
    const answer = await connection.exchange(
      CommandType.LOOKUP,
      [
        [1, topic],
        [3, authoritative],
      ],
      2,
      timeoutMs,
    );
    if (answer.type !== CommandType.LOOKUP_RESPONSE) {
      connection.close();
      throw new Error(`the topic lookup failed: ${describe(answer)}`);
    }
    const kind = int(answer.fields, 3); // 0 Redirect, 1 Connect, 2 Failed
    const brokerUrl = str(answer.fields, 1);
    if (kind === 2 || brokerUrl === undefined) {
      connection.close();
      throw new Error(`the topic lookup failed: ${str(answer.fields, 7) ?? serverErrorName(int(answer.fields, 6) ?? 0)}`);
    }
    const throughService = int(answer.fields, 8) === 1;
    if (kind === 1 && (throughService || sameAddress(brokerUrl, connection.url))) return connection;
    connection.close();
    connection = await Connection.open(kind === 1 || !throughService ? brokerUrl : serviceUrl, timeoutMs);
    if (kind === 1) return connection;
    authoritative = int(answer.fields, 5) === 1;
  }
  connection.close();
  throw new Error('the topic lookup was redirected too many times');
}

function sameAddress(a: string, b: string): boolean {
  const x = new URL(a);
  const y = new URL(b);
  return x.hostname === y.hostname && (x.port || '6650') === (y.port || '6650');
}

/** The frames of a run: batches (or one message each for a replay), and the messages too big to go at all. */
export function planFrames(
  run: readonly OutboxMessage[],
  producerName: string,
  opts: { replay: boolean; maxMessages: number; maxBytes: number; now: number },
): { frames: { messages: OutboxMessage[]; parts: Buffer[] }[]; tooBig: Set<OutboxMessage> } {
  const frames: { messages: OutboxMessage[]; parts: Buffer[] }[] = [];
  const tooBig = new Set<OutboxMessage>();
  let batch: { m: OutboxMessage; entry: Buffer[] }[] = [];
  let batchBytes = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const first = batch[0]!.m;
    const last = batch.at(-1)!.m;
    const payload = batch.flatMap((b) => b.entry);
    const size = payload.reduce((n, b) => n + b.length, 0);
    frames.push({
      messages: batch.map((b) => b.m),
      parts: sendFrame(
        [
          [1, PRODUCER_ID],
          [2, first.sequenceId],
          [3, batch.length],
          [6, last.sequenceId],
        ],
        [
          [1, producerName],
          [2, first.sequenceId],
          [3, opts.now],
          [9, size],
          [11, batch.length],
          [24, last.sequenceId],
        ],
        payload,
      ),
    });
    batch = [];
    batchBytes = 0;
  };
  for (const m of run) {
    if (m.payload.length + FRAME_OVERHEAD > opts.maxBytes) {
      tooBig.add(m);
      continue;
    }
    if (opts.replay) {
      frames.push({
        messages: [m],
        parts: sendFrame(
          [
            [1, PRODUCER_ID],
            [2, m.sequenceId],
            [3, 1],
          ],
          [[1, producerName], [2, m.sequenceId], [3, opts.now], ...keyValues(4, m.properties), [6, m.key], [12, m.eventTime]],
          [m.payload],
        ),
      });
      continue;
    }
    const single = encodeSingle(m);
    const entry = [single.size, single.meta, m.payload];
    const bytes = 4 + single.meta.length + m.payload.length;
    if (batch.length >= opts.maxMessages || batchBytes + bytes + FRAME_OVERHEAD > opts.maxBytes) flush();
    batch.push({ m, entry });
    batchBytes += bytes;
  }
  flush();
  return { frames, tooBig };
}

/** A message's properties as repeated KeyValue fields numbered `field` (4 in MessageMetadata, 1 in SingleMessageMetadata). */
function keyValues(field: number, properties: Record<string, string>): Field[] {
  return Object.entries(properties).map(([key, value]): Field => [field, [[1, key], [2, value]]]);
}

function encodeSingle(m: OutboxMessage): { size: Buffer; meta: Buffer } {
  const meta = encodeFields([
    ...keyValues(1, m.properties),
    [2, m.key],
    [3, m.payload.length],
    [5, m.eventTime],
    [8, m.sequenceId],
  ]);
  const size = Buffer.allocUnsafe(4);
  size.writeUInt32BE(meta.length);
  return { size, meta };
}

export function binaryTransport(opts: BinaryTransportOptions): EventTransport {
  const sendTimeoutMs = opts.sendTimeoutMs ?? 10_000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  const maxMessages = opts.batchMaxMessages ?? 1000;
  const topic = fullTopicName(opts.topic);
  let connection: Connection | undefined;

  const openProducer = async (): Promise<Connection> => {
    for (let attempt = 1; ; attempt++) {
      const c = await connectToOwner(opts.serviceUrl, topic, connectTimeoutMs);
      try {
        const answer = await c.exchange(
          CommandType.PRODUCER,
          [
            [1, topic],
            [2, PRODUCER_ID],
            [4, opts.producerName],
            [9, true],
          ],
          3,
          connectTimeoutMs,
        );
        if (answer.type === CommandType.ERROR) {
          const error = describe(answer);
          throw int(answer.fields, 2) === ServerError.ProducerBusy ? new ProducerBusy(error) : new Error(error);
        }
        if (answer.type !== CommandType.PRODUCER_SUCCESS) throw new Error(`the broker answered PRODUCER with ${describe(answer)}`);
        // The producer asks for the shared access mode (the default), which the broker grants at
        // once; a producer kept waiting (producer_ready false, for exclusive access) is not used.
        if (int(answer.fields, 6) === 0) throw new Error('the broker keeps the producer waiting for access to the topic');
        return c;
      } catch (err) {
        c.close();
        if (!(err instanceof ProducerBusy) || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  return {
    name: 'binary',
    target: `${opts.serviceUrl} ${topic}`,
    async publish(messages: readonly OutboxMessage[], publishOpts: { replay?: boolean } = {}): Promise<PublishOutcome[]> {
      if (messages.length === 0) return [];
      if (!connection?.open) {
        try {
          connection = await openProducer();
        } catch (err) {
          connection = undefined;
          const error = `cannot open a producer: ${errorText(err)}`;
          return messages.map(() => ({ kind: 'unavailable', error }));
        }
      }
      const current = connection;
      const { frames, tooBig } = planFrames(messages, opts.producerName, {
        replay: publishOpts.replay === true,
        maxMessages,
        maxBytes: current.maxMessageSize,
        now: Date.now(),
      });
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => current.fail('no answer from the broker'), sendTimeoutMs);
      };
      current.onReceipt = arm;
      arm();
      current.coalesce();
      const sent = frames.map((f) => current.send(f.messages[0]!.sequenceId, f.parts));
      const results = await Promise.all(sent).finally(() => clearTimeout(timer));
      const byMessage = new Map<OutboxMessage, PublishOutcome>();
      frames.forEach((f, i) => f.messages.forEach((m) => byMessage.set(m, results[i]!)));
      const error = `MessageTooBig: over the broker's ${current.maxMessageSize} bytes`;
      const outcomes = messages.map((m): PublishOutcome => (tooBig.has(m) ? { kind: 'refused', error } : byMessage.get(m)!));
      // After a failed frame the broker may have closed the producer: start afresh.
      if (results.some((o) => o.kind !== 'stored')) {
        current.close();
        if (connection === current) connection = undefined;
      }
      return outcomes;
    },
    async close(): Promise<void> {
      const closing = connection;
      connection = undefined;
      await closing?.closeProducer(connectTimeoutMs);
    },
  };
}
