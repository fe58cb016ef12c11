// How every process of the system is started outside `npm start`: by the tests that
// kill roles, the chaos suite, the benchmark and `npm run start:cluster`. One way to
// spawn (`node --import tsx <script>`, this environment plus the one given), to read
// a role's JSON log lines and the URL it announces, and to stop a process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface NodeProcessOptions {
  /** Over this process's environment; a key set to undefined is left out. */
  env?: Record<string, string | undefined>;
  /** Default 'pipe' (read them), or 'inherit' (this process's) or 'ignore'. */
  stdout?: 'pipe' | 'inherit' | 'ignore';
  stderr?: 'pipe' | 'inherit' | 'ignore';
  /** Node flags before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  cwd?: string;
  /** The leader of a process group of its own, to be signalled as a shell's foreground job is. */
  detached?: boolean;
}

/** `src/bin/<name>.ts`: an entry point of the system (orchestrator, bff, participants, all, token). */
export const entryPoint = (name: string): string => `src/bin/${name}.ts`;

/** Starts `script` (TypeScript, through tsx) in a Node child process. */
export function spawnNode(script: string, args: readonly string[] = [], opts: NodeProcessOptions = {}): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(opts.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    env,
    stdio: ['ignore', opts.stdout ?? 'pipe', opts.stderr ?? 'pipe'],
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(opts.detached === true ? { detached: true } : {}),
  });
}

/** Calls `onEntry` with every JSON log line `child` writes to its (piped) stdout; other lines are passed over. */
export function onLogLines(child: ChildProcess, onEntry: (entry: Record<string, unknown>, line: string) => void): void {
  if (child.stdout === null) throw new Error('the process was started without a stdout pipe');
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    onEntry(entry, line);
  });
}

/** The URL in a role's "<role> listening" log line (the roles log it once started), else undefined. */
export function listeningUrl(entry: Record<string, unknown>, role: string): string | undefined {
  const url = entry[role];
  return entry.msg === `${role} listening` && typeof url === 'string' ? url : undefined;
}

/** Sends `signal` (SIGTERM) and resolves once `child` has exited; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const hard = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(hard);
}
