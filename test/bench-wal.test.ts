// The benchmark's WAL figure (scripts/bench, docs/past-one-machine.md): the WAL the
// server wrote between two of its write positions, and the table's column for it,
// next to PostgreSQL's CPU.
import test from 'ava';
import { walBytesBetween, walPosition } from '../scripts/bench/measure.js';
import type { Figures } from '../scripts/bench/report.js';
import { benchFigure, printedTable } from './fixtures/bench-figures.js';
import { migratedDatabase, type MigratedDatabase } from './helpers/database.js';

let db: MigratedDatabase | undefined;

test.before(async () => {
  db = await migratedDatabase('bench_wal', 2);
});
test.after.always(async () => {
  await db?.close();
});

test('the WAL between two write positions counts at least the bytes written in between', async (t) => {
  const pool = db!.pool;
  // A logged table (a temporary one writes no WAL); 1,000 rows of 992 bytes each.
  await pool.query('create table wal_probe (payload text not null)');
  const before = await walPosition(pool);
  await pool.query('insert into wal_probe select repeat(md5(g::text), 31) from generate_series(1, 1000) g');
  const after = await walPosition(pool);
  const bytes = await walBytesBetween(pool, before, after);
  // Only a lower bound: the server is shared with the other test files, which write WAL too.
  t.true(bytes >= 1000 * 992, `${bytes} bytes of WAL for 992,000 bytes of rows`);
});

/** A full-mode row (one orchestrator, one BFF), with `overrides`. */
const figure = (overrides: Partial<Figures>): Figures =>
  benchFigure({
    mode: 'full',
    bffs: 1,
    sagas_per_second: 300,
    p50_ms: 500,
    p95_ms: 900,
    p99_ms: 1100,
    commits_per_saga: 0.42,
    orchestrator_cpu_s_per_1000: 0.9,
    bff_cpu_s_per_1000: 0.8,
    driver_cpu_s_per_1000: 0.4,
    postgres_cpu_s_per_1000: 1,
    peak_rss_mb: 190,
    participants_cpu_s_per_1000: 0.25,
    ...overrides,
  });

test('the table shows each run\'s WAL KB/saga in the column right after PostgreSQL\'s CPU', (t) => {
  const { header, rows } = printedTable([
    figure({ postgres_cpu_s_per_1000: 0.94, wal_kb_per_saga: 19.19 }),
    figure({ postgres_cpu_s_per_1000: 1.23, wal_kb_per_saga: 23.44 }),
  ]);
  const wal = header.indexOf('WAL KB/saga');
  t.is(header[wal - 1], 'PG CPU s/1000');
  t.deepEqual(
    rows.map((r) => [r[wal - 1], r[wal]]),
    [
      ['0.94', '19.19'],
      ['1.23', '23.44'],
    ],
  );
  t.true(rows.every((r) => r.length === header.length), 'every row has a cell for every column');
});
