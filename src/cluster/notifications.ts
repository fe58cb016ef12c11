// New sagas reach the process that holds their shard at once: the creating
// transaction sends a NOTIFY, and every orchestrator LISTENs. The connection is
// re-opened when it drops; notifications missed meanwhile are caught by the
// periodic sweep (and one right after reconnecting).
import pg from 'pg';
import type { Logger } from '../log.js';

export const NEW_SAGA_CHANNEL = 'saga_nueva';

export class NotificationListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
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
      if (n.channel === NEW_SAGA_CHANNEL && n.payload !== undefined) this.onNotification(n.payload);
    });
    client.on('error', (err) => this.log.warn({ err: err.message }, 'notification connection lost'));
    client.on('end', () => this.scheduleReconnect());
    try {
      await client.connect();
      await client.query(`listen ${NEW_SAGA_CHANNEL}`);
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
