// The relay's metrics, on the registry the orchestrator serves at GET /metrics.
// Lag and dead letters are read from the saga log at each scrape, so they are true
// whichever process is the active relay, and while the broker is down.
import { Counter, Gauge, type Registry } from 'prom-client';
import type pg from 'pg';
import { deadLetterCount, lagSeconds } from './outbox-queries.js';

export interface RelayMetrics {
  published(n: number): void;
  active(yes: boolean): void;
}

export function relayMetrics(registry: Registry, pool: Pick<pg.Pool, 'query'>): RelayMetrics {
  const published = new Counter({
    name: 'saga_outbox_published_total',
    help: 'Saga events this process published to Pulsar (acknowledged by the broker)',
    registers: [registry],
  });
  const active = new Gauge({
    name: 'saga_outbox_relay_active',
    help: '1 while this process is the saga log\'s active outbox relay',
    registers: [registry],
  });
  new Gauge({
    name: 'saga_outbox_lag_seconds',
    help: 'Age of the oldest saga event not yet published to Pulsar (0 when none)',
    registers: [registry],
    async collect() {
      this.set(await lagSeconds(pool));
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
    active: (yes) => active.set(yes ? 1 : 0),
  };
}
