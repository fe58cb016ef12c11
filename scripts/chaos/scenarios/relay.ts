// The outbox relay through the whole storm: every orchestrator of the storm
// runs it (one publishes at a time) against a stand-in for Pulsar's WebSocket
// producer API that deduplicates as a broker with deduplication on does
// (test/fakes/pulsar-websocket.ts). Kills hand the relay over mid-pass, the
// database restarts under it and its answers get lost. At the end the outbox
// must drain, and the broker must hold every event once, in each saga's order.
import { FakeWebSocketBroker } from '../../../test/fakes/pulsar-websocket.js';
import { sleep, type RunContext } from '../context.js';
import type { Check } from '../ledger.js';
import { say } from '../processes.js';

export async function startBroker(): Promise<FakeWebSocketBroker> {
  const broker = new FakeWebSocketBroker();
  // Acknowledged 30 ms after storing, as a broker that syncs its journal first: a relay
  // killed in that window has published what it never recorded, and the relay that takes
  // over must send it again under the same producer name and sequence ids.
  broker.ackDelayMs = 30;
  await broker.start();
  return broker;
}

/** What the orchestrators need to publish to `broker` (its WebSocket API; the binary URL is not dialled). */
export function relayEnv(broker: FakeWebSocketBroker): Record<string, string> {
  return { PULSAR_URL: 'pulsar://127.0.0.1:6650', PULSAR_WEB_URL: broker.url, PULSAR_TRANSPORT: 'websocket' };
}

/**
 * Runs `scenario` (one that kills every orchestrator) while the broker holds its
 * acknowledgements for 3 s, so that the active relay dies with messages the broker
 * stored and never answered. The relay that takes over sends them again: under the
 * same producer name and sequence ids the broker drops the copies, under another
 * name it stores them twice (R1).
 */
export async function withAcknowledgementsHeld(ctx: RunContext, broker: FakeWebSocketBroker, scenario: () => Promise<void>): Promise<void> {
  const before = broker.duplicates.length;
  let heldAtMost = 0;
  const watch = setInterval(() => (heldAtMost = Math.max(heldAtMost, broker.unanswered)), 10);
  const { ackDelayMs } = broker;
  broker.ackDelayMs = 3_000;
  try {
    await scenario();
  } finally {
    clearInterval(watch);
    broker.ackDelayMs = ackDelayMs;
  }
  ctx.ledger.note(
    'relay',
    `acknowledgements held while every orchestrator was killed: up to ${heldAtMost} messages stored and unanswered; ` +
      `${broker.duplicates.length - before} copies sent again by the relay that took over, dropped by the broker`,
  );
}

/** Waits (at most `boundMs`) for every event to be published or set aside, then adds R1. */
export async function outboxDrained(ctx: RunContext, broker: FakeWebSocketBroker, boundMs = 60_000): Promise<void> {
  const t0 = Date.now();
  let pending = -1;
  while (Date.now() - t0 < boundMs) {
    const [row] = await ctx.db.query<{ n: number }>('select count(*)::int as n from saga_events where publicado_en is null and descartado_en is null');
    pending = row?.n ?? -1;
    if (pending === 0) break;
    await sleep(250);
  }
  say(pending === 0 ? `outbox drained ${((Date.now() - t0) / 1000).toFixed(1)} s after the last saga ended` : `outbox NOT drained: ${pending} events pending`);
  ctx.ledger.note(
    'relay',
    `${broker.stored.length} events stored by the broker, ${broker.duplicates.length} copies it dropped as duplicates, ` +
      `${broker.sessions.length} producer sessions (${new Set(broker.sessions.map((s) => s.get('producerName'))).size} producer name(s))`,
  );
  ctx.ledger.checks.push(everyEventOnce(broker));
}

/**
 * R1: the outbox drained (every event published, none set aside), and the
 * broker stored each event exactly once, each saga's in sequence order, and
 * nothing that is not in the outbox.
 */
function everyEventOnce(broker: FakeWebSocketBroker): Check {
  return {
    name: 'R1',
    description: 'the relay, under the same faults: every event reaches the deduplicating broker once, in each saga\'s order',
    async run(query) {
      const rows = await query<{ saga_id: string; secuencia: number; published: boolean; discarded: boolean }>(
        'select saga_id::text, secuencia, publicado_en is not null as published, descartado_en is not null as discarded from saga_events',
      );
      const violations: string[] = [];
      const stored = new Map<string, number>();
      const lastBySaga = new Map<string, number>();
      for (const m of broker.stored) {
        const e = JSON.parse(m.payload) as { saga_id: string; secuencia: number };
        const key = `${e.saga_id}/${e.secuencia}`;
        stored.set(key, (stored.get(key) ?? 0) + 1);
        const last = lastBySaga.get(e.saga_id) ?? 0;
        if (e.secuencia <= last) violations.push(`${e.saga_id}: event ${e.secuencia} stored after event ${last}`);
        lastBySaga.set(e.saga_id, Math.max(last, e.secuencia));
      }
      const inOutbox = new Set<string>();
      for (const r of rows) {
        const key = `${r.saga_id}/${r.secuencia}`;
        inOutbox.add(key);
        if (r.discarded) violations.push(`${key}: set aside as a dead letter`);
        else if (!r.published) violations.push(`${key}: never published`);
        const n = stored.get(key) ?? 0;
        if (r.published && n === 0) violations.push(`${key}: marked published, never stored by the broker (lost)`);
        if (n > 1) violations.push(`${key}: stored ${n} times`);
      }
      for (const key of stored.keys()) if (!inOutbox.has(key)) violations.push(`${key}: stored by the broker, not in the outbox`);
      return { checked: rows.length, violations };
    },
  };
}
