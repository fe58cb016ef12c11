// An in-memory stand-in for the `pulsar-client` package: a broker that records what
// producers send, and can be taken down or told to fail the next sends.
import type {
  PulsarClient,
  PulsarClientConfig,
  PulsarMessageId,
  PulsarModule,
  PulsarProducer,
  PulsarProducerConfig,
  PulsarProducerMessage,
} from '../../src/events/pulsar.js';

export interface SentMessage {
  topic: string;
  producerName: string;
  message: PulsarProducerMessage;
  /** Position in the broker's log, across every producer. */
  position: number;
}

class FakeMessageId implements PulsarMessageId {
  constructor(private readonly position: number) {}
  toString(): string {
    return `0:${this.position}:-1`;
  }
}

export class FakeBroker {
  /** Messages the broker accepted, in the order it accepted them. */
  readonly messages: SentMessage[] = [];
  /** While true every send rejects, as when the broker is unreachable. */
  down = false;
  /** Every send() call, accepted or not. */
  attempts = 0;
  /** Delay before a send settles, so that sends overlap as they do over a network. */
  latencyMs = 0;
  private failures = 0;

  /** Makes the next `n` sends reject. */
  failNext(n: number): void {
    this.failures += n;
  }

  /** Accepted messages as parsed JSON payloads. */
  payloads(): Array<Record<string, unknown>> {
    return this.messages.map((m) => JSON.parse(m.message.data.toString('utf8')) as Record<string, unknown>);
  }

  /** Decides a send synchronously, in call order, like a producer's queue. */
  accept(topic: string, producerName: string, message: PulsarProducerMessage): Promise<PulsarMessageId> {
    this.attempts += 1;
    let outcome: Error | SentMessage;
    if (this.down) {
      outcome = new Error('Failed to send message: AlreadyClosed (fake broker down)');
    } else if (this.failures > 0) {
      this.failures -= 1;
      outcome = new Error('Failed to send message: TimeOut (fake failure)');
    } else {
      outcome = { topic, producerName, message, position: this.messages.length };
      this.messages.push(outcome);
    }
    const settle = (): Promise<PulsarMessageId> =>
      outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(new FakeMessageId(outcome.position));
    if (this.latencyMs <= 0) return settle();
    return new Promise((resolve) => setTimeout(resolve, this.latencyMs)).then(settle);
  }
}

export class FakePulsarProducer implements PulsarProducer {
  closed = false;
  flushes = 0;
  readonly topic: string;
  readonly producerName: string;

  constructor(
    readonly config: PulsarProducerConfig,
    private readonly broker: FakeBroker,
  ) {
    this.topic = config.topic;
    this.producerName = config.producerName ?? 'fake-producer';
  }

  send(message: PulsarProducerMessage): Promise<PulsarMessageId> {
    if (this.closed) return Promise.reject(new Error('Failed to send message: AlreadyClosed'));
    return this.broker.accept(this.topic, this.producerName, message);
  }

  flush(): Promise<null> {
    this.flushes += 1;
    return Promise.resolve(null);
  }

  close(): Promise<null> {
    this.closed = true;
    return Promise.resolve(null);
  }
}

export class FakePulsarClient implements PulsarClient {
  closed = false;
  readonly producers: FakePulsarProducer[] = [];

  constructor(
    readonly config: PulsarClientConfig,
    readonly broker: FakeBroker,
  ) {}

  createProducer(config: PulsarProducerConfig): Promise<FakePulsarProducer> {
    if (this.broker.down) return Promise.reject(new Error('Failed to create producer: ConnectError'));
    const producer = new FakePulsarProducer(config, this.broker);
    this.producers.push(producer);
    return Promise.resolve(producer);
  }

  close(): Promise<null> {
    this.closed = true;
    return Promise.resolve(null);
  }
}

/** A module shaped like `pulsar-client`'s export, whose clients talk to `broker`. */
export function fakePulsarModule(broker: FakeBroker): PulsarModule & { clients: FakePulsarClient[] } {
  const clients: FakePulsarClient[] = [];
  return {
    clients,
    Client: class extends FakePulsarClient {
      constructor(config: PulsarClientConfig) {
        super(config, broker);
        clients.push(this);
      }
    },
  };
}

/** A producer on a fresh broker, for tests that need just one. */
export function fakeProducer(broker: FakeBroker = new FakeBroker(), producerName = 'fake-relay'): FakePulsarProducer {
  return new FakePulsarProducer({ topic: 'saga-events', producerName }, broker);
}
