// The outbox relay. Every saga transition writes its events into saga_events in the
// same transaction as the saga's state; this relay publishes them to Pulsar and marks
// them (publicado_en). Sagas never wait for it: while the broker is down the rows stay
// pending, the relay retries for ever with a capped backoff, and they drain when the
// broker returns.
//
// Why no event is lost, duplicated or reordered, with broker deduplication on (the
// broker drops a message whose sequence id is not above the highest it stored for
// the producer name):
//  1. One relay per shard, in the process that holds the shard's lease (ShardRelays,
//     src/events/shard-relays.ts): a saga belongs to one shard for life, so all its
//     events go through the shard's one producer, named after the saga log and the
//     shard (`<productor>-<shard>`). Every write of the relay (taking a batch,
//     recording what became of it) is fenced: it commits only while saga_shards says
//     this process holds the shard at the lease's epoch (the row is read FOR SHARE, so
//     a take-over waits for it). A relay that lost the shard changes nothing and
//     stops; what it had in flight keeps its sequence ids, and the new holder replays
//     it first, under the same producer name, so the broker drops what it had stored.
//     Pulsar admits one connected producer per name, so the old and new holders never
//     send at once.
//  2. Rows are taken only below the xmin horizon (transaccion < the oldest transaction
//     still running): ids are drawn before commit, so a writer can commit a lower id
//     after higher ones are visible; a row below the horizon can no longer be
//     overtaken by one committed later. What is taken (oldest transactions first) is
//     therefore stable: the same whichever relay runs, and whenever.
//  3. Each taken row gets its sequence id when taken (one past the last given in its
//     shard, kept in saga_relay_shards, so they only grow whichever process holds the
//     shard), saga by saga and in each saga's secuencia order; the batch is sent in
//     sequence-id order, so sequence ids grow in publish order.
//     A row keeps its id until the broker acknowledges it: a replay after a crash, an
//     outage or a hand-over sends the same id, and the broker drops the copy it has.
//  4. A batch holds every claimable event of a saga, its next pending events in order,
//     numbered in secuencia order and sent pipelined through one producer, which keeps
//     the order of its sends: several events of a saga are in flight at once and reach
//     the broker in order. What the broker stores of one producer session is a prefix
//     of what was sent, apart from messages refused one by one (too big, malformed).
//  5. A message that was not stored while a later one of its batch was has a spent
//     sequence id (the broker would drop it as a duplicate): it is numbered anew. With
//     a single producer this happens only when its acknowledgement was lost (it is
//     stored): the copy sent later is one a consumer ignores.
//  6. A message the broker refuses (not a connection failure) is tried again under a
//     new id, alone (its saga's later events wait for it), and after maxAttempts set
//     aside in saga_events_descartados (an alert metric counts them); the saga's later
//     events then flow on. A refused message whose saga's later event was stored in
//     the same batch is set aside at once: sent again it would arrive out of order.
//  7. No transaction is open while the relay talks to the broker: taking a batch and
//     recording what became of it are one statement each, and one relay's statements
//     run one after the other (as on one connection), from a pool its process shares.
// Consumers still dedupe on (saga_id, secuencia) as a second line: a message whose
// outcome was unknown and that is renumbered under rule 5 may be stored twice.
import type { Logger } from 'pino';
import type { ShardLease } from '../cluster/shards.js';
import type { Queryable } from '../persistence/sql.js';
import { claim, inFlight, record, type OutboxRow, type Recorded } from './outbox-queries.js';
import { planRecord } from './publish-plan.js';
import type { RelayMetrics } from './relay-metrics.js';
import { errorText } from '../log.js';
import type { EventTransport, OutboxMessage } from './transport.js';

export interface OutboxRelayOptions {
  /** The saga log, as the relay's role (a pool its process's relays share). */
  db: Queryable;
  /** The shard this relay publishes, and the lease it holds it by: every write is fenced by it. */
  lease: ShardLease;
  /** The shard's producer (see shardProducerName). */
  transport: EventTransport;
  log: Logger;
  metrics?: RelayMetrics;
  /** Rows per batch (all the claimable events of each saga in it). */
  batchSize?: number;
  /** Pause after a pass that took less than a full batch. */
  pollMs?: number;
  /** Pause after a pass that found nothing to publish (pollMs unless given); `wake` cuts it short. */
  idleMs?: number;
  /** First delay, and cap, of the exponential backoff while the broker is unavailable. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Refusals of one message before it goes to the dead-letter table. */
  maxAttempts?: number;
  /** Called once when a write of the relay was refused by the fence: the lease is not held any more. */
  onFenced?: (lease: ShardLease) => void;
}

/** What one pass did. */
export interface PassResult {
  /** False when the lease is not (or no longer) held: nothing was taken or recorded. */
  active: boolean;
  sent: number;
  published: number;
  refused: number;
  deadLettered: number;
  /** The first transport failure of the pass, if any. */
  unavailable?: string;
}

/** The JSON the broker receives for one event. */
export function eventPayload(row: OutboxRow): Record<string, unknown> {
  const fecha = row.fecha instanceof Date ? row.fecha : new Date(row.fecha);
  return {
    id: Number(row.id),
    saga_id: row.saga_id,
    secuencia: row.secuencia,
    tipo: row.tipo,
    estado: row.estado,
    epoch: row.epoch === null ? null : Number(row.epoch),
    payload: row.payload,
    fecha: fecha.toISOString(),
  };
}

export function outboxMessage(row: OutboxRow): OutboxMessage {
  const fecha = row.fecha instanceof Date ? row.fecha : new Date(row.fecha);
  return {
    sequenceId: Number(row.secuencia_envio),
    key: row.saga_id,
    payload: Buffer.from(JSON.stringify(eventPayload(row))),
    properties: { tipo: row.tipo, saga_id: row.saga_id, secuencia: String(row.secuencia) },
    eventTime: fecha.getTime(),
  };
}

export class OutboxRelay {
  private readonly opts: Required<Omit<OutboxRelayOptions, 'metrics' | 'onFenced'>> &
    Pick<OutboxRelayOptions, 'metrics' | 'onFenced'>;
  /** Set once a fenced write showed the lease gone: the relay does nothing more. */
  private fenced = false;
  /** The tail of this relay's statements: they run one after the other. */
  private statements: Promise<unknown> = Promise.resolve();
  private loop: Promise<void> | undefined;
  /** True while the loop waits after a pass that found nothing. */
  private idle = false;
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  /** The next batch, being taken while the last one was sent (pipelined passes). */
  private prefetched: Promise<OutboxRow[]> | undefined;
  /** The last pass's record, still running (pipelined passes). */
  private recording: Promise<unknown> | undefined;

  constructor(opts: OutboxRelayOptions) {
    this.opts = {
      batchSize: 5_000,
      pollMs: 100,
      idleMs: opts.pollMs ?? 100,
      minBackoffMs: 100,
      maxBackoffMs: 5_000,
      maxAttempts: 5,
      ...opts,
    };
    const { batchSize, pollMs, maxAttempts } = this.opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    if (!(pollMs >= 0)) throw new RangeError('pollMs must be >= 0');
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be a positive integer');
  }

  get transportName(): string {
    return this.opts.transport.name;
  }

  get lease(): ShardLease {
    return this.opts.lease;
  }

  /** Ends the pause after a pass that found nothing (ShardRelays calls it when the shard has events pending). */
  wake(): void {
    if (this.idle) this.wakeUp?.();
  }

  /** True once a write was refused because the lease is no longer held. */
  get isFenced(): boolean {
    return this.fenced;
  }

  /** Starts publishing in the background; a no-op when already running. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Stops, waits for the pass in flight (its record is fenced like any other) and closes the producer. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    const loop = this.loop;
    this.loop = undefined;
    await loop;
    await this.closeProducer();
  }

  /**
   * One pass: sends the shard's batch in flight (or takes a new one) and records what
   * became of it, each write fenced by the lease. Rejects only on database errors (the
   * producer is then closed). A fenced write ends the relay's work: `active` false.
   *
   * `pipelined` (the relay's own loop): while the batch is being sent, the next one is
   * taken, and the pass returns as soon as the broker has answered, its record still
   * running (the next pass waits for it before recording its own). The next batch
   * holds no saga with an event in flight (the taking skips a saga whose earlier event
   * is still pending), and it is sent only when every message of this one was stored:
   * otherwise it stays numbered, and the next pass replays it after this one's tail,
   * in sequence-id order.
   */
  async publishBatch(opts: { pipelined?: boolean } = {}): Promise<PassResult> {
    const idle: PassResult = { active: false, sent: 0, published: 0, refused: 0, deadLettered: 0 };
    if (this.fenced) return idle;
    const { batchSize, lease } = this.opts;
    try {
      const begun = Date.now();
      const prefetched = this.prefetched;
      this.prefetched = undefined;
      let rows = prefetched === undefined ? [] : await prefetched;
      let replay = false;
      if (rows.length === 0) {
        // The previous record first: what it marks is not in flight any more.
        await this.settleRecording();
        if (this.fenced) return idle;
        rows = await this.serial((db) => inFlight(db, batchSize, lease));
        replay = rows.length > 0;
        if (!replay) rows = await this.take();
      }
      if (this.fenced) return idle;
      if (rows.length === 0) return { ...idle, active: true };
      const taken = Date.now();
      const sending = this.opts.transport.publish(rows.map(outboxMessage), { replay });
      if (opts.pipelined === true) this.prefetched = quiet(this.take());
      const outcomes = await sending;
      const sent = Date.now();
      const plan = planRecord(
        rows.map((r) => r.id),
        outcomes,
        rows.map((r) => r.saga_id),
      );
      // Records run one after the other.
      await this.settleRecording();
      const recording = this.serial((db) => record(db, plan, this.opts.maxAttempts, lease)).then((recorded) => {
        if (!recorded.held) {
          this.fence();
          return recorded;
        }
        this.afterRecord(plan, recorded, { rows: rows.length, takeMs: taken - begun, sendMs: sent - taken, recordMs: Date.now() - sent });
        return recorded;
      });
      const allStored = plan.published.length === rows.length;
      let deadLettered = 0;
      if (opts.pipelined === true && allStored) this.recording = quiet(recording);
      else {
        const recorded = await recording;
        deadLettered = recorded.deadLettered;
        // A failed batch goes again before anything taken after it: the next pass
        // replays what is in flight, the next batch included, in sequence-id order.
        if (this.prefetched !== undefined) {
          const next = this.prefetched;
          this.prefetched = undefined;
          await next;
        }
        if (!recorded.held) return { ...idle, sent: rows.length };
      }
      return {
        active: true,
        sent: rows.length,
        published: plan.published.length,
        refused: plan.refused.length + plan.overtaken.length,
        deadLettered,
        ...(plan.unavailable === undefined ? {} : { unavailable: plan.unavailable }),
      };
    } catch (err) {
      await this.closeProducer(err);
      throw err;
    }
  }

  /** Takes a new batch (fenced); none, and the relay fenced, when the lease is not held. */
  private async take(): Promise<OutboxRow[]> {
    const claimed = await this.serial((db) => claim(db, this.opts.batchSize, this.opts.lease));
    if (!claimed.held) this.fence();
    return claimed.rows;
  }

  /** The lease is gone: nothing more is taken or recorded; the loop ends and the owner is told once. */
  private fence(): void {
    if (this.fenced) return;
    this.fenced = true;
    this.wakeUp?.();
    this.opts.log.warn(
      { shard: this.opts.lease.shard, epoch: this.opts.lease.epoch },
      "outbox relay: the shard's lease is not held any more; its events in flight are left to the next holder",
    );
    this.opts.onFenced?.(this.opts.lease);
  }

  /** Runs `statement` after every statement this relay issued before it (as one connection would). */
  private serial<T>(statement: (db: Queryable) => Promise<T>): Promise<T> {
    const run = this.statements.then(() => statement(this.opts.db));
    this.statements = run.catch(() => undefined);
    return run;
  }

  /** Waits for the record of the previous pass, if it is still running; rethrows its error. */
  private async settleRecording(): Promise<void> {
    const recording = this.recording;
    this.recording = undefined;
    await recording;
  }

  private afterRecord(plan: ReturnType<typeof planRecord>, recorded: Recorded, timing: Record<string, number>): void {
    this.opts.log.debug(timing, 'outbox relay: pass');
    this.opts.metrics?.published(plan.published.length);
    if (plan.refused.length + plan.overtaken.length > 0) {
      this.opts.log.warn(
        { refused: [...plan.overtaken, ...plan.refused].slice(0, 5), retried: recorded.retried, deadLettered: recorded.deadLettered },
        'outbox relay: the broker refused saga events',
      );
    }
    if (recorded.deadLettered > 0) {
      this.opts.log.error(
        { deadLettered: recorded.deadLettered, maxAttempts: this.opts.maxAttempts },
        'outbox relay: saga events set aside in saga_events_descartados after repeated refusals',
      );
    }
  }

  /** Closes the producer (so that the shard's next relay can open it), once the record or taking in flight has ended. */
  private async closeProducer(reason?: unknown): Promise<void> {
    // A batch taken and not sent stays numbered: the shard's next relay replays it.
    const running = [this.recording, this.prefetched].filter((p): p is Promise<unknown> => p !== undefined);
    this.recording = undefined;
    this.prefetched = undefined;
    await Promise.allSettled(running);
    await this.opts.transport.close().catch(() => undefined);
    if (reason !== undefined) this.opts.log.warn({ err: errorText(reason), shard: this.opts.lease.shard }, 'outbox relay: closed its producer after an error');
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping && !this.fenced) {
      let delay = this.opts.pollMs;
      // Only the pause after a pass that found nothing may be cut short by `wake`.
      let foundNothing = false;
      try {
        const pass = await this.publishBatch({ pipelined: true });
        if (!pass.active) break;
        if (pass.unavailable !== undefined) {
          failures += 1;
          delay = this.backoff(failures);
          this.opts.log.warn(
            { err: pass.unavailable, failures, retryInMs: delay },
            'outbox relay: the broker is unavailable; saga events stay pending and will be retried',
          );
        } else {
          if (failures > 0) this.opts.log.info({ failures }, 'outbox relay: publishing again');
          failures = 0;
          // A full batch, or one with refusals to retry, means there is more: go on at once.
          // (A batch taken ahead waits for the next pass like any other: going on at once
          // for it would spin, taking small batches back to back, under a steady trickle.)
          if (pass.sent >= this.opts.batchSize || pass.refused > 0) delay = 0;
          else if (pass.sent === 0) {
            delay = this.opts.idleMs;
            foundNothing = true;
          }
        }
      } catch (err) {
        failures += 1;
        delay = this.backoff(failures);
        this.opts.log.warn({ err: errorText(err), failures, retryInMs: delay }, 'outbox relay: database error');
      }
      if (delay > 0 && !this.stopping && !this.fenced) {
        this.idle = foundNothing;
        await this.sleep(delay);
        this.idle = false;
      }
    }
    // Fenced: the producer goes at once, so that the shard's new holder can open it.
    if (this.fenced) await this.closeProducer();
  }

  private backoff(failures: number): number {
    return Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.min(failures - 1, 16));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }
}

/** The same promise, with a handler attached so that a rejection nobody awaits yet is not reported as unhandled. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
