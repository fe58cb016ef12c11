// Reads by id that arrive in the same turn of the event loop (or within the
// batch window, SAGA_BATCH_WINDOW_MS, when one is set) go to PostgreSQL as one
// query (`where id = any($1)`): a burst of requests, or of waiters woken by one
// notification, costs one round trip and one statement instead of one each.
// A failed query fails every read of its batch.

/** Fetches the rows of these ids (lower-case uuids); an id without a row is absent from the map. */
export type FetchMany<T> = (ids: string[]) => Promise<Map<string, T>>;

interface Pending<T> {
  id: string;
  resolve: (row: T | null) => void;
  reject: (err: unknown) => void;
}

export class BatchedLookup<T> {
  private pending: Pending<T>[] = [];

  private readonly maxBatch: number;
  private readonly windowMs: number;

  /**
   * `maxBatch`: ids per query (500); more waiting than that go in further queries.
   * `windowMs`: how long the first read waits for others (0: the end of this turn).
   */
  constructor(
    private readonly fetchMany: FetchMany<T>,
    opts: { maxBatch?: number; windowMs?: number } = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.windowMs = opts.windowMs ?? 0;
  }

  /** The row of `id`, or null when there is none. */
  get(id: string): Promise<T | null> {
    return new Promise((resolve, reject) => {
      this.pending.push({ id: id.toLowerCase(), resolve, reject });
      if (this.pending.length > 1) return;
      if (this.windowMs > 0) setTimeout(() => this.flush(), this.windowMs);
      else setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += this.maxBatch) void this.run(all.slice(i, i + this.maxBatch));
  }

  private async run(batch: Pending<T>[]): Promise<void> {
    try {
      const rows = await this.fetchMany([...new Set(batch.map((p) => p.id))]);
      for (const p of batch) p.resolve(rows.get(p.id) ?? null);
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
