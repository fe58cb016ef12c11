// The outbox relay. Every saga transition writes its events into saga_events in the
// same transaction as the saga's state; this relay publishes them to Pulsar and marks
// them (publicado_en). Sagas never wait for it: while the broker is down the rows stay
// pending, the relay retries for ever with a capped backoff, and they drain when the
// broker returns.
//
// Why no event is lost, duplicated or reordered, with broker deduplication on (the
// broker drops a message whose sequence id is not above the highest it stored for
// the producer name):
//  1. One relay per process, for the shards whose lease the process holds (the
//     orchestrator tells it of every lease taken and lost): a saga belongs to one shard
//     for life, and each shard's events go through the shard's one producer, named
//     after the saga log and the shard (`<productor>-<shard>`). Every write of the
//     relay (taking a batch, recording what became of it) is fenced shard by shard: a
//     shard's rows change only while saga_shards says this process holds the shard at
//     the lease's epoch (the row is read FOR SHARE, so a take-over waits for it). A
//     shard lost changes nothing, the relay drops it (the others go on), and what it
//     had in flight keeps its sequence ids: the new holder replays it first, under the
//     same producer name, so the broker drops what it had stored. Pulsar admits one
//     connected producer per name, so the old and new holders never send at once.
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
//     recording what became of it are one statement each, for all the shards at once,
//     and the relay's statements run one after the other (as on one connection).
//  8. A shard's new batch goes out only when nothing older of the shard can still be in
//     flight: a shard taken, or one whose batch was not all stored, first reads what it
//     has in flight (`replay`) and sends that, alone; only once all of it was stored
//     are new rows of the shard sent (rows taken for it meanwhile stay numbered and go
//     out with that replay, in sequence-id order).
// Consumers still dedupe on (saga_id, secuencia) as a second line: a message whose
// outcome was unknown and that is renumbered under rule 5 may be stored twice.
import type { Logger } from 'pino';
import type { ShardLease } from '../cluster/shards.js';
import type { Queryable } from '../persistence/sql.js';
import { claim, inFlight, record, shardProducerName, type Claimed, type OutboxRow, type Recorded, type Refusal } from './outbox-queries.js';
import { planRecord, type PlannedRecord } from './publish-plan.js';
import type { RelayMetrics } from './relay-metrics.js';
import { errorText } from '../log.js';
import type { EventTransport, OutboxMessage } from './transport.js';

/**
 * How long the relay waits after a pass that published less than a full batch. One pass
 * serves every shard the process holds (one claim and one record statement), so the
 * process's statements do not grow with its shards: at 250 ms, 8 a second with the
 * probe off, against 128 for 32 shard relays passing twice a second. An event waits for
 * the next pass at most this long, far under the 2 s the lag may reach; each shard's
 * producer gets a quarter-second of its events at a time, so the broker sees a few
 * batches a second per shard, not ten (passes every 100 ms cost the broker twice the
 * CPU per saga of passes every 500 ms, in scripts/pulsar/load.ts).
 */
export const BUSY_PASS_MS = 250;

export interface OutboxRelayOptions {
  /** The saga log, as the relay's role. */
  db: Queryable;
  /** The prefix of the shards' producer names: shard n publishes as `<producerPrefix>-<n>` (shardProducerName). */
  producerPrefix: string;
  /** A producer under `producerName`, not connected yet: one per shard held. */
  transport: (producerName: string) => EventTransport;
  log: Logger;
  metrics?: RelayMetrics;
  /** Rows per pass, all shards together (all the claimable events of each saga in it). */
  batchSize?: number;
  /** Pause after a pass that took less than a full batch (BUSY_PASS_MS). */
  pollMs?: number;
  /** While nothing is pending: how often one statement asks whether a shard held has events pending. */
  probeMs?: number;
  /** First delay, and cap, of a shard's exponential backoff while the broker is unavailable to it (and of the relay's on database errors). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Refusals of one message before it goes to the dead-letter table. */
  maxAttempts?: number;
  /** Called once for a lease that a write of the relay found lost: the shard is dropped, the process should drop it too. */
  onFenced?: (lease: ShardLease) => void;
}

/** What one pass did, all shards together. */
export interface PassResult {
  sent: number;
  published: number;
  refused: number;
  deadLettered: number;
  /** The first transport failure of the pass, if any. */
  unavailable?: string;
  /** Shards whose lease a write of this pass found lost: nothing of theirs was taken or recorded, and they are dropped. */
  fenced: number[];
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

/** A shard the relay publishes, under the lease it holds it by. */
interface Shard {
  lease: ShardLease;
  /** The shard's producer, `<producerPrefix>-<shard>`. */
  transport: EventTransport;
  /**
   * Rows of the shard may be in flight that this relay is not sending (the previous
   * holder's, a batch not all stored, rows taken while it was sent): they are read and
   * sent before anything new of the shard (rule 8).
   */
  replay: boolean;
  /** Passes in a row in which the broker was unavailable to the shard, and when it is tried again. */
  failures: number;
  retryAt: number;
  /** The shard's send in flight, if any: a shard lost closes its producer once it ends. */
  sending: Promise<unknown> | undefined;
}

/** One shard's part of a pass. */
interface Batch {
  rows: OutboxRow[];
  /** Rows read in flight (sent before, outcome unknown), not taken anew. */
  replay: boolean;
  /** For a replay: every row the shard had in flight is in it. */
  complete: boolean;
}

/** A claim, with the shards it was made for (a row counts only while its shard is still that one). */
interface Taken {
  claimed: Claimed;
  shards: Map<number, Shard>;
}

export class OutboxRelay {
  private readonly opts: Required<Omit<OutboxRelayOptions, 'metrics' | 'onFenced'>> &
    Pick<OutboxRelayOptions, 'metrics' | 'onFenced'>;
  private readonly held = new Map<number, Shard>();
  /** Producers of shards dropped, closing once their send in flight ends. */
  private readonly closing = new Set<Promise<void>>();
  /** The tail of this relay's statements: they run one after the other. */
  private statements: Promise<unknown> = Promise.resolve();
  private loop: Promise<void> | undefined;
  private stopping = false;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  /** The next batch, being taken while a full one was sent (pipelined passes). */
  private prefetched: Promise<Taken> | undefined;
  /** The last pass's record, still running (pipelined passes). */
  private recording: Promise<unknown> | undefined;

  constructor(opts: OutboxRelayOptions) {
    this.opts = {
      batchSize: 5_000,
      pollMs: BUSY_PASS_MS,
      probeMs: 100,
      minBackoffMs: 100,
      maxBackoffMs: 5_000,
      maxAttempts: 5,
      ...opts,
    };
    const { batchSize, pollMs, probeMs, maxAttempts } = this.opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    if (!(pollMs >= 0)) throw new RangeError('pollMs must be >= 0');
    if (!(probeMs > 0)) throw new RangeError('probeMs must be > 0');
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be a positive integer');
  }

  /** The shards published here now, ascending. */
  shards(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * The lease of a shard was taken: the shard joins the next pass, under its own
   * producer, starting with a replay of what its previous holder left in flight. (A
   * shard held by an older lease is dropped first.)
   */
  acquired(lease: ShardLease): void {
    if (this.stopped) return;
    const current = this.held.get(lease.shard);
    if (current !== undefined && current.lease.epoch === lease.epoch) return;
    if (current !== undefined) this.drop(current);
    const transport = this.opts.transport(shardProducerName(this.opts.producerPrefix, lease.shard));
    this.held.set(lease.shard, { lease, transport, replay: true, failures: 0, retryAt: 0, sending: undefined });
    this.opts.metrics?.shards(this.held.size);
  }

  /**
   * The lease of `shard` is lost or given up: later passes leave it out, and its producer
   * closes once its send in flight ends (not awaited: the lease manager is never held up
   * by the broker). What the pass in flight records of it is fenced by its lease.
   */
  lost(shard: number): void {
    const current = this.held.get(shard);
    if (current !== undefined) this.drop(current);
  }

  /** Starts publishing in the background; a no-op when already running. */
  start(): void {
    if (this.loop || this.stopped) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Stops: waits for the pass in flight (its record is fenced like any other), then closes every producer. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped = true;
    this.wakeUp?.();
    const loop = this.loop;
    this.loop = undefined;
    await loop;
    await this.settleAll();
    for (const shard of [...this.held.values()]) this.drop(shard);
    await Promise.all([...this.closing]);
  }

  /**
   * One pass over every shard held: the replays of the shards that need one (rule 8),
   * and new rows of the others, taken in one claim; each shard's rows go out on its own
   * producer, all shards at once; then one record, fenced per shard. Rejects only on
   * database errors (the producers are then closed, and every shard replays first).
   *
   * `pipelined` (the relay's own loop): a shard waiting out its backoff is left out;
   * when the batch is full (more is waiting), the next one is taken while it is sent;
   * and the pass returns as soon as the broker has answered, its record still running
   * when all was stored (the next pass waits for it before recording its own). The
   * next batch holds no saga with an event in flight (the taking skips a saga whose
   * earlier event is still pending); a shard's part of it is sent only if every message
   * of the shard's batch was stored: otherwise it stays numbered, and the shard's
   * replay sends it after its batch's tail, in sequence-id order.
   */
  async publishBatch(opts: { pipelined?: boolean } = {}): Promise<PassResult> {
    const result: PassResult = { sent: 0, published: 0, refused: 0, deadLettered: 0, fenced: [] };
    const { batchSize, maxAttempts } = this.opts;
    try {
      const begun = Date.now();
      const batches = new Map<Shard, Batch>();
      const prefetched = this.prefetched;
      this.prefetched = undefined;
      if (prefetched !== undefined) this.addTaken(batches, await prefetched, result);
      const fromPrefetch = batches.size > 0;
      // The previous record first: what it marks is not in flight any more.
      if (!fromPrefetch) await this.settleRecording();
      // The loop leaves out a shard waiting out its backoff; a pass asked for takes them all.
      const ready = () => (opts.pipelined === true ? this.ready() : [...this.held.values()]);
      const replaying = ready().filter((s) => s.replay);
      if (replaying.length > 0) {
        const rows = await this.serial((db) => inFlight(db, batchSize, replaying.map((s) => s.lease)));
        // Rows come by shard, then sequence id: a shard before the last one read has all of its own.
        const last = rows.length < batchSize ? Infinity : rows.at(-1)!.shard;
        for (const shard of replaying) {
          const mine = rows.filter((r) => r.shard === shard.lease.shard);
          const complete = shard.lease.shard < last;
          if (mine.length > 0) batches.set(shard, { rows: mine, replay: true, complete });
          else if (complete) shard.replay = false;
        }
      }
      if (!fromPrefetch) {
        const steady = ready().filter((s) => !s.replay && !batches.has(s));
        if (steady.length > 0) this.addTaken(batches, await this.take(steady), result);
      }
      // A shard lost while its rows were read is left out: they stay numbered, for its next holder.
      const sending = [...batches].filter(([shard]) => this.held.get(shard.lease.shard) === shard);
      if (sending.length === 0) return result;
      const taken = Date.now();
      const sends = sending.map(([shard, batch]) => {
        const send = shard.transport.publish(batch.rows.map(outboxMessage), { replay: batch.replay });
        shard.sending = send;
        return send.then((outcomes) => {
          if (shard.sending === send) shard.sending = undefined;
          return { shard, batch, plan: planRecord(batch.rows.map((r) => r.id), outcomes, batch.rows.map((r) => r.saga_id)) };
        });
      });
      result.sent = sending.reduce((n, [, batch]) => n + batch.rows.length, 0);
      if (opts.pipelined === true && result.sent >= batchSize) this.prefetched = quiet(this.take(ready()));
      const plans = await Promise.all(sends);
      const sent = Date.now();
      this.afterSend(plans);
      const merged = mergePlans(plans.map((p) => p.plan));
      result.published = merged.published.length;
      result.refused = merged.refused.length + merged.overtaken.length;
      if (merged.unavailable !== undefined) result.unavailable = merged.unavailable;
      // Shards with something to record: the rows left out keep their sequence ids.
      const recorded = plans.filter(({ plan }) => plan.published.length + plan.refused.length + plan.overtaken.length + plan.renumbered.length > 0);
      if (recorded.length === 0) return result;
      // Records run one after the other.
      await this.settleRecording();
      const recording = this.serial((db) => record(db, merged, maxAttempts, recorded.map((p) => p.shard.lease))).then((outcome) => {
        const held = new Set(outcome.held);
        for (const { shard } of recorded) if (!held.has(shard.lease.shard) && this.fence(shard)) result.fenced.push(shard.lease.shard);
        this.afterRecord(merged, outcome, { rows: result.sent, shards: sending.length, takeMs: taken - begun, sendMs: sent - taken, recordMs: Date.now() - sent });
        return outcome;
      });
      const allStored = result.published === result.sent;
      if (opts.pipelined === true && allStored) this.recording = quiet(recording);
      else result.deadLettered = (await recording).deadLettered;
      return result;
    } catch (err) {
      for (const shard of this.held.values()) shard.replay = true;
      await this.closeProducers(err);
      throw err;
    }
  }

  /** The shards held and not waiting out a backoff. */
  private ready(): Shard[] {
    const now = Date.now();
    return [...this.held.values()].filter((s) => s.retryAt <= now);
  }

  /** Takes a new batch of `shards` (one fenced claim); a shard found lost is dropped. */
  private async take(shards: Shard[]): Promise<Taken> {
    if (shards.length === 0) return { claimed: { rows: [], lost: [] }, shards: new Map() };
    const claimed = await this.serial((db) => claim(db, this.opts.batchSize, shards.map((s) => s.lease)));
    return { claimed, shards: new Map(shards.map((s) => [s.lease.shard, s])) };
  }

  /** Adds what a claim took to the pass, for the shards that are still the claim's and need no replay first. */
  private addTaken(batches: Map<Shard, Batch>, { claimed, shards }: Taken, result: PassResult): void {
    for (const lost of claimed.lost) {
      const shard = shards.get(lost);
      if (shard !== undefined && this.fence(shard)) result.fenced.push(lost);
    }
    for (const row of claimed.rows) {
      const shard = shards.get(row.shard);
      // Otherwise the row stays numbered: its shard's replay (or next holder) sends it in order.
      if (shard === undefined || this.held.get(row.shard) !== shard || shard.replay) continue;
      let batch = batches.get(shard);
      if (batch === undefined) batches.set(shard, (batch = { rows: [], replay: false, complete: true }));
      batch.rows.push(row);
    }
  }

  /** Each shard's state after the broker answered: replays, backoffs. */
  private afterSend(plans: Array<{ shard: Shard; batch: Batch; plan: PlannedRecord }>): void {
    const now = Date.now();
    const unavailable: Array<{ shard: number; failures: number; retryInMs: number; err: string }> = [];
    const back: number[] = [];
    for (const { shard, batch, plan } of plans) {
      if (plan.published.length === batch.rows.length) {
        if (!batch.replay || batch.complete) shard.replay = false;
        if (shard.failures > 0) back.push(shard.lease.shard);
        shard.failures = 0;
        shard.retryAt = 0;
        continue;
      }
      // A batch not all stored goes again before anything of its shard taken after it.
      shard.replay = true;
      if (plan.unavailable !== undefined) {
        shard.failures += 1;
        const retryInMs = this.backoff(shard.failures);
        shard.retryAt = now + retryInMs;
        unavailable.push({ shard: shard.lease.shard, failures: shard.failures, retryInMs, err: plan.unavailable });
      }
    }
    if (back.length > 0) this.opts.log.info({ shards: back }, 'outbox relay: publishing again');
    if (unavailable.length > 0) {
      this.opts.log.warn(
        {
          err: unavailable[0]!.err,
          shards: unavailable.map((u) => u.shard),
          failures: Math.max(...unavailable.map((u) => u.failures)),
          retryInMs: Math.min(...unavailable.map((u) => u.retryInMs)),
        },
        'outbox relay: the broker is unavailable; saga events stay pending and will be retried',
      );
    }
  }

  /** A write found `shard`'s lease gone: it is dropped and the owner told, once; false if it was dropped already. */
  private fence(shard: Shard): boolean {
    if (this.held.get(shard.lease.shard) !== shard) return false;
    this.opts.log.warn(
      { shard: shard.lease.shard, epoch: shard.lease.epoch },
      "outbox relay: the shard's lease is not held any more; its events in flight are left to the next holder",
    );
    this.drop(shard);
    this.opts.onFenced?.(shard.lease);
    return true;
  }

  /** Leaves `shard` out of later passes and closes its producer once its send in flight ends. */
  private drop(shard: Shard): void {
    if (this.held.get(shard.lease.shard) === shard) this.held.delete(shard.lease.shard);
    this.opts.metrics?.shards(this.held.size);
    const closing = Promise.resolve(shard.sending)
      .then(() => shard.transport.close())
      .catch((err: unknown) => this.opts.log.warn({ err: errorText(err), shard: shard.lease.shard }, 'outbox relay: closing a producer failed'))
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
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

  /** Lets the record and the taking in flight end (a batch taken and not sent stays numbered: it is replayed). */
  private async settleAll(): Promise<void> {
    const running = [this.recording, this.prefetched].filter((p): p is Promise<unknown> => p !== undefined);
    this.recording = undefined;
    this.prefetched = undefined;
    await Promise.allSettled(running);
  }

  private afterRecord(plan: PlannedRecord, recorded: Recorded, timing: Record<string, number>): void {
    this.opts.log.debug(timing, 'outbox relay: pass');
    this.opts.metrics?.published(recorded.published);
    const refused: Refusal[] = [...plan.overtaken, ...plan.refused];
    if (refused.length > 0) {
      this.opts.log.warn(
        { refused: refused.slice(0, 5), retried: recorded.retried, deadLettered: recorded.deadLettered },
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

  /** After a database error: closes every producer (they open again on their next send), once the record or taking in flight has ended. */
  private async closeProducers(reason: unknown): Promise<void> {
    await this.settleAll();
    await Promise.all([...this.held.values()].map((s) => s.transport.close().catch(() => undefined)));
    this.opts.log.warn({ err: errorText(reason), shards: this.shards() }, 'outbox relay: closed its producers after an error');
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let delay = this.opts.pollMs;
      let idle = false;
      try {
        const pass = await this.publishBatch({ pipelined: true });
        if (failures > 0) this.opts.log.info({ failures }, 'outbox relay: the database answers again');
        failures = 0;
        // A full batch, or one with refusals to retry, means there is more: go on at once.
        // (A batch taken ahead waits for the next pass like any other: going on at once
        // for it would spin, taking small batches back to back, under a steady trickle.)
        if (pass.sent >= this.opts.batchSize || pass.refused > 0) delay = 0;
        else if (pass.sent === 0) idle = true;
      } catch (err) {
        failures += 1;
        delay = this.backoff(failures);
        this.opts.log.warn({ err: errorText(err), failures, retryInMs: delay }, 'outbox relay: database error');
      }
      if (this.stopping) break;
      if (idle) await this.whileIdle();
      else if (delay > 0) await this.sleep(delay);
    }
  }

  /**
   * After a pass that sent nothing: every probeMs, one statement asks whether a shard held
   * (and not backing off) has events pending; the next pass comes when one has, or when a
   * shard's backoff ends. So an idle process costs one probe per probeMs, not a claim.
   */
  private async whileIdle(): Promise<void> {
    for (;;) {
      const retryAt = Math.min(...[...this.held.values()].map((s) => s.retryAt).filter((at) => at > Date.now()));
      const wait = Math.min(this.opts.probeMs, retryAt - Date.now());
      if (wait > 0) await this.sleep(wait);
      if (this.stopping || Date.now() >= retryAt) return;
      if (await this.anyPending()) return;
    }
  }

  /** Whether a ready shard has events pending (in flight included); true when the probe fails, so that the pass says why. */
  private async anyPending(): Promise<boolean> {
    const shards = this.ready().map((s) => s.lease.shard);
    if (shards.length === 0) return false;
    try {
      const { rows } = await this.opts.db.query<{ pending: boolean }>(
        `select exists (select 1 from saga_events
                         where shard = any($1::int[]) and publicado_en is null and descartado_en is null) as pending`,
        [shards],
      );
      return rows[0]?.pending === true;
    } catch (err) {
      this.opts.log.debug({ err: errorText(err) }, 'outbox relay: the probe for pending events failed');
      return true;
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

/** One record for several shards' plans. */
function mergePlans(plans: PlannedRecord[]): PlannedRecord {
  return {
    published: plans.flatMap((p) => p.published),
    refused: plans.flatMap((p) => p.refused),
    overtaken: plans.flatMap((p) => p.overtaken),
    renumbered: plans.flatMap((p) => p.renumbered),
    replay: plans.flatMap((p) => p.replay),
    unavailable: plans.find((p) => p.unavailable !== undefined)?.unavailable,
  };
}

/** The same promise, with a handler attached so that a rejection nobody awaits yet is not reported as unhandled. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
