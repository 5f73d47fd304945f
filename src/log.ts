// The pino logger. JSON lines to stdout (or a destination fd); never log private keys.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; destination?: number | string } = {}): Logger {
  const options: LoggerOptions = {
    name: 'sliceid',
    level: opts.level ?? process.env['SLICEID_LOG_LEVEL'] ?? 'info',
    base: { pid: process.pid },
    redact: { paths: ['privateKey', '*.privateKey', 'key.private'], remove: true },
  };
  return pino(options, pino.destination({ dest: opts.destination ?? 1, sync: true }));
}

/** A logger that drops everything (library use and unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
