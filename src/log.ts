import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export type LogFormat = 'pretty' | 'json';

/** The message of anything thrown (an Error or not), for a log line or a reason shown to a person. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Readable lines for a person at a terminal; JSON for everything that collects logs. */
export function defaultLogFormat(stdoutIsTty: boolean | undefined): LogFormat {
  return stdoutIsTty === true ? 'pretty' : 'json';
}

/** One structured logger for the process; each component takes a child with its name. */
export function createLogger(
  level: string = process.env.LOG_LEVEL ?? 'info',
  format: LogFormat = 'json',
  /** Where lines go; standard output by default. */
  destination?: NodeJS.WritableStream,
): Logger {
  const options = { level, base: { pid: process.pid } };
  if (format === 'json') return destination === undefined ? pino(options) : pino(options, destination);
  // In this thread and synchronous, so the last lines before an exit are not lost.
  const stream = pretty({
    colorize: destination === undefined,
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: true,
    ...(destination === undefined ? {} : { destination }),
  });
  return pino(options, stream);
}
