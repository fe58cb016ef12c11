// Roles run as real child processes, for tests that kill them.
import type { ChildProcess } from 'node:child_process';
import { entryPoint, listeningUrl, onLogLines, spawnNode } from '../../scripts/lib/processes.js';

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
  const child = spawnNode(entryPoint(role), [], { env: { HOST: '127.0.0.1', PORT: '0', BFF_PORT: '0', LOG_LEVEL: 'info', ...env } });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} did not start in time: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}: ${stderr}`)));
    onLogLines(child, (entry) => {
      logs.push(entry);
      const found = listeningUrl(entry, role);
      if (found !== undefined) {
        clearTimeout(timer);
        resolve(found);
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
