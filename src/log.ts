import { pino, type Logger } from 'pino';

export type { Logger };

/** One structured JSON logger for the process; each component takes a child with its name. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid } });
}
