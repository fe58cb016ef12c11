// PostgreSQL notifications between processes, sent on commit by the saga-log
// writer. New sagas reach the process that holds their shard at once (every
// orchestrator LISTENs on NEW_SAGA_CHANNEL), and a BFF learns that a saga has
// ended (SAGA_FINISHED_CHANNEL). The connection is re-opened when it drops;
// what was missed meanwhile is the listener's to catch up on (`onReconnected`).
import pg from 'pg';
import type { Logger } from '../log.js';

/** Payload `shard:sagaId`: a saga was recorded. */
export const NEW_SAGA_CHANNEL = 'saga_nueva';
/** Payload `sagaId`: a saga reached a terminal state. */
export const SAGA_FINISHED_CHANNEL = 'saga_terminada';

export class NotificationListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: string,
    private readonly url: string,
    private readonly log: Logger,
    private readonly onNotification: (payload: string) => void,
    /** Called after a reconnection, when notifications may have been missed. */
    private readonly onReconnected: () => void,
  ) {}

  async start(): Promise<void> {
    await this.connect(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(reconnecting: boolean): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (n) => {
      if (n.channel === this.channel && n.payload !== undefined) this.onNotification(n.payload);
    });
    client.on('error', (err) => this.log.warn({ err: err.message }, 'notification connection lost'));
    client.on('end', () => this.scheduleReconnect());
    try {
      await client.connect();
      await client.query(`listen ${this.channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (!reconnecting) throw err;
      this.scheduleReconnect();
      return;
    }
    this.client = client;
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
