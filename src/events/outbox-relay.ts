// The outbox relay: every saga transition writes a row into saga_events in the same
// transaction as the saga state; this relay publishes the rows not yet published to
// Pulsar and marks them (publicado_en). Sagas never wait for the broker: when it is
// down the rows simply stay pending and drain when it returns. Delivery is
// at-least-once (a crash between the broker's ack and our commit republishes a
// batch); a broker with deduplication drops those replays by sequenceId.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { PulsarProducer, PulsarProducerMessage } from './pulsar.js';

export type OutboxProducer = Pick<PulsarProducer, 'send'>;

export interface OutboxRelayOptions {
  pool: Pick<pg.Pool, 'connect'>;
  producer: OutboxProducer;
  log: Logger;
  /** Rows per transaction. */
  batchSize?: number;
  /** Pause between passes when there is nothing (or not a full batch) to publish. */
  pollMs?: number;
  /** Cap of the exponential backoff after a failure. */
  maxBackoffMs?: number;
  /** Key of the transaction-level advisory lock that makes one relay active at a time. */
  lockKey?: number;
}

/** A saga_events row as the relay reads it. */
export interface OutboxRow {
  id: string; // bigserial: pg returns int8 as a string
  saga_id: string;
  secuencia: number;
  tipo: string;
  estado: string;
  payload: unknown;
  fecha: Date;
}

/** Default advisory lock key of the relay (arbitrary, distinct from the migration lock). */
export const OUTBOX_RELAY_LOCK_KEY = 727275;

/** The Pulsar message for one outbox row. */
export function outboxMessage(row: OutboxRow): PulsarProducerMessage {
  const id = Number(row.id);
  const fecha = row.fecha instanceof Date ? row.fecha : new Date(row.fecha);
  return {
    data: Buffer.from(
      JSON.stringify({
        id,
        saga_id: row.saga_id,
        secuencia: row.secuencia,
        tipo: row.tipo,
        estado: row.estado,
        payload: row.payload,
        fecha: fecha.toISOString(),
      }),
    ),
    properties: { tipo: row.tipo, saga_id: row.saga_id, secuencia: String(row.secuencia) },
    partitionKey: row.saga_id,
    // Row ids increase, so a broker with deduplication drops replays of a batch. It also
    // drops any id not above the last one it persisted for this producer name: see the
    // note on out-of-order commits below.
    sequenceId: id,
    eventTimestamp: fecha.getTime(),
  };
}

export class PublishError extends Error {
  override name = 'PublishError';
}

export class OutboxRelay {
  private readonly pool: Pick<pg.Pool, 'connect'>;
  private readonly producer: OutboxProducer;
  private readonly log: Logger;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly maxBackoffMs: number;
  private readonly lockKey: number;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wakeUp: (() => void) | undefined;

  constructor(opts: OutboxRelayOptions) {
    this.pool = opts.pool;
    this.producer = opts.producer;
    this.log = opts.log;
    this.batchSize = opts.batchSize ?? 100;
    this.pollMs = opts.pollMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5_000;
    this.lockKey = opts.lockKey ?? OUTBOX_RELAY_LOCK_KEY;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    if (!(this.pollMs >= 0)) throw new RangeError('pollMs must be >= 0');
  }

  /** Starts polling in the background; a no-op when already running. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Stops polling and waits for the batch in flight (committed or rolled back). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    const loop = this.loop;
    this.loop = undefined;
    await loop;
  }

  /**
   * One pass: publishes up to batchSize pending rows in id order and marks them, in one
   * transaction. Returns how many were published (0 when another relay holds the lock).
   * Rejects when the broker fails; the transaction is then rolled back and the rows stay
   * pending.
   */
  async publishBatch(): Promise<number> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('begin');
      try {
        // One relay at a time, across processes. Row locks alone (SKIP LOCKED) would
        // keep two relays off the same row, but a second relay would then publish the
        // *next* rows of a saga while the first is still publishing earlier ones, and
        // per-saga order would be lost. The lock is released at commit or rollback.
        const lock = await client.query<{ locked: boolean }>('select pg_try_advisory_xact_lock($1) as locked', [
          this.lockKey,
        ]);
        if (lock.rows[0]?.locked !== true) {
          await client.query('rollback');
          return 0;
        }
        // Note for later: a watermark ("publish ids above the last one published") could
        // skip a row whose transaction took its id before, but committed after, rows with
        // higher ids. Selecting every row with publicado_en is null does not skip it; it
        // is published late, after those higher ids. (With broker deduplication on, such a
        // late, lower sequenceId would be dropped as a duplicate by the broker.)
        // SKIP LOCKED is a second guard should the advisory lock ever be taken away.
        const { rows } = await client.query<OutboxRow>(
          `select id, saga_id, secuencia, tipo, estado, payload, fecha
             from saga_events
            where publicado_en is null
            order by id
            limit $1
              for update skip locked`,
          [this.batchSize],
        );
        if (rows.length === 0) {
          await client.query('commit');
          return 0;
        }
        // Sent in id order without waiting between them: the producer keeps the order of
        // send() calls. Every send is settled before we decide, so none is still in flight
        // after a rollback.
        const results = await Promise.allSettled(rows.map((row) => this.producer.send(outboxMessage(row))));
        const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failures.length > 0) {
          const first: unknown = failures[0]?.reason;
          throw new PublishError(
            `${failures.length} of ${rows.length} sends to Pulsar failed: ${first instanceof Error ? first.message : String(first)}`,
            { cause: first },
          );
        }
        await client.query('update saga_events set publicado_en = now() where id = any($1::bigint[])', [
          rows.map((r) => r.id),
        ]);
        await client.query('commit');
        return rows.length;
      } catch (err) {
        try {
          await client.query('rollback');
        } catch (rollbackErr) {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        }
        throw err;
      }
    } finally {
      // A connection whose rollback failed is discarded rather than reused.
      client.release(broken);
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let delay = this.pollMs;
      try {
        const published = await this.publishBatch();
        if (failures > 0) this.log.info({ failures }, 'outbox relay: publishing again');
        failures = 0;
        // A full batch means there may be more: go on at once.
        if (published >= this.batchSize) delay = 0;
      } catch (err) {
        failures += 1;
        delay = Math.min(this.maxBackoffMs, Math.max(this.pollMs, 100) * 2 ** Math.min(failures - 1, 16));
        this.log.warn(
          { err, failures, retryInMs: delay },
          'outbox relay: could not publish saga events; they stay pending and will be retried',
        );
      }
      if (delay > 0 && !this.stopping) await this.sleep(delay);
    }
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
