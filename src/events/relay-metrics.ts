// The relay's metrics, on the registry the orchestrator serves at GET /metrics.
// Lag and dead letters are read from the saga log at each scrape, so they are true
// while the broker is down. A process's lag is that of the shards it publishes (it
// answers for those); without a relay (PULSAR_URL unset), the whole saga log's.
import { Counter, Gauge, type Registry } from 'prom-client';
import type pg from 'pg';
import { deadLetterCount, lagSeconds } from './outbox-queries.js';

export interface RelayMetrics {
  published(n: number): void;
  /** The shards this process publishes now. */
  shards(n: number): void;
}

/** `shards`: the shards whose lag this process reports; every shard's when not given. */
export function relayMetrics(registry: Registry, pool: Pick<pg.Pool, 'query'>, shards?: () => readonly number[]): RelayMetrics {
  const published = new Counter({
    name: 'saga_outbox_published_total',
    help: 'Saga events this process published to Pulsar (acknowledged by the broker)',
    registers: [registry],
  });
  const active = new Gauge({
    name: 'saga_outbox_relay_active',
    help: 'Whether this process publishes the events of at least one shard (1) or none (0)',
    registers: [registry],
  });
  new Gauge({
    name: 'saga_outbox_lag_seconds',
    help: 'Age of the oldest saga event not yet published to Pulsar (0 when none), in the shards this process publishes',
    registers: [registry],
    async collect() {
      this.set(await lagSeconds(pool, shards?.()));
    },
  });
  new Gauge({
    name: 'saga_outbox_dead_letters',
    help: 'Saga events set aside after the broker refused them repeatedly (saga_events_descartados); alert when above 0',
    registers: [registry],
    async collect() {
      this.set(await deadLetterCount(pool));
    },
  });
  return {
    published: (n) => published.inc(n),
    // How many: saga_shards_held{owner}, as the relays follow the leases.
    shards: (n) => active.set(n > 0 ? 1 : 0),
  };
}
