// What the benchmark reads off the machine: CPU time of processes (from /proc),
// PostgreSQL's commit counter, resident memory over time, latency percentiles.
import { readFileSync, readdirSync } from 'node:fs';
import type pg from 'pg';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; everything after its ')' splits cleanly.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // the process has exited
  }
}

/** CPU seconds a process has used; with `children`, also its reaped children's. */
export function cpuSeconds(pid: number, children = false): number {
  const f = statFields(pid);
  if (f === null) return 0;
  // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  const own = Number(f[11]) + Number(f[12]);
  const reaped = children ? Number(f[13]) + Number(f[14]) : 0;
  return (own + reaped) / TICKS_PER_SECOND;
}

function childPids(ppid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f !== null && Number(f[1]) === ppid) pids.push(Number(entry));
  }
  return pids;
}

/**
 * CPU seconds of a PostgreSQL server so far: the postmaster, its live
 * processes (backends, walwriter, checkpointer…) and those that have exited
 * (counted in the postmaster's reaped-children time). Found from a backend's pid.
 */
export async function postgresCpuSeconds(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
  const backend = rows[0]?.pid;
  if (backend === undefined) return 0;
  const postmaster = Number(statFields(backend)?.[1] ?? 0);
  if (postmaster <= 1) return 0; // not visible from here (another host or container)
  return cpuSeconds(postmaster, true) + childPids(postmaster).reduce((sum, p) => sum + cpuSeconds(p), 0);
}

/** Transactions committed in the benchmark's database so far (pg_stat_database.xact_commit). */
export async function commitsSoFar(pool: pg.Pool): Promise<number> {
  // Backends report their counters at most once a second, when idle: wait for that.
  await new Promise((r) => setTimeout(r, 1_200));
  const client = await pool.connect();
  try {
    await client.query('select pg_stat_clear_snapshot()');
    const { rows } = await client.query<{ n: string }>(
      'select xact_commit::text as n from pg_stat_database where datname = current_database()',
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    client.release();
  }
}

/**
 * The server's WAL write position now (pg_current_wal_lsn). WAL is server-wide: on a server of its own (the embedded
 * one) the difference of two positions is what the benchmark's database wrote, checkpoints and vacuum included.
 */
export async function walPosition(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
  return rows[0]!.lsn;
}

/** Bytes of WAL written from position `from` to position `to` (pg_wal_lsn_diff). */
export async function walBytesBetween(pool: pg.Pool, from: string, to: string): Promise<number> {
  const { rows } = await pool.query<{ bytes: string }>('select pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text as bytes', [from, to]);
  return Number(rows[0]!.bytes);
}

/** Deadlocks PostgreSQL has detected in the benchmark's database so far (pg_stat_database.deadlocks). */
export async function deadlocksSoFar(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('select pg_stat_clear_snapshot()');
    const { rows } = await client.query<{ n: string }>('select deadlocks::text as n from pg_stat_database where datname = current_database()');
    return Number(rows[0]?.n ?? 0);
  } finally {
    client.release();
  }
}

export function rssMb(pid: number): number {
  if (pid === process.pid) return process.memoryUsage.rss() / 2 ** 20;
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    return line === undefined ? 0 : Number(line.split(/\s+/)[1]) / 1024;
  } catch {
    return 0;
  }
}

/** Samples a process's resident memory every 100 ms; `stop` returns the peak. */
export function peakRss(pid: number): { stop(): number } {
  let peak = rssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssMb(pid));
    },
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] ?? 0;
}
