// Reads saga events from the topic through Pulsar's WebSocket reader API
// (/ws/v2/reader/...): `npm run events:tail` and the real-broker tests use it.
// Consumers apply the project's rule: an event is identified by (saga_id, secuencia),
// and a second copy of one is ignored.
import WebSocket from 'ws';
import { topicSocketUrl } from './transport.js';
import { rawText } from './websocket-transport.js';

/** A saga event as a consumer sees it (the relay's payload, see eventPayload). */
export interface ReceivedEvent {
  saga_id: string;
  secuencia: number;
  tipo: string;
  estado: string;
  epoch: number | null;
  fecha: string;
  payload: unknown;
  /** The message key (the saga id). */
  key: string | undefined;
  messageId: string;
}

export interface EventReader {
  /** Resolves once the reader is connected. */
  ready: Promise<void>;
  close(): Promise<void>;
}

interface ConsumerMessage {
  messageId: string;
  payload: string;
  key?: string;
}

/** Calls `onEvent` for every message of the topic from `from` on, in the topic's order. */
export function readSagaEvents(
  webUrl: string,
  topic: string,
  from: 'earliest' | 'latest',
  onEvent: (event: ReceivedEvent) => void,
  onError: (err: Error) => void = () => undefined,
): EventReader {
  const ws = new WebSocket(topicSocketUrl(webUrl, 'reader', topic, { messageId: from, receiverQueueSize: '1000' }));
  const ready = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode ?? 0} from the broker`)));
  });
  ready.catch(() => undefined);
  ws.on('error', onError);
  ws.on('message', (data: WebSocket.RawData) => {
    const m = JSON.parse(rawText(data)) as ConsumerMessage;
    // The reader hands out more messages as earlier ones are acknowledged.
    ws.send(JSON.stringify({ messageId: m.messageId }));
    const body = JSON.parse(Buffer.from(m.payload, 'base64').toString('utf8')) as Omit<ReceivedEvent, 'key' | 'messageId'>;
    onEvent({ ...body, key: m.key, messageId: m.messageId });
  });
  return {
    ready,
    close: () =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.close();
        setTimeout(() => ws.terminate(), 2_000).unref();
      }),
  };
}

/** The consumers' deduplication rule: (saga_id, secuencia) identifies an event. */
export class SeenEvents {
  private readonly seen = new Set<string>();
  /** True the first time an event is seen, false for any later copy. */
  first(event: Pick<ReceivedEvent, 'saga_id' | 'secuencia'>): boolean {
    const key = `${event.saga_id}:${event.secuencia}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}
