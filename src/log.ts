// The pino logger. One line per event on stdout (or a destination fd); never log private keys.
//
// Formats: "json" (pino's JSON lines: files, SysV's /var/log/sliceid.log, `--log-format json`),
// "journal" (a plain text line per event with sd-daemon's priority prefix, `<6>ready port=812
// slicename=x`, which journald reads as the entry's priority), and "auto": journal when stdout is
// the journal's stream (systemd sets JOURNAL_STREAM to its "device:inode"), else JSON.
//
// Logging never stops the service: a destination that fails (full disk, closed pipe, I/O error)
// drops the line and counts it (logStats(), shown by `status`); nothing is thrown and the process
// does not exit for it (Node ignores SIGPIPE, so a closed pipe is an EPIPE error here).
import fs from 'node:fs';
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

import type { LogFormat } from './config.js';
export { LOG_FORMATS, type LogFormat } from './config.js';

export interface LogStats {
  /** Lines the destination refused since the process started. */
  dropped: number;
  /** The last write error (e.g. "ENOSPC"), and when (ms since the epoch). */
  lastError: string | undefined;
  lastErrorAt: number | undefined;
}

const stats: LogStats = { dropped: 0, lastError: undefined, lastErrorAt: undefined };
let onDrop: ((s: Readonly<LogStats>) => void) | undefined;

/** This process's dropped-line count (one destination per process). */
export function logStats(): Readonly<LogStats> {
  return { ...stats };
}

/** Called (synchronously, from the failing write) after each dropped line; keep it cheap. */
export function onLogDrop(fn: ((s: Readonly<LogStats>) => void) | undefined): void {
  onDrop = fn;
}

/** Whether `fd` is the journal's stream that systemd announced in JOURNAL_STREAM ("dev:inode"). */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/** The format "auto" stands for on `fd`. */
export function resolveLogFormat(format: LogFormat, fd = 1, env: NodeJS.ProcessEnv = process.env): 'json' | 'journal' {
  if (format !== 'auto') return format;
  return isJournalStream(fd, env) ? 'journal' : 'json';
}

/** pino's levels -> sd-daemon priorities (<7> debug ... <2> crit). */
function priority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

const OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);
/** Control characters (a newline would start a new journal entry) shown escaped. */
const escapeControls = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=\x00-\x1f\x7f]+$/.test(v) ? v : JSON.stringify(v);
  return escapeControls(JSON.stringify(v) ?? String(v));
}

/** One pino JSON line -> `<N>message key=value ...\n`. */
export function journalLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `<6>${escapeControls(json.trimEnd())}\n`;
  }
  const level = typeof entry['level'] === 'number' ? entry['level'] : 30;
  const fields = Object.entries(entry)
    .filter(([k, v]) => !OMITTED.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${fieldValue(v)}`);
  const msg = typeof entry['msg'] === 'string' ? escapeControls(entry['msg']) : '';
  return `<${priority(level)}>${[msg, ...fields].filter(Boolean).join(' ')}\n`;
}

/** A synchronous destination that never throws: a failed write drops the line and counts it. */
export function safeDestination(fd: number, format: 'json' | 'journal'): { write(s: string): void } {
  return {
    write(s: string): void {
      const line = format === 'journal' ? journalLine(s) : s;
      try {
        const buf = Buffer.from(line);
        let off = 0;
        // A short write (a pipe nearly full) goes on with the rest; EAGAIN drops what is left.
        while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
      } catch (err) {
        stats.dropped++;
        stats.lastError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        stats.lastErrorAt = Date.now();
        try {
          onDrop?.(stats);
        } catch {
          // the listener's own failure must not stop the logging either
        }
      }
    },
  };
}

export function createLogger(opts: { level?: string; destination?: number; format?: LogFormat } = {}): Logger {
  const fd = opts.destination ?? 1;
  const options: LoggerOptions = {
    name: 'sliceid',
    level: opts.level ?? process.env['SLICEID_LOG_LEVEL'] ?? 'info',
    base: { pid: process.pid },
    redact: { paths: ['privateKey', '*.privateKey', 'key.private'], remove: true },
  };
  return pino(options, safeDestination(fd, resolveLogFormat(opts.format ?? 'auto', fd)));
}

/** A logger that drops everything (library use and unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
