// The daemon's pidfile: written atomically once the daemon is ready (its API answers), removed at
// stop. It says "ready" to `sliceid wait` (which needs no root) and the initscript; whether a
// daemon runs, and which pid it is, is the instance lock's answer (src/fs/lock.ts), never this
// file's: after a crash or a reboot it may name an unrelated process.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, readIfExists } from './atomic.js';

export function writePidFile(file: string, pid = process.pid): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, `${pid}\n`, 0o644);
}

/** The pid in the file when that process is alive, else undefined. */
export function livePid(file: string): number | undefined {
  const text = readIfExists(file)?.toString('utf8').trim();
  if (!text || !/^\d+$/.test(text)) return undefined;
  const pid = Number(text);
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** Remove the pidfile if it still names this process. */
export function removePidFile(file: string, pid = process.pid): void {
  const text = readIfExists(file)?.toString('utf8').trim();
  if (text === String(pid)) fs.rmSync(file, { force: true });
}
