import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** `auto`: human-readable lines when stdout is a terminal, JSON lines otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Defaults to `auto`. */
  format?: LogFormat;
}

/** Whether a person is reading: pretty lines for a terminal, JSON for files, pipes and collectors. */
export function usePrettyLogs(format: LogFormat, stdoutIsTerminal: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && stdoutIsTerminal);
}

/** JSON lines for machines (one object per event); pino-pretty for a person at a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = usePrettyLogs(options.format ?? 'auto', process.stdout.isTTY === true);
  return pino({
    level: options.level ?? 'info',
    base: { service: 'onnx-serve' },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service' },
          },
        }
      : {}),
  });
}

/**
 * Ends the logger's destination and calls `done` once every line is written. pino writes
 * asynchronously, and its `flush(cb)` calls back at once while a write is still in flight: a process
 * exiting then could have that earlier line land after the lines flushed at exit, out of order.
 */
export function endLogs(log: Logger, done: () => void): void {
  const stream = (log as unknown as Record<symbol, NodeJS.WritableStream | undefined>)[pino.symbols.streamSym];
  if (stream === undefined || (stream as { destroyed?: boolean }).destroyed === true) {
    done();
    return;
  }
  stream.once('close', done);
  stream.once('error', done);
  stream.end();
}
