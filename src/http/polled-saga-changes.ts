// The interim SagaChangeFeed for the saga stream, until the per-transition
// NOTIFY feed (src/http/saga-changes.ts) replaces it: a saga's end arrives at
// once through SagaCompletions (the writer's terminal NOTIFY), and every other
// transition through one cheap query per period for all watched sagas at once
// (their primary keys and `version`, which every commit increments).
import type { Logger } from '../log.js';
import type { Database } from '../persistence/database.js';
import type { SagaCompletions, Wait } from './saga-completions.js';
import type { SagaChangeFeed } from './sse.js';

interface Watched {
  listeners: Set<() => void>;
  version: number | undefined;
  end: Wait | undefined;
}

export class PolledSagaChanges implements SagaChangeFeed {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private failing = false;

  constructor(
    private readonly db: Database,
    private readonly completions: SagaCompletions,
    private readonly log: Logger,
    private readonly periodMs = 1_000,
  ) {}

  subscribe(sagaId: string, onChange: () => void): () => void {
    let w = this.watched.get(sagaId);
    if (w === undefined) {
      w = { listeners: new Set(), version: undefined, end: undefined };
      this.watched.set(sagaId, w);
      this.awaitEnd(sagaId, w);
    }
    w.listeners.add(onChange);
    this.timer ??= setInterval(() => void this.poll(), this.periodMs).unref();
    return () => {
      const current = this.watched.get(sagaId);
      if (current === undefined) return;
      current.listeners.delete(onChange);
      if (current.listeners.size > 0) return;
      current.end?.cancel();
      this.watched.delete(sagaId);
      if (this.watched.size === 0) this.stop();
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A terminal NOTIFY wakes the subscribers at once; the wait is re-armed while watched. */
  private awaitEnd(sagaId: string, w: Watched): void {
    const wait = this.completions.wait(sagaId, 60_000);
    w.end = wait;
    void wait.done.then(() => {
      if (this.watched.get(sagaId) !== w) return;
      notify(w);
      this.awaitEnd(sagaId, w);
    });
  }

  private async poll(): Promise<void> {
    if (this.polling || this.watched.size === 0) return;
    this.polling = true;
    try {
      const rows = await this.db.em
        .getConnection()
        // The ids as one text parameter: the query builder would spread an array into many.
        .execute<{ id: string; version: number }[]>(`select id, version from saga_log where id = any(string_to_array(?, ',')::uuid[])`, [
          [...this.watched.keys()].join(','),
        ]);
      for (const row of rows) {
        const w = this.watched.get(row.id);
        if (w === undefined) continue;
        // The first sight notifies too: the subscriber read its status before
        // subscribing, and a transition may have come in between.
        const changed = w.version !== row.version;
        w.version = row.version;
        if (changed) notify(w);
      }
      this.failing = false;
    } catch (err) {
      // The next period tries again; a run of failures is logged once.
      if (!this.failing) this.log.warn({ err }, 'saga stream: could not read saga versions');
      this.failing = true;
    } finally {
      this.polling = false;
    }
  }
}

function notify(w: Watched): void {
  for (const listener of [...w.listeners]) listener();
}
