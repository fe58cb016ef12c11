// Lets a BFF request wait for a saga to end instead of polling: the saga-log
// writer NOTIFYs each saga that reaches a terminal state, and this listener
// wakes the requests waiting for it. A wait always ends by its deadline, and
// every wait ends at once when the connection was lost and re-opened (what
// happened meanwhile is unknown, so the request reads the status again).
import type { Logger } from '../log.js';
import { NotificationListener, SAGA_FINISHED_CHANNEL } from '../cluster/notifications.js';

export interface Wait {
  /** Resolves when the saga ended, the deadline passed, or the listener reconnected. */
  done: Promise<void>;
  cancel(): void;
}

export class SagaCompletions {
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly listener: NotificationListener;

  constructor(url: string, log: Logger) {
    this.listener = new NotificationListener(
      SAGA_FINISHED_CHANNEL,
      url,
      log,
      (sagaId) => this.wake(sagaId),
      () => [...this.waiting.keys()].forEach((id) => this.wake(id)),
    );
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  async stop(): Promise<void> {
    await this.listener.stop();
    [...this.waiting.keys()].forEach((id) => this.wake(id));
  }

  /** Registers before the caller reads the status, so an end in between is not missed. */
  wait(sagaId: string, ms: number): Wait {
    let finish = () => undefined as void;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), ms);
      finish = () => {
        clearTimeout(timer);
        const set = this.waiting.get(sagaId);
        set?.delete(finish);
        if (set?.size === 0) this.waiting.delete(sagaId);
        resolve();
      };
    });
    const set = this.waiting.get(sagaId) ?? new Set();
    set.add(finish);
    this.waiting.set(sagaId, set);
    return { done, cancel: finish };
  }

  private wake(sagaId: string): void {
    const set = this.waiting.get(sagaId);
    if (set === undefined) return;
    for (const finish of [...set]) finish();
  }
}
