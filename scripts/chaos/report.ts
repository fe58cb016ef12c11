// The report of a chaos run: what was done, what each scenario measured, and
// every check with its violations (the first few of each).
import type { FaultKind, Ledger } from './ledger.js';
import type { Injection } from './injections.js';
import { logCounts } from './processes.js';

export interface CheckOutcome {
  name: string;
  description: string;
  checked: number;
  violations: string[];
}

export interface RunSummary {
  title: string;
  sagas: { estado: string; n: number }[];
  reasons: { reason: string; n: number }[];
  settleMs: number | null;
  boundMs: number;
  checks: CheckOutcome[];
  injected?: { name: string; injection: Injection };
}

const FAULT_WORDS: Record<FaultKind, string> = {
  orchestratorKills: 'orchestrator kill -9',
  bffKills: 'BFF kill -9',
  pauses: 'orchestrator paused past its lease',
  participantOutages: 'participants cut off',
  endpointOutages: 'compensation endpoint down',
  backendTerminations: 'backends terminated',
  postgresRestarts: 'PostgreSQL restarted',
  answersLost: 'PostgreSQL answers lost',
  faultRules: 'participant fault rules',
};

/** The report's lines, and whether the run passed (no violation; or, proving a check, the check caught it). */
export function report(ledger: Ledger, run: RunSummary): { lines: string[]; passed: boolean } {
  const lines = ['', run.title];
  lines.push(`  sagas                ${run.sagas.reduce((n, s) => n + s.n, 0)} (${run.sagas.map((s) => `${s.estado} ${s.n}`).join(', ')})`);
  for (const r of run.reasons) lines.push(`    ${String(r.n).padStart(4)} × ${r.reason.slice(0, 110)}`);
  lines.push(
    `  faults               ${Object.entries(ledger.faultCounts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${FAULT_WORDS[k as FaultKind]} ${n}`)
      .join(', ')}`,
  );
  lines.push(`  POSTs sent again     ${ledger.postRetries} (a BFF dead, or the database away)`);
  lines.push(`  fenced writes        ${logCounts.fencedWrites} refused, ${logCounts.leasesLost} leases lost`);
  lines.push(`  settled              ${run.settleMs === null ? 'NO' : `${(run.settleMs / 1000).toFixed(1)} s`} after the last fault (bound ${run.boundMs / 1000} s)`);
  let scenario = '';
  for (const n of ledger.notes) {
    if (n.scenario !== scenario) lines.push(`  ${n.scenario}`);
    scenario = n.scenario;
    lines.push(`    ${n.line}`);
  }
  lines.push('', 'Checks (violations; 0 expected)');
  for (const c of run.checks) {
    lines.push(`  ${c.name.padEnd(3)} ${String(c.violations.length).padStart(4)}   ${c.description} (${c.checked} checked)`);
    for (const v of c.violations.slice(0, 5)) lines.push(`            ${v}`);
  }
  const failed = new Set(run.checks.filter((c) => c.violations.length > 0).map((c) => c.name));
  if (run.injected === undefined) {
    const passed = failed.size === 0;
    lines.push('', passed ? 'chaos: 0 violations' : 'chaos: VIOLATIONS FOUND');
    return { lines, passed };
  }
  const { name, injection } = run.injected;
  const caught = injection.caughtBy.filter((c) => failed.has(c));
  const passed = caught.length === injection.caughtBy.length;
  lines.push(
    '',
    `injected: ${name} (${injection.what})`,
    passed
      ? `chaos: the injected fault was CAUGHT by ${caught.join(', ')}${failed.size > caught.length ? ` (and by ${[...failed].filter((f) => !caught.includes(f)).join(', ')})` : ''}`
      : `chaos: the injected fault was NOT caught by ${injection.caughtBy.filter((c) => !failed.has(c)).join(', ')}`,
  );
  return { lines, passed };
}
