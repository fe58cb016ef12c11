// Pulsar's binary protocol (pulsar:// on port 6650, or pulsar+ssl:// over TLS on 6651),
// spoken here over a socket (src/events/pulsar-wire.ts encodes it): no libpulsar, no
// WebSocket proxy. One `BinaryClient` per process holds one connection to the broker
// that owns the topic, and every shard's producer is a producer on that connection,
// as the protocol allows (each has its own producer id): a relay's pass writes all its
// shards' frames in one write, and the broker reads them in one.
//
// A run of messages goes out as batches: one SEND frame carries up to
// `batchMaxMessages` messages, each with its key (the saga id), properties, event time
// and sequence id; the frame's sequence id is the run's first and its highest sequence
// id the run's last, so the broker's deduplication judges the batch by its range, and
// stores it as one entry. Frames are pipelined on the connection and answered in order.
// A replay goes one message per frame, so the broker judges each alone.
//
// Connecting follows the protocol: CONNECT (with a token when PULSAR_AUTH_TOKEN is
// set, given again when the broker challenges it), then a topic lookup (following
// redirects to the broker that owns the topic), then PRODUCER under the shard's name
// (a name still held by a producer that just left is tried again for up to two
// seconds). The broker's pings are answered.
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { errorText } from '../log.js';
import { fullTopicName, type ClientCertificate, type EventTransport, type OutboxMessage, type PublishOutcome } from './transport.js';
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

export interface BinaryClientOptions {
  /** pulsar://host:port, or pulsar+ssl://host:port for TLS. */
  serviceUrl: string;
  topic: string;
  log: Logger;
  /** How long a SEND may wait for its receipt, re-armed at each receipt (default 10 s). */
  sendTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Messages in one SEND frame at most (default 1000). */
  batchMaxMessages?: number;
  /** Token authentication: the token goes in CONNECT (method `token`) and in each answer to the broker's AUTH_CHALLENGE. */
  authToken?: string;
  /** For pulsar+ssl://: the certificates to trust (PEM), instead of the system's. The broker's name is checked either way. */
  tlsCa?: string | Buffer;
  /**
   * For pulsar+ssl://: a client certificate and its key (PEM), presented in the TLS handshake. Without a
   * token, CONNECT then names the method `tls`: the broker takes the role from the certificate
   * (AuthenticationProviderTls).
   */
  tlsCert?: ClientCertificate;
}

export type BinaryTransportOptions = BinaryClientOptions & { producerName: string };

/** The broker's largest message when it does not say (its maxMessageSize default, 5 MiB). */
const DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024;
/** Room for the frame's command and metadata beside a batch's payload. */
const FRAME_OVERHEAD = 16 * 1024;
const CLIENT_VERSION = 'saga-orchestrator-relay';
// Errors of a SEND that sending the same bytes again would get again.
const REFUSING = new Set<number>([ServerError.ChecksumError, ServerError.NotAllowedError]);

class ProducerBusy extends Error {}

interface ConnectOptions {
  timeoutMs: number;
  authToken: string | undefined;
  tlsCa: string | Buffer | undefined;
  tlsCert: ClientCertificate | undefined;
}

/** An authentication method as CONNECT and AUTH_RESPONSE name it, and its data (none for `tls`). */
interface AuthMethod {
  name: string;
  data: Buffer | undefined;
}

/** The authentication a connection presents: a token if it has one, else its client certificate, else none. */
function authMethod(opts: Pick<ConnectOptions, 'authToken' | 'tlsCert'>): AuthMethod | undefined {
  if (opts.authToken !== undefined) return { name: 'token', data: Buffer.from(opts.authToken) };
  if (opts.tlsCert !== undefined) return { name: 'tls', data: undefined };
  return undefined;
}

/** A producer's part of a connection: its SENDs waiting for their receipts. */
interface ProducerSlot {
  receipts: Map<number, (outcome: PublishOutcome) => void>;
  /** Re-armed at every receipt: the publishing call's watchdog. */
  onReceipt: () => void;
}

/** One connection to a broker, CONNECTed, shared by producers (each under its own producer id). */
class Connection {
  private readonly reader = new FrameReader(DEFAULT_MAX_MESSAGE_SIZE + FRAME_OVERHEAD);
  private readonly requests = new Map<number, { answer: (c: Command) => void; fail: (err: Error) => void }>();
  private readonly producers = new Map<number, ProducerSlot>();
  private nextRequest = 1;
  private nextProducer = 1;
  private closedError: string | undefined;
  maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  /** Producers using the connection, and those opening on it: at 0 it is closed. */
  users = 0;

  private constructor(
    readonly url: string,
    private readonly socket: net.Socket,
    private readonly auth: AuthMethod | undefined,
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

  static async open(url: string, opts: ConnectOptions): Promise<Connection> {
    const { protocol, hostname, port } = new URL(url);
    const host = hostname.replace(/^\[|\]$/g, '');
    const socket =
      protocol === 'pulsar+ssl:'
        ? tls.connect({
            host,
            port: Number(port || 6651),
            ...(net.isIP(host) === 0 ? { servername: host } : {}),
            ...(opts.tlsCa === undefined ? {} : { ca: opts.tlsCa }),
            ...(opts.tlsCert === undefined ? {} : { cert: opts.tlsCert.cert, key: opts.tlsCert.key }),
          })
        : net.connect({ host, port: Number(port || 6650) });
    const auth = authMethod(opts);
    const connection = new Connection(url, socket, auth);
    const connected = await connection.exchange(
      CommandType.CONNECT,
      [
        [1, CLIENT_VERSION],
        [4, PROTOCOL_VERSION],
        ...(auth === undefined ? [] : ([[5, auth.name]] as const)),
        ...(auth?.data === undefined ? [] : ([[3, auth.data]] as const)),
      ],
      undefined,
      opts.timeoutMs,
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

  get tls(): boolean {
    return this.url.startsWith('pulsar+ssl:');
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

  /** A producer id of this connection, for a PRODUCER about to be sent. */
  register(): number {
    const id = this.nextProducer++;
    this.producers.set(id, { receipts: new Map(), onReceipt: () => undefined });
    return id;
  }

  /** Whether the producer still stands: the connection is open and the broker has not closed it. */
  has(producerId: number): boolean {
    return this.open && this.producers.has(producerId);
  }

  /** Sets the producer's watchdog, re-armed at each of its receipts. */
  watch(producerId: number, onReceipt: () => void): void {
    const slot = this.producers.get(producerId);
    if (slot !== undefined) slot.onReceipt = onReceipt;
  }

  /** Writes a SEND frame of a producer; the promise settles with its receipt or error. */
  send(producerId: number, sequenceId: number, frame: readonly Buffer[]): Promise<PublishOutcome> {
    return new Promise((resolve) => {
      const slot = this.producers.get(producerId);
      if (!this.open || slot === undefined) {
        resolve({ kind: 'unavailable', error: this.closedError ?? 'the producer is closed' });
        return;
      }
      slot.receipts.set(sequenceId, resolve);
      for (const part of frame) this.socket.write(part);
    });
  }

  /** Holds this tick's writes (every producer's) and sends them together at its end. */
  coalesce(): void {
    this.socket.cork();
    process.nextTick(() => this.socket.uncork());
  }

  private dispatch(c: Command): void {
    switch (c.type) {
      case CommandType.PING:
        this.socket.write(commandFrame(CommandType.PONG, []));
        return;
      case CommandType.AUTH_CHALLENGE:
        // The broker asks for the credentials again (a token about to expire): the same ones.
        this.socket.write(
          commandFrame(CommandType.AUTH_RESPONSE, [
            [1, CLIENT_VERSION],
            [
              2,
              [
                [1, this.auth?.name ?? 'none'],
                [2, this.auth?.data ?? Buffer.alloc(0)],
              ],
            ],
            [3, PROTOCOL_VERSION],
          ]),
        );
        return;
      case CommandType.SEND_RECEIPT: {
        const slot = this.producers.get(int(c.fields, 1) ?? 0);
        this.settle(slot, int(c.fields, 2), { kind: 'stored' });
        slot?.onReceipt();
        return;
      }
      case CommandType.SEND_ERROR: {
        const code = int(c.fields, 3) ?? ServerError.UnknownError;
        const error = `${serverErrorName(code)}: ${str(c.fields, 4) ?? ''}`;
        const outcome: PublishOutcome = REFUSING.has(code) ? { kind: 'refused', error } : { kind: 'unavailable', error };
        this.settle(this.producers.get(int(c.fields, 1) ?? 0), int(c.fields, 2), outcome);
        return;
      }
      case CommandType.CLOSE_PRODUCER:
        // The broker closed one producer (the topic moved, say): it alone is dropped.
        this.drop(int(c.fields, 1) ?? 0, 'the broker closed the producer');
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

  private settle(slot: ProducerSlot | undefined, sequenceId: number | undefined, outcome: PublishOutcome): void {
    if (slot === undefined || sequenceId === undefined) return;
    const resolve = slot.receipts.get(sequenceId);
    if (resolve === undefined) return;
    slot.receipts.delete(sequenceId);
    resolve(outcome);
  }

  /** Forgets a producer: its SENDs still waiting settle as unavailable. */
  drop(producerId: number, error: string): void {
    const slot = this.producers.get(producerId);
    if (slot === undefined) return;
    this.producers.delete(producerId);
    for (const [sequenceId] of [...slot.receipts]) this.settle(slot, sequenceId, { kind: 'unavailable', error });
  }

  /** Every SEND still waiting settles as unavailable, every request fails, and the connection is dropped. */
  fail(error: string): void {
    this.closedError ??= error;
    for (const id of [...this.producers.keys()]) this.drop(id, error);
    for (const request of [...this.requests.values()]) request.fail(new Error(error));
    this.socket.destroy();
  }

  close(): void {
    this.fail('closed');
  }

  /** Closes one producer at the broker (so that its name is free at once) and forgets it. */
  async closeProducer(producerId: number, timeoutMs: number): Promise<void> {
    if (!this.has(producerId)) return;
    this.drop(producerId, 'the producer is closed');
    await this.exchange(CommandType.CLOSE_PRODUCER, [[1, producerId]], 2, timeoutMs).catch(() => undefined);
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
async function connectToOwner(serviceUrl: string, topic: string, opts: ConnectOptions): Promise<Connection> {
  const timeoutMs = opts.timeoutMs;
  let connection = await Connection.open(serviceUrl, opts);
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
    // Over TLS, the broker's TLS address (brokerServiceUrlTls).
    const brokerUrl = str(answer.fields, connection.tls ? 2 : 1);
    if (kind === 2 || brokerUrl === undefined) {
      connection.close();
      throw new Error(`the topic lookup failed: ${str(answer.fields, 7) ?? serverErrorName(int(answer.fields, 6) ?? 0)}`);
    }
    const throughService = int(answer.fields, 8) === 1;
    if (kind === 1 && (throughService || sameAddress(brokerUrl, connection.url))) return connection;
    connection.close();
    connection = await Connection.open(kind === 1 || !throughService ? brokerUrl : serviceUrl, opts);
    if (kind === 1) return connection;
    authoritative = int(answer.fields, 5) === 1;
  }
  connection.close();
  throw new Error('the topic lookup was redirected too many times');
}

function sameAddress(a: string, b: string): boolean {
  const x = new URL(a);
  const y = new URL(b);
  const port = (u: URL) => u.port || (u.protocol === 'pulsar+ssl:' ? '6651' : '6650');
  return x.protocol === y.protocol && x.hostname === y.hostname && port(x) === port(y);
}

/** The frames of a run: batches (or one message each for a replay), and the messages too big to go at all. */
export function planFrames(
  run: readonly OutboxMessage[],
  producer: { id: number; name: string },
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
          [1, producer.id],
          [2, first.sequenceId],
          [3, batch.length],
          [6, last.sequenceId],
        ],
        [
          [1, producer.name],
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
            [1, producer.id],
            [2, m.sequenceId],
            [3, 1],
          ],
          [[1, producer.name], [2, m.sequenceId], [3, opts.now], ...keyValues(4, m.properties), [6, m.key], [12, m.eventTime]],
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

/**
 * The process's Pulsar client over the binary protocol: one connection to the broker that
 * owns the topic, opened at the first publish and shared by every producer it hands out
 * (one per shard). The connection is closed when its last producer closes.
 */
export class BinaryClient {
  private connection: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private readonly topic: string;
  private readonly connect: ConnectOptions;

  constructor(private readonly opts: BinaryClientOptions) {
    this.topic = fullTopicName(opts.topic);
    this.connect = { timeoutMs: opts.connectTimeoutMs ?? 5_000, authToken: opts.authToken, tlsCa: opts.tlsCa, tlsCert: opts.tlsCert };
  }

  get target(): string {
    return `${this.opts.serviceUrl} ${this.topic}`;
  }

  /** A producer under `producerName` on the shared connection (not opened until its first publish). */
  producer(producerName: string): EventTransport {
    return new BinaryProducer(this, producerName, {
      sendTimeoutMs: this.opts.sendTimeoutMs ?? 10_000,
      maxMessages: this.opts.batchMaxMessages ?? 1000,
    });
  }

  /** The shared connection, opened if need be, with one more user. */
  async acquire(): Promise<Connection> {
    let c = this.connection;
    if (c === undefined || !c.open) {
      this.connecting ??= connectToOwner(this.opts.serviceUrl, this.topic, this.connect).finally(() => {
        this.connecting = undefined;
      });
      c = await this.connecting;
      this.connection = c;
    }
    c.users++;
    return c;
  }

  /** One user fewer; the last one closes the connection. */
  release(c: Connection): void {
    c.users--;
    if (c.users > 0) return;
    c.close();
    if (this.connection === c) this.connection = undefined;
  }

  /** Opens a producer under `name` on the shared connection. */
  async openProducer(name: string): Promise<{ connection: Connection; id: number }> {
    const timeoutMs = this.connect.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const c = await this.acquire();
      const id = c.register();
      try {
        const answer = await c.exchange(
          CommandType.PRODUCER,
          [
            [1, this.topic],
            [2, id],
            [4, name],
            [9, true],
          ],
          3,
          timeoutMs,
        );
        if (answer.type === CommandType.ERROR) {
          const error = describe(answer);
          throw int(answer.fields, 2) === ServerError.ProducerBusy ? new ProducerBusy(error) : new Error(error);
        }
        if (answer.type !== CommandType.PRODUCER_SUCCESS) throw new Error(`the broker answered PRODUCER with ${describe(answer)}`);
        // The producer asks for the shared access mode (the default), which the broker grants at
        // once; a producer kept waiting (producer_ready false, for exclusive access) is not used.
        if (int(answer.fields, 6) === 0) {
          await c.closeProducer(id, timeoutMs);
          throw new Error('the broker keeps the producer waiting for access to the topic');
        }
        return { connection: c, id };
      } catch (err) {
        c.drop(id, errorText(err));
        this.release(c);
        if (!(err instanceof ProducerBusy) || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Closes a producer opened by openProducer, and gives its share of the connection back. */
  async closeProducer(p: { connection: Connection; id: number }): Promise<void> {
    await p.connection.closeProducer(p.id, this.connect.timeoutMs);
    this.release(p.connection);
  }
}

class BinaryProducer implements EventTransport {
  readonly name = 'binary';
  private current: { connection: Connection; id: number } | undefined;

  constructor(
    private readonly client: BinaryClient,
    private readonly producerName: string,
    private readonly opts: { sendTimeoutMs: number; maxMessages: number },
  ) {}

  get target(): string {
    return this.client.target;
  }

  async publish(messages: readonly OutboxMessage[], publishOpts: { replay?: boolean } = {}): Promise<PublishOutcome[]> {
    if (messages.length === 0) return [];
    if (this.current !== undefined && !this.current.connection.has(this.current.id)) await this.forget();
    if (this.current === undefined) {
      try {
        this.current = await this.client.openProducer(this.producerName);
      } catch (err) {
        const error = `cannot open a producer: ${errorText(err)}`;
        return messages.map(() => ({ kind: 'unavailable', error }));
      }
    }
    const { connection, id } = this.current;
    const { frames, tooBig } = planFrames(messages, { id, name: this.producerName }, {
      replay: publishOpts.replay === true,
      maxMessages: this.opts.maxMessages,
      maxBytes: connection.maxMessageSize,
      now: Date.now(),
    });
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => connection.fail('no answer from the broker'), this.opts.sendTimeoutMs);
    };
    connection.watch(id, arm);
    arm();
    connection.coalesce();
    const sent = frames.map((f) => connection.send(id, f.messages[0]!.sequenceId, f.parts));
    const results = await Promise.all(sent).finally(() => clearTimeout(timer));
    const byMessage = new Map<OutboxMessage, PublishOutcome>();
    frames.forEach((f, i) => f.messages.forEach((m) => byMessage.set(m, results[i]!)));
    const error = `MessageTooBig: over the broker's ${connection.maxMessageSize} bytes`;
    const outcomes = messages.map((m): PublishOutcome => (tooBig.has(m) ? { kind: 'refused', error } : byMessage.get(m)!));
    // After a failed frame the broker may have closed the producer: this producer starts
    // afresh at its next publish (the connection, shared with the other shards, stays).
    if (results.some((o) => o.kind !== 'stored')) await this.forget();
    return outcomes;
  }

  async close(): Promise<void> {
    await this.forget();
  }

  private async forget(): Promise<void> {
    const closing = this.current;
    this.current = undefined;
    if (closing !== undefined) await this.client.closeProducer(closing);
  }
}

/** A transport with a client of its own: one producer, one connection (for a caller with one producer name). */
export function binaryTransport(opts: BinaryTransportOptions): EventTransport {
  return new BinaryClient(opts).producer(opts.producerName);
}
