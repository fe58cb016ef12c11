// Shared by the entry points: configuration, the logger, and a clean shutdown
// on SIGINT/SIGTERM (stop taking requests, stop actors, close the database).
import { loadConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../log.js';

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
  const log = createLogger(config.LOG_LEVEL).child({ role: name });
  let parts: Stoppable[];
  try {
    parts = await main(config, log);
  } catch (err) {
    log.fatal({ err }, `${name} could not start: ${(err as Error).message}`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Stop in reverse order of start: front doors first, the database last.
    const stopAll = async () => {
      for (const p of [...parts].reverse()) {
        try {
          await p.stop();
        } catch (err) {
          log.error({ err }, 'error while stopping');
        }
      }
    };
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

/** The separate roles share a PostgreSQL server: it must be named. */
export function requireDatabaseUrl(config: Config): string {
  if (config.DATABASE_URL === undefined) {
    throw new Error('DATABASE_URL is not set: the separate roles share one PostgreSQL. Use `npm start` for the all-in-one system on an embedded PostgreSQL.');
  }
  return config.DATABASE_URL;
}
