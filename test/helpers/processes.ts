// Roles run as real child processes, for tests that kill them.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface RoleProcess {
  url: string;
  child: ChildProcess;
  /** Every JSON log line the process wrote. */
  logs: Record<string, unknown>[];
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `src/bin/<role>.ts` with `env` and waits for its "listening" log line,
 * which carries its URL (the tests ask for port 0).
 */
export async function startRoleProcess(role: 'orchestrator' | 'bff' | 'participants', env: Record<string, string>): Promise<RoleProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', `src/bin/${role}.ts`], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', BFF_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} did not start in time: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        const found = entry[role];
        if (entry.msg === `${role} listening` && typeof found === 'string') {
          clearTimeout(timer);
          resolve(found);
        }
      } catch {
        // not a log line
      }
    });
  });
  return {
    url,
    child,
    logs,
    async kill(signal) {
      if (child.exitCode === null) child.kill(signal);
      await exited;
    },
  };
}
