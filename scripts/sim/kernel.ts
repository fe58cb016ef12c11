// The simulator's kernel: one seeded stream of choices, simulated time, and a
// trace. Everything the simulated world does happens in an event popped from
// here; the real code's promises settle in the microtasks drained after each
// event, so one seed always runs the same interleaving, and a failure replays
// exactly from its seed (or from its shrunk list of choices).
import { createHash } from 'node:crypto';

/**
 * The seed's choices. Every fault is drawn so that a choice of 0 means "no
 * fault, shortest delay, first option": shrinking replaces choices by 0 and
 * cuts the list short (missing choices read as 0).
 */
export class Choices {
  readonly drawn: number[] = [];
  private state: number;

  constructor(
    seed: number,
    private readonly replay: readonly number[] | null = null,
  ) {
    this.state = (seed * 0x9e3779b9) >>> 0 || 1;
  }

  /** A number in [0, 1). */
  next(): number {
    let u: number;
    if (this.replay !== null) u = this.replay[this.drawn.length] ?? 0;
    else {
      // mulberry32
      this.state = (this.state + 0x6d2b79f5) >>> 0;
      let t = this.state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }
    this.drawn.push(u);
    return u;
  }

  /** True with probability p; a choice of 0 is false. */
  chance(p: number): boolean {
    return this.next() >= 1 - p;
  }

  /** An integer in [lo, hi]; a choice of 0 is lo. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A binary heap of timers ordered by (time, insertion). */
class Heap {
  private readonly items: Timer[] = [];

  get size(): number {
    return this.items.length;
  }

  push(t: Timer): void {
    const a = this.items;
    a.push(t);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Timer | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

const before = (a: Timer, b: Timer) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Kernel {
  /** Simulated milliseconds since the start of the run. */
  now = 0;
  readonly epochMs = Date.UTC(2026, 0, 1);
  private readonly timers = new Heap();
  private seq = 0;
  private readonly hash = createHash('sha256');
  readonly recent: string[] = [];
  events = 0;

  constructor(
    readonly choices: Choices,
    private readonly keepTrace = 400,
  ) {}

  date(): Date {
    return new Date(this.epochMs + this.now);
  }

  at(delayMs: number, fn: () => void): Timer {
    const t: Timer = { at: this.now + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(t);
    return t;
  }

  cancel(t: unknown): void {
    (t as Timer).cancelled = true;
  }

  /** One line of the trace: hashed into the digest, and the last few kept for a failure's report. */
  trace(line: string): void {
    const text = `${this.now} ${line}`;
    this.hash.update(text).update('\n');
    if (this.keepTrace > 0) {
      this.recent.push(text);
      if (this.recent.length > this.keepTrace) this.recent.shift();
    }
  }

  digest(): string {
    return this.hash.copy().digest('hex');
  }

  /** Runs events until none is left or `untilMs` is reached; the real code's promises settle between events. */
  async run(untilMs: number): Promise<void> {
    await settle();
    for (;;) {
      const t = this.timers.pop();
      if (t === undefined) break;
      if (t.cancelled) continue;
      if (t.at > untilMs) {
        this.timers.push(t);
        this.now = untilMs;
        break;
      }
      this.now = t.at;
      this.events += 1;
      t.fn();
      await settle();
    }
  }
}
