// What HTTP requests wait on: the saga-log writer NOTIFYs every saga that
// changed (its id and new estado, a few notifications per batch), and this
// listener wakes whoever subscribed to that saga: a client waiting for the end
// (?esperar_ms), a live view (server-sent events), an operator request waiting
// for its order to be decided. When the connection is lost and re-opened, every
// subscriber is woken (what happened meanwhile is unknown: they read again).
import type { Logger } from '../log.js';
import { NotificationListener, SAGA_CHANGES_CHANNEL } from './notifications.js';

/** Called with the saga's new estado, or null after a reconnection (read it again). */
export type ChangeListener = (estado: string | null) => void;

export interface Wait {
  /** Resolves when `until` accepts a change, the time is up, or the listener reconnected. */
  done: Promise<void>;
  cancel(): void;
}

export class SagaChanges {
  private readonly subscribers = new Map<string, Set<ChangeListener>>();
  private readonly listener: NotificationListener;

  constructor(url: string, log: Logger) {
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
