// The outbox relay. Every saga transition writes its events into saga_events in the
// same transaction as the saga's state; this relay publishes them to Pulsar and marks
// them (publicado_en). Sagas never wait for it: while the broker is down the rows stay
// pending, the relay retries for ever with a capped backoff, and they drain when the
// broker returns.
//
// Why no event is lost, duplicated or reordered, with broker deduplication on (the
// broker drops a message whose sequence id is not above the highest it stored for
// the producer name):
//  1. One active relay per saga log: a session advisory lock, held on the relay's own
//     connection. It pins no snapshot (no transaction stays open), and it goes away
//     with the connection, so a dead process's relay is replaced at once. Every
//     statement of a pass runs on that connection, so a relay that lost the lock can
//     change nothing. Only the active relay opens the producer, under the one
//     producer name of the saga log (saga_outbox_relay.productor).
//  2. Rows are taken only below the xmin horizon (transaccion < the oldest transaction
//     still running): ids are drawn before commit, so a writer can commit a lower id
//     after higher ones are visible; a row below the horizon can no longer be
//     overtaken by one committed later. What is taken (oldest transactions first) is
//     therefore stable: the same whichever relay runs, and whenever.
//  3. Each taken row gets its sequence id when taken (one past the last ever given, kept
//     in saga_outbox_relay), saga by saga and in each saga's secuencia order; the batch
//     is sent in sequence-id order, so sequence ids grow in publish order.
//     A row keeps its id until the broker acknowledges it: a replay after a crash or
//     an outage sends the same id, and the broker drops the copy it already has.
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
//     recording what became of it are one statement each.
// Consumers still dedupe on (saga_id, secuencia) as a second line: a message whose
// outcome was unknown and that is renumbered under rule 5 may be stored twice.
import pg from 'pg';
import type { Logger } from 'pino';
import { claim, inFlight, record, type OutboxRow, type Recorded } from './outbox-queries.js';
import { planRecord } from './publish-plan.js';
import type { RelayMetrics } from './relay-metrics.js';
import { errorText } from '../log.js';
import type { EventTransport, OutboxMessage } from './transport.js';

export interface OutboxRelayOptions {
  databaseUrl: string;
  transport: EventTransport;
  log: Logger;
  metrics?: RelayMetrics;
  /** Rows per batch (all the claimable events of each saga in it). */
  batchSize?: number;
  /** Pause between passes when there is nothing (or not a full batch) to publish. */
  pollMs?: number;
  /** First delay, and cap, of the exponential backoff while the broker is unavailable. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often a standby relay tries to become the active one. */
  lockRetryMs?: number;
  /** Refusals of one message before it goes to the dead-letter table. */
  maxAttempts?: number;
  /** Key of the session advisory lock that makes one relay active at a time. */
  lockKey?: number;
}

/** Default advisory lock key of the relay (arbitrary, distinct from the migration lock). */
export const OUTBOX_RELAY_LOCK_KEY = 727275;

/** What one pass did. */
export interface PassResult {
  /** False when another relay is the active one (nothing was done). */
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
  private readonly opts: Required<Omit<OutboxRelayOptions, 'metrics'>> & { metrics: RelayMetrics | undefined };
  private lock: pg.Client | undefined;
  private lockLost: Error | undefined;
  private loop: Promise<void> | undefined;
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
      minBackoffMs: 100,
      maxBackoffMs: 5_000,
      lockRetryMs: 1_000,
      maxAttempts: 5,
      lockKey: OUTBOX_RELAY_LOCK_KEY,
      ...opts,
      metrics: opts.metrics,
    };
    const { batchSize, pollMs, maxAttempts } = this.opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    if (!(pollMs >= 0)) throw new RangeError('pollMs must be >= 0');
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be a positive integer');
  }

  get transportName(): string {
    return this.opts.transport.name;
  }

  /** Starts publishing in the background; a no-op when already running. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Stops, waits for the pass in flight, closes the producer and gives up the lock. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    const loop = this.loop;
    this.loop = undefined;
    await loop;
    await this.resign();
  }

  /**
   * One pass: becomes the active relay if no other is, sends the batch in flight (or
   * takes a new one) and records what became of it. Rejects only on database errors
   * (the lock is then given up).
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
    const lock = await this.acquire();
    if (!lock) return idle;
    try {
      const begun = Date.now();
      const prefetched = this.prefetched;
      this.prefetched = undefined;
      let rows = prefetched === undefined ? [] : await prefetched;
      let replay = false;
      if (rows.length === 0) {
        // The previous record first: what it marks is not in flight any more.
        await this.settleRecording();
        rows = await inFlight(lock, this.opts.batchSize);
        replay = rows.length > 0;
        if (!replay) rows = await claim(lock, this.opts.batchSize);
      }
      if (rows.length === 0) return { ...idle, active: true };
      const taken = Date.now();
      const sending = this.opts.transport.publish(rows.map(outboxMessage), { replay });
      if (opts.pipelined === true) this.prefetched = quiet(claim(lock, this.opts.batchSize));
      const outcomes = await sending;
      const sent = Date.now();
      const plan = planRecord(
        rows.map((r) => r.id),
        outcomes,
        rows.map((r) => r.saga_id),
      );
      if (this.lockLost) throw this.lockLost;
      // Records run one after the other, on the lock's connection.
      await this.settleRecording();
      const recording = record(lock, plan, this.opts.maxAttempts).then((recorded) => {
        this.afterRecord(plan, recorded, { rows: rows.length, takeMs: taken - begun, sendMs: sent - taken, recordMs: Date.now() - sent });
        return recorded;
      });
      const allStored = plan.published.length === rows.length;
      let deadLettered = 0;
      if (opts.pipelined === true && allStored) this.recording = quiet(recording);
      else {
        deadLettered = (await recording).deadLettered;
        // A failed batch goes again before anything taken after it: the next pass
        // replays what is in flight, the next batch included, in sequence-id order.
        if (this.prefetched !== undefined) {
          const next = this.prefetched;
          this.prefetched = undefined;
          await next;
        }
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
      await this.resign(err);
      throw err;
    }
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

  /** The lock connection, opened and locked if it is not yet; undefined when another relay holds it. */
  private async acquire(): Promise<pg.Client | undefined> {
    if (this.lock && !this.lockLost) return this.lock;
    if (this.lock) await this.resign(this.lockLost);
    const client = new pg.Client({ connectionString: this.opts.databaseUrl });
    client.on('error', (err) => {
      this.lockLost ??= err;
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [this.opts.lockKey]);
      if (rows[0]?.locked !== true) {
        await client.end();
        return undefined;
      }
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.lock = client;
    this.lockLost = undefined;
    this.opts.metrics?.active(true);
    this.opts.log.info({ transport: this.opts.transport.name, target: this.opts.transport.target }, 'outbox relay: active');
    return client;
  }

  /** Closes the producer first (so the next relay can open it), then the lock connection. */
  private async resign(reason?: unknown): Promise<void> {
    // A record or a taking still running on the lock's connection ends first (a batch
    // taken and not sent stays numbered: the next active relay replays it).
    const running = [this.recording, this.prefetched].filter((p): p is Promise<unknown> => p !== undefined);
    this.recording = undefined;
    this.prefetched = undefined;
    await Promise.allSettled(running);
    const lock = this.lock;
    this.lock = undefined;
    this.lockLost = undefined;
    await this.opts.transport.close().catch(() => undefined);
    if (!lock) return;
    this.opts.metrics?.active(false);
    if (reason !== undefined) this.opts.log.warn({ err: errorText(reason) }, 'outbox relay: gave up being the active relay');
    await lock.end().catch(() => undefined);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let delay = this.opts.pollMs;
      try {
        const pass = await this.publishBatch({ pipelined: true });
        if (!pass.active) delay = this.opts.lockRetryMs;
        else if (pass.unavailable !== undefined) {
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
        }
      } catch (err) {
        failures += 1;
        delay = this.backoff(failures);
        this.opts.log.warn({ err: errorText(err), failures, retryInMs: delay }, 'outbox relay: database error');
      }
      if (delay > 0 && !this.stopping) await this.sleep(delay);
    }
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
