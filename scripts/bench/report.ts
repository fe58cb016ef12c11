// The benchmark's figures, as one table on the terminal and as JSON.
import { writeFile } from 'node:fs/promises';

/**
 * engine: our engine in the benchmark's process; full: over HTTP through BFFs to
 * orchestrator processes; dbos: the same saga as a DBOS Transact workflow in the
 * benchmark's process (dbos.ts), the figure to compare with engine's.
 */
export type Mode = 'engine' | 'full' | 'dbos';

export interface Figures {
  mode: Mode;
  /** Orchestrator and BFF processes (full mode; engine and dbos modes are one in-process, no BFF). */
  orchestrators: number;
  bffs: number;
  /** Closed loop: sagas in flight at any time. Open loop (--rate): the most that were in flight at once. */
  concurrency: number;
  /** Open loop: sagas started per second, whatever the earlier ones were doing; null for a closed loop. */
  rate: number | null;
  n: number;
  sagas_per_second: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  commits_per_saga: number;
  /** CPU of every orchestrator (in engine mode the benchmark process itself, driver included). */
  orchestrator_cpu_s_per_1000: number;
  /** CPU of every BFF process (full mode); null in engine mode. */
  bff_cpu_s_per_1000: number | null;
  /** CPU of the benchmark's own process, the client (full mode); null in engine mode, where it is the orchestrator's. */
  driver_cpu_s_per_1000: number | null;
  postgres_cpu_s_per_1000: number;
  /** Peak resident memory of the largest orchestrator. */
  peak_rss_mb: number;
  /** CPU of the participants' process, when the benchmark started it; null otherwise. */
  participants_cpu_s_per_1000: number | null;
  /** Deadlocks PostgreSQL detected in the benchmark's database during the measurement. */
  deadlocks: number;
  outcomes_ok: boolean;
  /** Finished sagas already in the log when this configuration ran. */
  history_sagas: number;
  /** KiB of WAL the server wrote during the measurement (pg_wal_lsn_diff of pg_current_wal_lsn), per saga. */
  wal_kb_per_saga: number;
  /**
   * With --pulsar: the run's sagas' events published to the broker per second, from the
   * run's start to the last one's saga_events.publicado_en (scripts/bench/published.ts); null otherwise.
   */
  events_per_second: number | null;
  /**
   * With --pulsar: p99 over the run's events of publicado_en − fecha (the event's time), seconds,
   * an event left unpublished counting as published at the end of the wait; null otherwise.
   */
  outbox_lag_p99_s: number | null;
  /** With --pulsar: the run's events still unpublished when the bounded wait after the run ended (0: all); null otherwise. */
  events_unpublished: number | null;
}

export function printTable(figures: Figures[], say: (line: string) => void): void {
  // WAL per saga right after PostgreSQL's CPU: the two costs that bound one primary (docs/past-one-machine.md).
  const header = [
    'mode', 'orch', 'BFFs', 'history', 'conc', 'rate/s', 'n', 'sagas/s', 'p50 ms', 'p95 ms', 'p99 ms', 'commits/saga',
    'orch CPU s/1000', 'BFF CPU s/1000', 'PG CPU s/1000', 'WAL KB/saga', 'participants CPU s/1000', 'driver CPU s/1000', 'peak RSS MB', 'deadlocks', 'outcomes',
    'events/s', 'outbox lag p99 s',
  ];
  const rows = figures.map((f) =>
    [
      f.mode,
      f.orchestrators,
      f.mode === 'full' ? f.bffs : '-',
      f.history_sagas,
      f.concurrency,
      f.rate ?? '-',
      f.n,
      f.sagas_per_second,
      f.p50_ms,
      f.p95_ms,
      f.p99_ms,
      f.commits_per_saga,
      f.orchestrator_cpu_s_per_1000,
      f.bff_cpu_s_per_1000 ?? '-',
      f.postgres_cpu_s_per_1000,
      f.wal_kb_per_saga,
      f.participants_cpu_s_per_1000 ?? '-',
      f.driver_cpu_s_per_1000 ?? '-',
      f.peak_rss_mb,
      f.deadlocks,
      f.outcomes_ok ? 'ok' : 'WRONG',
      f.events_per_second ?? '-',
      f.outbox_lag_p99_s ?? '-',
    ].map(String),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  say('');
  say(line(header));
  say(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) say(line(r));
}

/** An engine row and the DBOS row measured under the same load: their sagas/s, and engine's over DBOS's. */
export interface Ratio {
  concurrency: number;
  rate: number | null;
  history_sagas: number;
  engine: number;
  dbos: number;
  /** engine sagas/s ÷ DBOS sagas/s: how many times DBOS's throughput ours is. */
  ratio: number;
  /**
   * CPU seconds per 1,000 sagas of the benchmark's process and of PostgreSQL together,
   * engine's and DBOS's, and DBOS's over engine's: what a saga costs, which the load of a
   * shared machine moves less than it moves sagas/s.
   */
  engine_cpu_s_per_1000: number;
  dbos_cpu_s_per_1000: number;
  cpu_ratio: number;
}

/** Each DBOS row paired with the engine row of the same load (concurrency or rate, history, n). */
export function ratios(figures: readonly Figures[]): Ratio[] {
  const out: Ratio[] = [];
  for (const d of figures.filter((f) => f.mode === 'dbos')) {
    const e = figures.find(
      (f) => f.mode === 'engine' && f.rate === d.rate && (f.rate !== null || f.concurrency === d.concurrency) && f.history_sagas === d.history_sagas && f.n === d.n,
    );
    if (e === undefined || d.sagas_per_second <= 0) continue;
    const cpu = (f: Figures) => round2(f.orchestrator_cpu_s_per_1000 + f.postgres_cpu_s_per_1000);
    out.push({
      concurrency: d.concurrency,
      rate: d.rate,
      history_sagas: d.history_sagas,
      engine: e.sagas_per_second,
      dbos: d.sagas_per_second,
      ratio: round2(e.sagas_per_second / d.sagas_per_second),
      engine_cpu_s_per_1000: cpu(e),
      dbos_cpu_s_per_1000: cpu(d),
      cpu_ratio: cpu(e) > 0 ? round2(cpu(d) / cpu(e)) : 0,
    });
  }
  return out;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export function printRatios(figures: readonly Figures[], say: (line: string) => void): void {
  for (const r of ratios(figures)) {
    const load = r.rate === null ? `concurrency ${r.concurrency}` : `rate ${r.rate}/s`;
    say(`engine / dbos at ${load}: ${r.engine} / ${r.dbos} sagas/s = ${r.ratio}×`);
    say(`  CPU s per 1,000 sagas (process + PostgreSQL): dbos ${r.dbos_cpu_s_per_1000} / engine ${r.engine_cpu_s_per_1000} = ${r.cpu_ratio}×`);
  }
}

export async function writeJson(file: string, figures: Figures[]): Promise<void> {
  await writeFile(file, `${JSON.stringify(figures, null, 2)}\n`);
}
