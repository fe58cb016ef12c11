// Process handling for a chaos run: each role (participants, orchestrators,
// BFFs) a real child process that can be killed, paused and restarted, with
// its errors kept in a file for a post-mortem.
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { entryPoint, listeningUrl, spawnNode } from '../lib/processes.js';
import { waitHealthy } from '../lib/services.js';
import type { RoleSpec } from '../lib/cluster.js';
import { sleep } from './context.js';

export interface ManagedProcess {
  name: string;
  url: string;
  alive(): boolean;
  /** Being started: not to be killed or paused until it is up. */
  starting(): boolean;
  start(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  pause(): void;
  resume(): void;
  /** Settings for the next start, over the role's own (e.g. a shorter retry budget). */
  setEnv(extra: Record<string, string>): void;
}

/** Counts of the warnings that matter for the report, read from every process's log. */
export const logCounts = { fencedWrites: 0, leasesLost: 0, faultsAnnounced: 0 };

/** A role of the cluster description as a process this run controls. */
export function managedRole({ name, script, port, env: roleEnv }: RoleSpec, logDir: string): ManagedProcess {
  let env: Record<string, string> = roleEnv;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let starting = false;
  // Port 0: each start gets a free port, read from the "listening" log line, so a
  // restart never races a dying predecessor for its port.
  let url = `http://127.0.0.1:${port}`;
  let announced: (u: string) => void = () => undefined;
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  async function kill(signal: NodeJS.Signals): Promise<void> {
    if (child !== undefined && alive()) {
      child.kill(signal);
      await exited;
    }
  }

  async function startOnce(): Promise<void> {
    const listening = new Promise<string>((resolve) => (announced = resolve));
    const c = spawnNode(entryPoint(script), [], { env: { HOST: '127.0.0.1', LOG_LEVEL: port === 0 ? 'info' : 'warn', ...env } });
    child = c;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    // Kept for a post-mortem: errors on stdout (pino), crashes on stderr.
    const errors = createWriteStream(path.join(logDir, `${name}.errors.log`), { flags: 'a' });
    createInterface({ input: c.stdout! }).on('line', (line) => {
      if (line.includes('"level":50') || line.includes('"level":60')) errors.write(`${line}\n`);
      if (line.includes('write refused: shard lease lost')) logCounts.fencedWrites += 1;
      if (line.includes('"lease lost"')) logCounts.leasesLost += 1;
      if (line.includes('SAGA_FAULTS:')) logCounts.faultsAnnounced += 1;
      if (line.includes(`"msg":"${script} listening"`)) {
        const found = listeningUrl(JSON.parse(line) as Record<string, unknown>, script);
        if (found !== undefined) announced(found);
      }
    });
    c.stderr!.pipe(createWriteStream(path.join(logDir, `${name}.stderr.log`), { flags: 'a' }));
    if (port === 0) {
      url = await Promise.race([
        listening,
        exited.then(() => Promise.reject(new Error(`${name} exited during start`))),
        sleep(60_000).then(() => Promise.reject(new Error(`${name} did not listen in time`))),
      ]);
    }
    await waitHealthy(`${url}/health`, () => c.exitCode !== null);
  }

  return {
    name,
    get url() {
      return url;
    },
    alive,
    starting: () => starting,
    kill,
    async start() {
      if (starting) throw new Error(`${name} is already starting`);
      starting = true;
      // A process that does not come up (the database restarting under it) is
      // killed and started again, a few times, before the run gives up.
      try {
        for (let attempt = 1; ; attempt++) {
          await kill('SIGKILL');
          try {
            await startOnce();
            return;
          } catch (err) {
            if (attempt === 3) throw err;
            say(`  ${name} did not start (${(err as Error).message}); again`);
          }
        }
      } finally {
        starting = false;
      }
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    setEnv(extra) {
      env = { ...roleEnv, ...extra };
    },
  };
}

/** Lines of `npm run test:chaos` output. */
export function say(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 23)}  ${line}\n`);
}
