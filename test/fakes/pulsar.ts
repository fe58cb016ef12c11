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
  /** Messages dropped by deduplication (acknowledged, not stored). */
  readonly duplicates: SentMessage[] = [];
  /** While true every send rejects, as when the broker is unreachable. */
  down = false;
  /**
   * Pulsar's broker deduplication: per producer name, a message whose sequenceId is
   * not above the highest stored is acknowledged and dropped.
   */
  deduplication = false;
  /** Every send() call, accepted or not. */
  attempts = 0;
  /** Delay before a send settles, so that sends overlap as they do over a network. */
  latencyMs = 0;
  /** Sends not settled yet, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;
  /** Producer names connected now: a second producer with one of them gets ProducerBusy. */
  readonly connected = new Set<string>();
  private readonly highest = new Map<string, number>();
  private failures = 0;
  private readonly failuresOf = new Map<string, number>();
  private lostAcks = 0;
  private refusing: ((message: PulsarProducerMessage) => boolean) | undefined;

  /** Makes the next `n` sends reject (only those of the producer `producerName`, when given). */
  failNext(n: number, producerName?: string): void {
    if (producerName === undefined) this.failures += n;
    else this.failuresOf.set(producerName, (this.failuresOf.get(producerName) ?? 0) + n);
  }

  /** The next `n` sends are stored, but their senders hear a timeout (a lost acknowledgement). */
  loseAcks(n: number): void {
    this.lostAcks += n;
  }

  /** Refuses, every time, the messages `test` picks (as Pulsar refuses a message too big). */
  refuse(test: ((message: PulsarProducerMessage) => boolean) | undefined): void {
    this.refusing = test;
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
    } else if (this.failures > 0 || (this.failuresOf.get(producerName) ?? 0) > 0) {
      if (this.failures > 0) this.failures -= 1;
      else this.failuresOf.set(producerName, this.failuresOf.get(producerName)! - 1);
      outcome = new Error('Failed to send message: TimeOut (fake failure)');
    } else if (this.refusing?.(message) === true) {
      outcome = new Error('Failed to send message: MessageTooBig (fake refusal)');
    } else {
      outcome = { topic, producerName, message, position: this.messages.length };
      const last = this.highest.get(producerName) ?? -1;
      const sequenceId = message.sequenceId;
      if (this.deduplication && sequenceId !== undefined && sequenceId <= last) {
        this.duplicates.push(outcome);
        outcome = { ...outcome, position: -1 };
      } else {
        this.messages.push(outcome);
        if (sequenceId !== undefined) this.highest.set(producerName, Math.max(last, sequenceId));
      }
      if (this.lostAcks > 0) {
        this.lostAcks -= 1;
        outcome = new Error('Failed to send message: TimeOut (fake lost acknowledgement)');
      }
    }
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const settle = (): Promise<PulsarMessageId> => {
      this.inFlight -= 1;
      return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(new FakeMessageId(outcome.position));
    };
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
    if (!this.closed) this.broker.connected.delete(this.producerName);
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
    const name = config.producerName ?? 'fake-producer';
    if (this.broker.connected.has(name)) return Promise.reject(new Error('Failed to create producer: ProducerBusy'));
    this.broker.connected.add(name);
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
    // The package's token authentication, as an object that says what it holds.
    AuthenticationToken: class {
      constructor(readonly params: { token: string }) {}
    },
    AuthenticationTls: class {
      constructor(readonly params: { certificatePath: string; privateKeyPath: string }) {}
    },
  };
}

/** A producer on a fresh broker, for tests that need just one. */
export function fakeProducer(broker: FakeBroker = new FakeBroker(), producerName = 'fake-relay'): FakePulsarProducer {
  return new FakePulsarProducer({ topic: 'saga-events', producerName }, broker);
}
