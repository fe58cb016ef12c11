// A stand-in for the WebSocket producer API of Pulsar 4.0 (/ws/v2/producer/...), as its
// ProducerHandler behaves: producerName and initialSequenceId come from the query; each
// message of a session gets the next sequence id (its own `sequenceId` field is not
// read); a broker with deduplication acknowledges a message whose id is not above the
// highest stored for the producer name without storing it.
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { WebSocketServer, type WebSocket } from 'ws';
import { rawText } from '../../src/events/websocket-transport.js';

export interface StoredMessage {
  producerName: string;
  sequenceId: number;
  key: string;
  payload: string;
  context: string;
}

export class FakeWebSocketBroker {
  readonly stored: StoredMessage[] = [];
  readonly duplicates: StoredMessage[] = [];
  /** Query strings of every producer session opened. */
  readonly sessions: URLSearchParams[] = [];
  /** The Authorization header of every producer session opened (null: none). */
  readonly authorizations: (string | null)[] = [];
  /** Payloads (decoded) this broker answers with an error, as the proxy does for a message too big. */
  refuse: ((payload: string) => boolean) | undefined;
  /**
   * How long a stored message waits for its acknowledgement (0: at once). A real broker
   * answers after its journal is synced, so a relay can die between "stored" and "answered".
   */
  ackDelayMs = 0;
  /** Messages stored whose acknowledgement has not been sent yet. */
  unanswered = 0;
  /** The most messages that were ever waiting for their acknowledgement at once. */
  maxUnanswered = 0;
  private readonly highest = new Map<string, number>();
  private readonly open = new Set<string>();
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  url = '';

  /** `tls`: serve wss:// (https://) with this key and certificate (and, with `requestCert`, ask the client for one signed by `ca`). */
  async start(port = 0, tls?: { key: Buffer; cert: Buffer; requestCert?: boolean; rejectUnauthorized?: boolean; ca?: Buffer }): Promise<void> {
    this.server = tls === undefined ? createServer() : createHttpsServer(tls);
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const name = url.searchParams.get('producerName') ?? 'anonymous';
      if (!url.pathname.startsWith('/ws/v2/producer/persistent/')) {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      if (this.open.has(name)) {
        socket.end('HTTP/1.1 409 Conflict\r\n\r\n');
        return;
      }
      this.authorizations.push(req.headers.authorization ?? null);
      this.wss!.handleUpgrade(req, socket, head, (ws) => this.session(ws, name, url.searchParams));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  async stop(): Promise<void> {
    for (const client of this.wss?.clients ?? []) client.terminate();
    this.wss?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private session(ws: WebSocket, name: string, params: URLSearchParams): void {
    this.sessions.push(params);
    this.open.add(name);
    let next = Number(params.get('initialSequenceId') ?? '-1') + 1;
    ws.on('close', () => this.open.delete(name));
    ws.on('message', (data) => {
      const m = JSON.parse(rawText(data)) as { payload: string; key: string; context: string };
      const payload = Buffer.from(m.payload, 'base64').toString('utf8');
      if (this.refuse?.(payload) === true) {
        ws.send(JSON.stringify({ result: 'send-error:8', errorMsg: 'InvalidMessageException: too big', errorCode: 8, context: m.context }));
        return;
      }
      const message: StoredMessage = { producerName: name, sequenceId: next++, key: m.key, payload, context: m.context };
      const last = this.highest.get(name) ?? -1;
      if (message.sequenceId <= last) this.duplicates.push(message);
      else {
        this.stored.push(message);
        this.highest.set(name, message.sequenceId);
      }
      const ack = JSON.stringify({ result: 'ok', messageId: 'CAEQAA==', context: m.context });
      if (this.ackDelayMs === 0) ws.send(ack);
      else {
        this.unanswered += 1;
        this.maxUnanswered = Math.max(this.maxUnanswered, this.unanswered);
        setTimeout(() => {
          this.unanswered -= 1;
          if (ws.readyState === ws.OPEN) ws.send(ack);
        }, this.ackDelayMs);
      }
    });
  }
}
