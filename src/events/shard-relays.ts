// The relays of one process: one OutboxRelay per shard whose lease the process holds.
// A shard taken starts its relay, under the shard's producer name; a shard lost or
// given up stops it. Stopping does not hold up the lease manager: the relay's pass in
// flight ends on its own (its record is fenced by the lease, so after a take-over it
// changes nothing), then its producer closes, and the shard's next holder, whose
// producer the broker refuses until then (one producer per name), replays what is
// left in flight under the same sequence ids.
import type { Logger } from 'pino';
import type { ShardLease } from '../cluster/shards.js';
import { errorText } from '../log.js';
import type { Queryable } from '../persistence/sql.js';
import { shardProducerName } from './outbox-queries.js';
import { OutboxRelay, type OutboxRelayOptions } from './outbox-relay.js';
import type { RelayMetrics } from './relay-metrics.js';
import type { EventTransport } from './transport.js';

export interface ShardRelaysOptions {
  db: Queryable;
  log: Logger;
  /** The prefix of the shards' producer names (the saga log's productor, or PULSAR_PRODUCER_NAME). */
  producerPrefix: string;
  /** A producer under `producerName`, not connected yet. */
  transport: (producerName: string) => EventTransport;
  metrics?: RelayMetrics;
  /** A relay's write was refused by the fence: the process should treat `lease` as lost. */
  onFenced?: (lease: ShardLease) => void;
  /** Batch size, poll and backoff of every shard's relay (pollMs, when given, is also the period of the pending probe; 100 ms otherwise, and 500 ms between a busy relay's passes). */
  relay?: Pick<OutboxRelayOptions, 'batchSize' | 'pollMs' | 'idleMs' | 'minBackoffMs' | 'maxBackoffMs' | 'maxAttempts'>;
}

/** How long an idle shard's relay waits before it looks again by itself, when the probe did not wake it. */
const IDLE_MS = 1_000;
/**
 * How long a busy shard's relay waits after a pass that published less than a full batch.
 * A process runs a relay per shard it holds (32 at 1 + 1): passing every 100 ms, as one
 * relay for the whole log did, they made ten times the passes of that one relay, each with
 * a few events, and doubled PostgreSQL's CPU per saga under npm start (scripts/pulsar/load.ts).
 * At most two passes a second per shard keep an event's wait for its pass under 0.5 s.
 */
const BUSY_PASS_MS = 500;

/** The shard relays of a process; `acquired` and `lost` follow its lease manager. */
export class ShardRelays {
  private readonly running = new Map<number, OutboxRelay>();
  private readonly stopping = new Set<Promise<void>>();
  private stopped = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;

  constructor(private readonly opts: ShardRelaysOptions) {}

  /** The shards published here now, ascending. */
  shards(): number[] {
    return [...this.running.keys()].sort((a, b) => a - b);
  }

  /** The relay of `shard`, if it runs here (tests). */
  relay(shard: number): OutboxRelay | undefined {
    return this.running.get(shard);
  }

  /** The lease of a shard was taken: its relay starts (a relay of an older lease of the shard is stopped first). */
  acquired(lease: ShardLease): void {
    if (this.stopped) return;
    const current = this.running.get(lease.shard);
    if (current !== undefined && current.lease.epoch === lease.epoch) return;
    if (current !== undefined) this.lost(lease.shard);
    const relay = new OutboxRelay({
      idleMs: IDLE_MS,
      pollMs: BUSY_PASS_MS,
      ...this.opts.relay,
      db: this.opts.db,
      lease,
      transport: this.opts.transport(shardProducerName(this.opts.producerPrefix, lease.shard)),
      log: this.opts.log,
      ...(this.opts.metrics === undefined ? {} : { metrics: this.opts.metrics }),
      onFenced: (fenced) => {
        if (this.running.get(fenced.shard) === relay) this.lost(fenced.shard);
        this.opts.onFenced?.(fenced);
      },
    });
    this.running.set(lease.shard, relay);
    relay.start();
    this.opts.metrics?.shards(this.running.size);
    this.scheduleProbe();
  }

  /**
   * Every pollMs, one statement asks which of the shards published here have events
   * pending, and wakes those shards' idle relays; the others stay asleep (IDLE_MS). So an
   * idle process costs one probe per pollMs, not one claim per shard.
   */
  private scheduleProbe(): void {
    if (this.stopped || this.probeTimer !== undefined) return;
    this.probeTimer = setTimeout(() => {
      this.probing = this.probe().finally(() => {
        this.probeTimer = undefined;
        this.probing = undefined;
        if (this.running.size > 0) this.scheduleProbe();
      });
    }, this.opts.relay?.pollMs ?? 100);
  }

  private async probe(): Promise<void> {
    const shards = this.shards();
    if (shards.length === 0) return;
    try {
      const { rows } = await this.opts.db.query<{ shard: number }>(
        `select s as shard from unnest($1::int[]) as s
          where exists (select 1 from saga_events e where e.shard = s and e.publicado_en is null and e.descartado_en is null)`,
        [shards],
      );
      for (const { shard } of rows) this.running.get(shard)?.wake();
    } catch (err) {
      this.opts.log.debug({ err: errorText(err) }, 'outbox relay: the probe for pending events failed');
    }
  }

  /** The lease of `shard` is lost or given up: its relay stops (not awaited: see stop). */
  lost(shard: number): void {
    const relay = this.running.get(shard);
    if (relay === undefined) return;
    this.running.delete(shard);
    this.opts.metrics?.shards(this.running.size);
    const stopping = relay
      .stop()
      .catch((err: unknown) => this.opts.log.warn({ err: errorText(err), shard }, 'outbox relay: stopping failed'))
      .finally(() => this.stopping.delete(stopping));
    this.stopping.add(stopping);
  }

  /** Stops every relay and waits for them, those already stopping included. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.probeTimer);
    await this.probing;
    for (const shard of this.shards()) this.lost(shard);
    await Promise.all([...this.stopping]);
  }
}
