// For the tests of test/pulsar/: the real broker started by scripts/test-pulsar.ts,
// and a consumer that records what the topic holds.
import { randomBytes } from 'node:crypto';
import { readSagaEvents, type EventReader, type ReceivedEvent } from '../../src/events/websocket-reader.js';
import { waitUntil as waitFor } from './wait.js';
import type { Logger } from 'pino';
import { binaryTransport } from '../../src/events/binary-transport.js';
import type { EventTransport } from '../../src/events/transport.js';
import { websocketTransport } from '../../src/events/websocket-transport.js';

export interface BrokerUnderTest {
  serviceUrl: string;
  webUrl: string;
  /** A python with Apache's `pulsar-client`, for scripts/pulsar/read_binary.py. */
  python: string;
  /** The relay's transport in this run of the tests (PULSAR_TEST_TRANSPORT: scripts/test-pulsar.ts runs them once per transport). */
  transport: 'binary' | 'websocket';
  /** A producer of that transport on `topic`, under `producerName`. */
  producer(topic: string, producerName: string, log: Logger): EventTransport;
  /** Stops the broker (SIGTERM; its shutdown hook closes it). */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
}

export function brokerUnderTest(): BrokerUnderTest {
  const serviceUrl = process.env.PULSAR_TEST_URL;
  const webUrl = process.env.PULSAR_TEST_WEB_URL;
  const control = process.env.PULSAR_TEST_CONTROL;
  const python = process.env.PULSAR_TEST_PYTHON;
  if (!serviceUrl || !webUrl || !control || !python) throw new Error('run these tests with `npm run test:pulsar`, which starts the broker');
  const post = async (what: string) => {
    const res = await fetch(`${control}/${what}`, { method: 'POST', signal: AbortSignal.timeout(180_000) });
    if (!res.ok) throw new Error(`broker ${what}: ${res.status} ${await res.text()}`);
  };
  const transport = process.env.PULSAR_TEST_TRANSPORT === 'websocket' ? 'websocket' : 'binary';
  const producer = (topic: string, producerName: string, log: Logger): EventTransport =>
    transport === 'binary' ? binaryTransport({ serviceUrl, topic, producerName, log }) : websocketTransport({ webUrl, topic, producerName, log });
  return { serviceUrl, webUrl, python, transport, producer, stop: () => post('stop'), start: () => post('start') };
}

/** A topic of its own for one test, in public/default. */
export function uniqueTopic(name: string): string {
  return `persistent://public/default/${name}-${randomBytes(4).toString('hex')}`;
}

/** Everything a reader of `topic` receives, from its first message. */
export class TopicRecorder {
  readonly events: ReceivedEvent[] = [];
  private reader: EventReader | undefined;

  constructor(
    private readonly webUrl: string,
    private readonly topic: string,
  ) {}

  /** (Re)connects from the first message; what was recorded before is forgotten. */
  async open(): Promise<void> {
    await this.close();
    this.events.length = 0;
    this.reader = readSagaEvents(this.webUrl, this.topic, 'earliest', (e) => this.events.push(e));
    await this.reader.ready;
  }

  async close(): Promise<void> {
    await this.reader?.close();
    this.reader = undefined;
  }

  /** Each saga's secuencias in topic order, after the consumers' rule (first copy of each (saga_id, secuencia)). */
  streams(): Map<string, number[]> {
    const seen = new Set<string>();
    const bySaga = new Map<string, number[]>();
    for (const e of this.events) {
      const key = `${e.saga_id}:${e.secuencia}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const list = bySaga.get(e.saga_id) ?? [];
      list.push(e.secuencia);
      bySaga.set(e.saga_id, list);
    }
    return bySaga;
  }

  /** Copies of an event beyond the first (should be 0 with broker deduplication). */
  rawDuplicates(): number {
    return this.events.length - new Set(this.events.map((e) => `${e.saga_id}:${e.secuencia}`)).size;
  }

  /** Messages whose key is not their saga id. */
  wrongKeys(): number {
    return this.events.filter((e) => e.key !== e.saga_id).length;
  }
}

/** Waits for `what`, with the broker's slower pace (a 2-minute bound, polled every 100 ms). */
export const waitUntil = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 120_000, state?: () => string): Promise<void> =>
  waitFor(cond, { what, timeoutMs, everyMs: 100, ...(state === undefined ? {} : { state }) });
