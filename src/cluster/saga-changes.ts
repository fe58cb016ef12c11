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

/** Sagas remembered as started here (startedHere), at most: past it the oldest is forgotten, and read as before. */
export const STARTED_HERE_MAX = 10_000;

/** What `beginStart` gives and `started` takes back. */
export interface StartTicket {
  readonly session: number | undefined;
  readonly token: number;
}

/**
 * The sagas heard of while some start was under way, kept only as long as a start that
 * began before them is: so that `started` knows whether its saga changed before it returned.
 * Past HEARD_MAX ids (starts that last long under many changes) it forgets them, and the
 * starts under way then count as having heard of their saga.
 */
export class HeardDuringStarts {
  private tick = 0;
  private nextToken = 0;
  /** Starts under way: token → the tick at which it began (in the order begun, so ticks grow). */
  private readonly open = new Map<number, number>();
  /** Saga id → the tick at which it was last heard of (in that order). */
  private readonly recent = new Map<string, number>();
  /** Starts begun before this tick lost what was heard (the list overflowed). */
  private floor = 0;

  constructor(private readonly max = HEARD_MAX) {}

  begin(): number {
    const token = this.nextToken++;
    this.open.set(token, this.tick);
    return token;
  }

  heard(sagaId: string): void {
    if (this.open.size === 0) return;
    this.tick++;
    this.recent.delete(sagaId);
    this.recent.set(sagaId, this.tick);
    if (this.recent.size > this.max) {
      this.recent.clear();
      this.floor = this.tick;
    }
  }

  /** Ends a start; whether `sagaId` may have been heard of while it was under way. */
  end(token: number, sagaId: string | undefined): boolean {
    const began = this.open.get(token);
    this.open.delete(token);
    const heard = began === undefined || began < this.floor || (sagaId !== undefined && this.recent.has(sagaId));
    // Forget what no start under way began before.
    const oldest = this.open.values().next();
    if (oldest.done === true) this.recent.clear();
    else
      for (const [id, at] of this.recent) {
        if (at > oldest.value) break;
        this.recent.delete(id);
      }
    return heard;
  }

  /** Ids kept now (for the tests of its bound). */
  get size(): number {
    return this.recent.size;
  }
}

/** Ids heard of during starts under way, kept at most. */
export const HEARD_MAX = 100_000;

/** How long a watch lasts unless renewed: a BFF that dies leaves its watches for at most this long. */
export const WATCH_TTL_S = 600;

export class SagaChanges {
  private readonly subscribers = new Map<string, Set<ChangeListener>>();
  private readonly listener: NotificationListener;
  /** Sagas this process started in the listening session now, of which nothing was heard since (cleared at a reconnection). */
  private readonly startedHere = new Set<string>();
  private readonly starts = new HeardDuringStarts();

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
      () => {
        this.startedHere.clear();
        [...this.subscribers.keys()].forEach((id) => this.notify(id, null));
      },
    );
  }

  /**
   * To be called before recording a new saga, and `started` after: between the two, a change
   * of the saga may already be heard (a saga that ends before its start returns), and that
   * saga must not be taken for unchanged.
   */
  beginStart(): StartTicket {
    return { session: this.listener.continuity, token: this.starts.begin() };
  }

  /**
   * Ends a start begun with `beginStart`. With the id of the saga it recorded, remembers that
   * this process started it and has heard nothing of it since, if one listening session lasted
   * from before the write until now: its end, committed later, will be told here.
   */
  started(ticket: StartTicket, sagaId: string | undefined): void {
    const heard = this.starts.end(ticket.token, sagaId);
    if (sagaId === undefined || heard || ticket.session === undefined || this.listener.continuity !== ticket.session) return;
    this.startedHere.add(sagaId);
    if (this.startedHere.size > STARTED_HERE_MAX) this.startedHere.delete(this.startedHere.values().next().value!);
  }

  /**
   * Whether `sagaId` was started here in the session still listening, and no change of it
   * was heard since: it has not ended, and its end will wake a `wait` registered now. A
   * client waiting for the end of a saga it just started then needs no read before waiting.
   */
  unchangedSinceStarted(sagaId: string): boolean {
    return this.listener.continuity !== undefined && this.startedHere.has(sagaId);
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
      if (space <= 0) continue;
      const sagaId = entry.slice(0, space);
      this.startedHere.delete(sagaId);
      this.starts.heard(sagaId);
      this.notify(sagaId, entry.slice(space + 1));
    }
  }

  private notify(sagaId: string, estado: string | null): void {
    const set = this.subscribers.get(sagaId);
    if (set === undefined) return;
    for (const listener of [...set]) listener(estado);
  }
}
