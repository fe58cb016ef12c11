// The processes of a chaos run: the participant services and K orchestrators,
// each a real child process that can be killed, paused and restarted on its port.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface ManagedProcess {
  name: string;
  url: string;
  alive(): boolean;
  start(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  pause(): void;
  resume(): void;
}

/** Counts of the warnings that matter for the report, read from every process's log. */
export const logCounts = { fencedWrites: 0, leasesLost: 0 };

export function managedRole(
  name: string,
  script: 'orchestrator' | 'participants',
  port: number,
  env: Record<string, string>,
): ManagedProcess {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const url = `http://127.0.0.1:${port}`;
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  async function kill(signal: NodeJS.Signals): Promise<void> {
    if (child !== undefined && alive()) {
      child.kill(signal);
      await exited;
    }
  }

  async function startOnce(): Promise<void> {
    const c = spawn(process.execPath, ['--import', 'tsx', `src/bin/${script}.ts`], {
      env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    // Kept for a post-mortem: errors on stdout (pino), crashes on stderr.
    const errors = createWriteStream(path.join(tmpdir(), `saga-chaos-${name}.errors.log`), { flags: 'a' });
    createInterface({ input: c.stdout }).on('line', (line) => {
      if (line.includes('"level":50') || line.includes('"level":60')) errors.write(`${line}\n`);
      if (line.includes('write refused: shard lease lost')) logCounts.fencedWrites += 1;
      if (line.includes('"lease lost"')) logCounts.leasesLost += 1;
    });
    c.stderr.pipe(createWriteStream(path.join(tmpdir(), `saga-chaos-${name}.stderr.log`), { flags: 'a' }));
    await waitHealthy(`${url}/health`, () => c.exitCode !== null);
  }

  return {
    name,
    url,
    alive,
    kill,
    async start() {
      // A process that does not come up (the database restarting under it) is
      // killed and started again, a few times, before the run gives up.
      for (let attempt = 1; ; attempt++) {
        try {
          await startOnce();
          return;
        } catch (err) {
          await kill('SIGKILL');
          if (attempt === 3) throw err;
          say(`  ${name} did not start (${(err as Error).message}); again`);
        }
      }
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  };
}

async function waitHealthy(url: string, dead: () => boolean): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (dead()) throw new Error(`${url}: the process exited during start`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become healthy`);
}

/** Lines of `npm run test:chaos` output. */
export function say(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 23)}  ${line}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
