// What HTTP requests wait on: the saga-log writer NOTIFYs the changes a BFF
// waits on (its id and new estado, a few notifications per batch): a saga that
// ended, an operator order decided, and every change of a saga watched live
// (`watch`, recorded in saga_vigilancias while a live view is open). This
// listener wakes whoever subscribed to that saga: a client waiting for the end
// (?esperar_ms), a live view (server-sent events), an operator request waiting
// for its order to be decided. When the connection is lost and re-opened, every
// subscriber is woken (what happened meanwhile is unknown: they read again).
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Queryable } from '../persistence/sql.js';
import { NotificationListener, SAGA_CHANGES_CHANNEL } from './notifications.js';

/** Called with the saga's new estado, or null after a reconnection (read it again). */
export type ChangeListener = (estado: string | null) => void;

export interface Wait {
  /** Resolves when `until` accepts a change, the time is up, or the listener reconnected. */
  done: Promise<void>;
  cancel(): void;
}

/** How long a watch lasts unless renewed: a BFF that dies leaves its watches for at most this long. */
export const WATCH_TTL_S = 600;

export class SagaChanges {
  private readonly subscribers = new Map<string, Set<ChangeListener>>();
  private readonly listener: NotificationListener;

  /** `db` records the live watches (`watch`); without it a watch records nothing (only ends and decided orders are told). */
  constructor(
    url: string,
    private readonly log: Logger,
    private readonly db?: Queryable,
  ) {
    this.listener = new NotificationListener(
      [SAGA_CHANGES_CHANNEL],
      url,
      log,
      (payload) => this.changed(payload),
      () => [...this.subscribers.keys()].forEach((id) => this.notify(id, null)),
    );
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  async stop(): Promise<void> {
    await this.listener.stop();
    [...this.subscribers.keys()].forEach((id) => this.notify(id, null));
  }

  /** Calls `onChange` at every change of the saga until the returned function is called. */
  subscribe(sagaId: string, onChange: ChangeListener): () => void {
    const set = this.subscribers.get(sagaId) ?? new Set();
    set.add(onChange);
    this.subscribers.set(sagaId, set);
    return () => {
      set.delete(onChange);
      if (set.size === 0 && this.subscribers.get(sagaId) === set) this.subscribers.delete(sagaId);
    };
  }

  /**
   * Records that `sagaId` is watched live, until the returned function is
   * called, so that the writer tells every change of it and not only its end.
   * Resolves once recorded: a change committed after that is told. Never
   * rejects: a watch that cannot be recorded is logged, and then only the
   * saga's end is told.
   */
  async watch(sagaId: string): Promise<() => void> {
    const db = this.db;
    if (db === undefined) return () => undefined;
    const id = randomUUID();
    const until = `now() + make_interval(secs => ${WATCH_TTL_S})`;
    try {
      await db.query(`insert into saga_vigilancias (id, saga_id, hasta) values ($1, $2, ${until})`, [id, sagaId]);
    } catch (err) {
      this.log.warn({ err, sagaId }, 'live watch not recorded: only the end of the saga will be told');
      return () => undefined;
    }
    const renew = setInterval(() => {
      db.query(`update saga_vigilancias set hasta = ${until} where id = $1`, [id]).catch((err: unknown) =>
        this.log.warn({ err, sagaId }, 'live watch not renewed'),
      );
    }, (WATCH_TTL_S * 1000) / 3);
    renew.unref();
    return () => {
      clearInterval(renew);
      db.query('delete from saga_vigilancias where id = $1 or hasta < now()', [id]).catch((err: unknown) =>
        this.log.warn({ err, sagaId }, 'live watch not removed (it lapses by itself)'),
      );
    };
  }

  /**
   * Waits at most `ms` for a change `until` accepts (any change by default).
   * Register before reading the saga, so a change in between is not missed.
   */
  wait(sagaId: string, ms: number, until: (estado: string) => boolean = () => true): Wait {
    let cancel = () => undefined as void;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => cancel(), ms);
      const unsubscribe = this.subscribe(sagaId, (estado) => {
        if (estado === null || until(estado)) cancel();
      });
      cancel = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      };
    });
    return { done, cancel };
  }

  private changed(payload: string): void {
    for (const entry of payload.split(',')) {
      const space = entry.indexOf(' ');
      if (space > 0) this.notify(entry.slice(0, space), entry.slice(space + 1));
    }
  }

  private notify(sagaId: string, estado: string | null): void {
    const set = this.subscribers.get(sagaId);
    if (set === undefined) return;
    for (const listener of [...set]) listener(estado);
  }
}
