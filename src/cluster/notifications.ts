// PostgreSQL notifications between processes, sent on commit by the saga-log
// writer, a few per batch. New sagas reach the process that holds their shard
// at once (on that process's own channel), a BFF learns that a
// saga changed (SAGA_CHANGES_CHANNEL: it wakes clients waiting for the end,
// live views and operator requests), and an operator order reaches its saga's
// process (SAGA_ORDER_CHANNEL). The connection is re-opened when it drops;
// what was missed meanwhile is the listener's to catch up on (`onReconnected`).
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log.js';

/**
 * Payload `shard:sagaId,shard:sagaId,…`: sagas were recorded in shards that no
 * live process holds. Sagas of a held shard are told on their holder's own
 * channel (`newSagaChannelOf`), so one process wakes, not all of them.
 */
export const NEW_SAGA_CHANNEL = 'saga_nueva';

/** The channel on which a shard holder hears of new sagas in its shards; the writer's SQL computes the same name. */
export function newSagaChannelOf(nodeId: string): string {
  return `${NEW_SAGA_CHANNEL}_${createHash('md5').update(nodeId).digest('hex').slice(0, 16)}`;
}
/** Payload `sagaId estado,sagaId estado,…`: sagas changed (were recorded, moved, or had an order decided). */
export const SAGA_CHANGES_CHANNEL = 'saga_cambios';
/** Payload `shard:sagaId`: an operator order waits in saga_ordenes for that saga. */
export const SAGA_ORDER_CHANNEL = 'saga_orden';
/** Payload the lote's id: an operator recorded a lote, for the orchestrators' lote workers. */
export const SAGA_LOTE_CHANNEL = 'saga_lote';

export class NotificationListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  /** Counts the connections that listened; `listening` while the current one does. */
  private session = 0;
  private listening = false;

  constructor(
    private readonly channels: readonly string[],
    private readonly url: string,
    private readonly log: Logger,
    private readonly onNotification: (payload: string, channel: string) => void,
    /** Called after a reconnection, when notifications may have been missed. */
    private readonly onReconnected: () => void,
  ) {}

  async start(): Promise<void> {
    await this.connect(false);
  }

  /**
   * The current connection's number while it listens, else undefined. Equal numbers at two
   * moments mean one connection listened throughout, so every notification committed in
   * between was delivered to it (a connection lost unnoticed is the exception: see its reconnect).
   */
  get continuity(): number | undefined {
    return this.listening ? this.session : undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.listening = false;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(reconnecting: boolean): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (n) => {
      if (this.channels.includes(n.channel) && n.payload !== undefined) this.onNotification(n.payload, n.channel);
    });
    client.on('error', (err) => {
      if (this.client === client) this.listening = false;
      this.log.warn({ err: err.message }, 'notification connection lost');
    });
    client.on('end', () => {
      if (this.client === client) this.listening = false;
      this.scheduleReconnect();
    });
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`listen ${channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (!reconnecting) throw err;
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    this.session++;
    this.listening = true;
    if (reconnecting) {
      this.log.info('notification connection re-opened');
      this.onReconnected();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.connect(true).catch((err: unknown) => this.log.warn({ err }, 'reconnect failed'));
    }, 1_000);
  }
}
