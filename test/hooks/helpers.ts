// Shared by the hooks tests: a logger that keeps its lines, and hook files made in temp dirs.
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';

export interface Captured {
  readonly logger: Logger;
  readonly lines: Array<Record<string, unknown>>;
}

export function captureLogger(): Captured {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

/** Whether a process (a hook's child) still exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Write an executable hook (mode 0755 unless given) and return its path. */
export function writeHook(dir: string, name: string, body: string, mode = 0o755): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = path.join(dir, name);
  fs.writeFileSync(file, body.startsWith('#!') ? body : `#!/bin/sh\n${body}\n`);
  fs.chmodSync(file, mode);
  return file;
}
