// A stand-in for a Pulsar broker's binary protocol, for the binary transport's tests:
// it answers CONNECT (or not, or with an authentication error), LOOKUP (Connect to itself, or a redirect), PRODUCER (or
// ProducerBusy a given number of times) and SEND (a receipt, an error, or silence), as
// a test scripts it, over plain TCP or TLS. It keeps what a client told it (its token,
// its producers by id). Deduplication is not simulated: `npm run test:pulsar` has the real one.
import net from 'node:net';
import tls from 'node:tls';
import { CommandType, FrameReader, commandFrame, int, str, sub, type Command, type Field } from '../../src/events/pulsar-wire.js';

export type SendAnswer = { kind: 'receipt' } | { kind: 'error'; code: number; message: string } | { kind: 'silence' } | { kind: 'closeProducer' };

export class FakeBinaryBroker {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  /** Each SEND frame received: its producer name's session and its sequence id, highest sequence id and message count. */
  readonly sends: { sequenceId: number; highest: number | undefined; messages: number }[] = [];
  readonly producerNames: string[] = [];
  /** Producer ids the client closed (CLOSE_PRODUCER). */
  readonly closedProducers: number[] = [];
  /** The authentication of each CONNECT: its method and data. */
  readonly connects: { method: string | undefined; data: string | undefined }[] = [];
  /** The data of each AUTH_RESPONSE received. */
  readonly authResponses: string[] = [];
  readonly lookups: string[] = [];
  /** Each SEND frame as `<producer name>#<sequence id>`, the name found by the frame's producer id. */
  readonly sendsByProducer: string[] = [];
  /** The producers open, by their id (the last of a connection with that id: ids are per connection). */
  private readonly producerById = new Map<number, string>();
  /** ProducerBusy answers to give before a producer is accepted. */
  busyTimes = 0;
  /** What to answer to the next SENDs, in order; a receipt when none is scripted. */
  readonly sendAnswers: SendAnswer[] = [];
  /** Where a lookup is redirected to (a pulsar:// URL), once; else it says Connect here. */
  redirectTo: string | undefined;
  pongs = 0;
  /** Whether a producer is ready at once (false: the broker keeps it waiting, as for exclusive access). */
  producerReady = true;
  /** How CONNECT is answered: CONNECTED, not at all, or an authentication error. */
  connectAnswer: 'connected' | 'silence' | 'authenticationError' = 'connected';

  /** Connections accepted since the start. */
  accepted = 0;
  /** Connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  private tls = false;

  get url(): string {
    return this.tls ? `pulsar+ssl://localhost:${this.port}` : `pulsar://127.0.0.1:${this.port}`;
  }

  /** Listens on a free port, over TLS with `tlsOptions` (its key and certificate). */
  async start(tlsOptions?: tls.TlsOptions): Promise<void> {
    this.tls = tlsOptions !== undefined;
    this.server = tlsOptions === undefined ? net.createServer((socket) => this.serve(socket)) : tls.createServer(tlsOptions, (socket) => this.serve(socket));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  /** Asks every open connection for its credentials again (AUTH_CHALLENGE), as a broker does before a token expires. */
  challenge(): void {
    for (const s of this.sockets)
      s.write(
        commandFrame(CommandType.AUTH_CHALLENGE, [
          [1, 'fake'],
          [2, [[1, 'refresh']]],
          [3, 19],
        ]),
      );
  }

  /** Closes one producer from the broker's side (CLOSE_PRODUCER), as when its topic moves. */
  closeProducer(producerId: number): void {
    for (const s of this.sockets) s.write(commandFrame(CommandType.CLOSE_PRODUCER, [[1, producerId], [2, 98]]));
  }

  /** Sends a PING on every open connection. */
  ping(): void {
    for (const s of this.sockets) s.write(commandFrame(CommandType.PING, []));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    this.accepted++;
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const reader = new FrameReader(16 * 1024 * 1024);
    const answer = (type: number, fields: readonly Field[]) => socket.write(commandFrame(type, fields));
    socket.on('data', (chunk: Buffer) => {
      for (const c of reader.push(chunk)) this.handle(c, answer);
    });
  }

  private handle(c: Command, answer: (type: number, fields: readonly Field[]) => void): void {
    switch (c.type) {
      case CommandType.CONNECT:
        this.connects.push({ method: str(c.fields, 5), data: str(c.fields, 3) });
        if (this.connectAnswer === 'connected') {
          answer(CommandType.CONNECTED, [
            [1, 'fake'],
            [2, 19],
          ]);
        } else if (this.connectAnswer === 'authenticationError') {
          answer(CommandType.ERROR, [
            [1, -1n],
            [2, 3],
            [3, 'Unable to authenticate'],
          ]);
        }
        return;
      case CommandType.LOOKUP: {
        this.lookups.push(str(c.fields, 1) ?? '');
        const redirect = this.redirectTo;
        this.redirectTo = undefined;
        // brokerServiceUrl and brokerServiceUrlTls: over TLS the plain one would not answer.
        answer(CommandType.LOOKUP_RESPONSE, [
          [1, redirect ?? this.url.replace('pulsar+ssl:', 'pulsar:')],
          [2, redirect ?? this.url],
          [3, redirect === undefined ? 1 : 0],
          [4, int(c.fields, 2) ?? 0],
        ]);
        return;
      }
      case CommandType.PRODUCER: {
        const requestId = int(c.fields, 3) ?? 0;
        if (this.busyTimes > 0) {
          this.busyTimes--;
          answer(CommandType.ERROR, [
            [1, requestId],
            [2, 16],
            [3, 'Producer with name is already connected'],
          ]);
          return;
        }
        this.producerNames.push(str(c.fields, 4) ?? '');
        this.producerById.set(int(c.fields, 2) ?? 0, str(c.fields, 4) ?? '');
        answer(CommandType.PRODUCER_SUCCESS, [
          [1, requestId],
          [2, str(c.fields, 4) ?? ''],
          [3, -1n],
          [6, this.producerReady],
        ]);
        return;
      }
      case CommandType.SEND: {
        const sequenceId = int(c.fields, 2) ?? 0;
        const producerId = int(c.fields, 1) ?? 0;
        this.sends.push({ sequenceId, highest: int(c.fields, 6), messages: int(c.fields, 3) ?? 1 });
        this.sendsByProducer.push(`${this.producerById.get(producerId) ?? `unknown producer ${producerId}`}#${sequenceId}`);
        const scripted = this.sendAnswers.shift() ?? { kind: 'receipt' };
        if (scripted.kind === 'receipt') answer(CommandType.SEND_RECEIPT, [[1, producerId], [2, sequenceId]]);
        else if (scripted.kind === 'error') answer(CommandType.SEND_ERROR, [[1, producerId], [2, sequenceId], [3, scripted.code], [4, scripted.message]]);
        else if (scripted.kind === 'closeProducer') answer(CommandType.CLOSE_PRODUCER, [[1, producerId], [2, 99]]);
        return;
      }
      case CommandType.PONG:
        this.pongs++;
        return;
      case CommandType.AUTH_RESPONSE: {
        const data = sub(c.fields, 2);
        this.authResponses.push(data === undefined ? '' : (str(data, 2) ?? ''));
        return;
      }
      case CommandType.CLOSE_PRODUCER:
        this.closedProducers.push(int(c.fields, 1) ?? 0);
        answer(CommandType.SUCCESS, [[1, int(c.fields, 2) ?? 0]]);
        return;
    }
  }
}
