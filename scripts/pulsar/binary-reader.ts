// Runs scripts/pulsar/read_binary.py: a topic read over Pulsar's binary protocol by
// Apache's Python client, each saga's events checked against what the saga log holds.
// The client lives in a virtual environment (.data/pulsar-venv) that ensureBinaryReader
// creates with `python3 -m venv` and pip, once.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts/pulsar/read_binary.py');
/** Apache Pulsar's Python client, with the C++ library inside its wheel. */
export const PULSAR_PYTHON_CLIENT = 'pulsar-client==3.7.0';

/** The venv's python with `pulsar-client` installed; creates the venv when it is missing. */
export function ensureBinaryReader(print: (line: string) => void = () => undefined, venv = path.join(ROOT, '.data/pulsar-venv')): string {
  const python = path.join(venv, 'bin/python');
  const has = () => existsSync(python) && spawnSync(python, ['-c', 'import pulsar'], { stdio: 'ignore' }).status === 0;
  if (has()) return python;
  print(`installing ${PULSAR_PYTHON_CLIENT} in ${path.relative(ROOT, venv)} (python3 -m venv, pip)...`);
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
  };
  run('python3', ['-m', 'venv', venv]);
  run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', PULSAR_PYTHON_CLIENT]);
  if (!has()) throw new Error(`${PULSAR_PYTHON_CLIENT} installed but "import pulsar" fails`);
  return python;
}

/** What read_binary.py printed. */
export interface BinaryReadReport {
  read: number;
  expected: number;
  sagas: number;
  duplicates: number;
  wrong_keys: number;
  unparsable: number;
  out_of_order: string[];
  wrong_sagas: number;
  wrong_examples: Array<{ saga_id: string; expected: number[]; received: number[] }>;
  unexpected_sagas: string[];
  /** Set when the script could not run (exit 2). */
  error?: string;
}

/** Reads `topic` from its first message over pulsar:// and compares each saga's stream with `expected`. */
export async function readOverBinaryProtocol(
  python: string,
  serviceUrl: string,
  topic: string,
  expected: Map<string, number[]>,
  opts: { timeoutS?: number; consumersRule?: boolean; token?: string; tlsCa?: string } = {},
): Promise<BinaryReadReport & { exitCode: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'saga-binary-read-'));
  const file = path.join(dir, 'expected.json');
  writeFileSync(file, JSON.stringify(Object.fromEntries(expected)));
  try {
    const args = [SCRIPT, '--service-url', serviceUrl, '--topic', topic, '--expected', file, '--timeout', String(opts.timeoutS ?? 60)];
    if (opts.consumersRule === true) args.push('--consumers-rule');
    if (opts.token !== undefined) args.push('--token', opts.token);
    if (opts.tlsCa !== undefined) args.push('--tls-ca', opts.tlsCa);
    const child = spawn(python, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exitCode = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 2)));
    const last = out.trim().split('\n').at(-1) ?? '';
    let report: BinaryReadReport;
    try {
      report = JSON.parse(last) as BinaryReadReport;
    } catch {
      throw new Error(`read_binary.py printed no report (exit ${exitCode}): ${out.slice(-500)}`);
    }
    if (report.error !== undefined) throw new Error(`read_binary.py: ${report.error}`);
    return { ...report, exitCode };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
