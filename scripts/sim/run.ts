// npm run test:sim -- [--seeds N] [--seed S [--trace PATTERN]] [--inject NAME] [--from K]
// The deterministic simulator (docs/simulation.md): the real machine and actor
// code under a seeded scheduler that owns time, the network, the store and
// crashes. --seeds N runs seeds 1..N; --seed S runs one and prints its digest;
// --inject NAME switches a known bug on and exits 0 only when a check catches it.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { INJECTIONS, runSeed, type RunResult } from './world.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const inject = flag('inject');
const one = flag('seed');
const seeds = Number(flag('seeds') ?? (inject === undefined ? 200 : 2000));
const from = Number(flag('from') ?? 1);

/** The shortest list of choices that still fails: cut the list short, then zero choices one by one. */
async function shrink(seed: number, failing: RunResult, budgetMs = 20_000): Promise<RunResult> {
  const until = Date.now() + budgetMs;
  let best = failing;
  let draws = [...failing.choices];
  const fails = async (candidate: number[]) => {
    const r = await runSeed(seed, { replay: candidate, ...(inject === undefined ? {} : { inject }) });
    return r.violations.length > 0 ? r : null;
  };
  // Shorter prefixes (missing choices read as 0: no fault, shortest delay).
  for (let len = Math.floor(draws.length / 2); len > 0 && Date.now() < until; len = Math.floor(len / 2)) {
    const r = await fails(draws.slice(0, len));
    if (r === null) break;
    draws = draws.slice(0, len);
    best = r;
  }
  // Zero each remaining choice, last first.
  for (let i = draws.length - 1; i >= 0 && Date.now() < until; i--) {
    if (draws[i] === 0) continue;
    const candidate = [...draws];
    candidate[i] = 0;
    const r = await fails(candidate);
    if (r !== null) {
      draws = candidate;
      best = r;
    }
  }
  while (draws.length > 0 && draws[draws.length - 1] === 0) draws.pop();
  return { ...best, choices: draws };
}

function report(r: RunResult, shrunk: RunResult): void {
  console.log(`\nseed ${r.seed}: ${r.violations.length} violation(s)`);
  for (const v of r.violations.slice(0, 5)) console.log(`  ${v.invariant}: ${v.detail}`);
  const nonZero = shrunk.choices.map((u, i) => [i, u] as const).filter(([, u]) => u !== 0);
  console.log(`  shrunk to ${shrunk.choices.length} choices, ${nonZero.length} not zero; it still fails with:`);
  for (const v of shrunk.violations.slice(0, 3)) console.log(`    ${v.invariant}: ${v.detail}`);
  console.log('  trace of the shrunk run (last lines):');
  for (const line of shrunk.trace.slice(-40)) console.log(`    ${line}`);
}

if (inject !== undefined && INJECTIONS[inject] === undefined) {
  console.error(`unknown injection ${inject}; known: ${Object.keys(INJECTIONS).join(', ')}`);
  process.exit(2);
}

if (one !== undefined) {
  // --trace PATTERN: the seed's trace lines that contain PATTERN ('' for all), to follow one saga or process.
  const pattern = flag('trace');
  const r = await runSeed(Number(one), { ...(inject === undefined ? {} : { inject }), ...(pattern === undefined ? {} : { keepTrace: Number.MAX_SAFE_INTEGER }) });
  if (pattern !== undefined) for (const line of r.trace) if (line.includes(pattern)) console.log(line);
  for (const v of r.violations) console.log(`${v.invariant}: ${v.detail}`);
  console.log(`seed ${r.seed}: ${r.sagas} sagas, ${r.events} events, ${r.violations.length} violations`);
  console.log(`digest: ${r.digest}`);
  process.exit(r.violations.length > 0 && inject === undefined ? 1 : 0);
}

const workers = Number(flag('workers') ?? (args.includes('--worker') || inject !== undefined ? 1 : Math.min(availableParallelism(), Math.max(1, Math.floor(seeds / 50)))));

/** Seeds from..from+count-1 in this process; the counts as the last line, for the parent. */
async function runRange(first: number, count: number): Promise<{ sagas: number; violations: number; failed: number[]; ran: number }> {
  let sagas = 0;
  let ran = 0;
  let violations = 0;
  const failed: number[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const r = await runSeed(seed, inject === undefined ? { keepTrace: 0 } : { inject, keepTrace: 0 });
    sagas += r.sagas;
    ran += 1;
    if (r.violations.length === 0) continue;
    violations += r.violations.length;
    failed.push(seed);
    if (inject !== undefined) {
      const full = await runSeed(seed, { inject });
      const shrunk = await shrink(seed, full, 10_000);
      report(full, shrunk);
      console.log(`injection ${inject} (${INJECTIONS[inject]!.what}): caught by ${[...new Set(r.violations.map((v) => v.invariant))].join(', ')} at seed ${seed}`);
      return { sagas, violations, failed, ran };
    }
    if (failed.length <= 3) {
      const full = await runSeed(seed);
      report(full, await shrink(seed, full));
    } else console.log(`seed ${seed}: ${r.violations.map((v) => v.invariant).join(', ')}`);
  }
  return { sagas, violations, failed, ran };
}

const started = Date.now();
let totals: { sagas: number; violations: number; failed: number[]; ran: number };
if (workers <= 1) {
  totals = await runRange(from, seeds);
  if (args.includes('--worker')) {
    console.log(`RESULT ${JSON.stringify(totals)}`);
    process.exit(0);
  }
} else {
  // The seeds split over the cores, one process each; each seed still runs alone and the same.
  const per = Math.ceil(seeds / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, i) => {
      const first = from + i * per;
      const count = Math.max(0, Math.min(per, from + seeds - first));
      return new Promise<typeof totals>((resolve, reject) => {
        const rest = inject === undefined ? [] : ['--inject', inject];
        const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--worker', '--from', String(first), '--seeds', String(count), ...rest], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('exit', () => {
          const lines = out.split('\n');
          const result = lines.find((l) => l.startsWith('RESULT '));
          process.stdout.write(lines.filter((l) => !l.startsWith('RESULT ')).join('\n'));
          if (result === undefined) reject(new Error(`simulator worker for seeds ${first}.. ended without a result`));
          else resolve(JSON.parse(result.slice(7)) as typeof totals);
        });
      });
    }),
  );
  totals = { sagas: 0, violations: 0, failed: [], ran: 0 };
  for (const p of parts) {
    totals.sagas += p.sagas;
    totals.violations += p.violations;
    totals.failed.push(...p.failed);
    totals.ran += p.ran;
  }
}
const secs = (Date.now() - started) / 1000;
console.log(`${totals.sagas} simulated sagas in ${secs.toFixed(1)} s on ${workers} process(es): ${(totals.sagas / secs).toFixed(0)} sagas/s`);
if (inject !== undefined) {
  if (totals.violations > 0) {
    console.log(`sim: ${totals.ran} seeds, ${totals.violations} violations`);
    process.exit(0);
  }
  console.log(`injection ${inject}: NOT caught in ${seeds} seeds`);
  console.log(`sim: ${seeds} seeds, 0 violations`);
  process.exit(1);
}
console.log(`sim: ${totals.ran} seeds, ${totals.violations} violations`);
process.exit(totals.violations > 0 ? 1 : 0);
