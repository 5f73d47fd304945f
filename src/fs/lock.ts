// The daemon's instance lock: one `sliceid run` per state directory. A real kernel lock, released
// when the process dies however it dies: SQLite's exclusive lock (fcntl, POSIX advisory) on
// <state dir>/daemon.lock, taken by better-sqlite3 with locking_mode=EXCLUSIVE and held for the
// daemon's life. "Is the daemon running, and which pid is it?" has one answer, this lock: the
// kernel lists who holds it in /proc/locks, so no process is trusted on the word of a pidfile.
// status, refresh, hooks, clean and the initscript (through `sliceid status --pid`) all ask here.
// POSIX locks belong to the process and go when it closes *any* descriptor of the file: nothing in
// the daemon may open the lock file but SQLite (which keeps track of its own); the others only
// stat it.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { nativeBinding } from '../store/addon.js';

const openDatabase = (file: string, opts: Database.Options): Database.Database => new Database(file, { ...opts, nativeBinding: nativeBinding() });

/** The lock file's name in the state directory (never set aside or cleaned while held). */
export const LOCK_NAME = 'daemon.lock';

export interface StateLock {
  readonly file: string;
  /** Release the lock (at stop); the file stays. */
  release(): void;
}

export type LockAttempt = { readonly lock: StateLock } | { readonly heldBy: number | undefined; readonly file: string };

/**
 * Take the state directory's lock (`name`: the daemon's, or another one such as the slice hooks'
 * runner lock, src/hooks/lock.ts), or learn who holds it. Creates the state directory (0700) when
 * it is missing and the lock file in it; writes nothing else.
 */
export function acquireStateLock(stateDir: string, name = LOCK_NAME): LockAttempt {
  const file = path.join(stateDir, name);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  let db: Database.Database | undefined;
  try {
    // Made 0600 when missing; an existing one is not opened here (see above).
    try {
      fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    db = openDatabase(file, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = MEMORY'); // no journal file beside it
    // An exclusive transaction takes the file's write lock; in EXCLUSIVE locking mode SQLite keeps
    // it after the commit until the connection closes.
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db?.close();
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return { heldBy: lockHolder(stateDir, undefined, name).pid, file };
    throw new Error(`${file}: cannot take the instance lock (${(err as Error).message})`);
  }
  const held = db;
  return {
    lock: {
      file,
      release: () => {
        if (held.open) held.close();
      },
    },
  };
}

export interface LockState {
  /** Whether a process holds the lock. */
  readonly held: boolean;
  /** The holder's pid, as the kernel lists it (undefined when it cannot be told). */
  readonly pid: number | undefined;
}

/** Linux's device number -> the "MAJOR:MINOR" (hex) /proc/locks writes. */
function procLocksDevice(dev: number): string {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 2 ** 12) & ~0xff & 0xfffff00);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

/**
 * Who holds the state directory's lock. Asks the kernel (/proc/locks: the lock's holder by device
 * and inode); without /proc, tries to read the lock database (refused while a daemon holds it) and
 * then cannot tell the pid. Takes no lock itself when /proc/locks answers.
 */
export function lockHolder(stateDir: string, procLocks = '/proc/locks', name = LOCK_NAME): LockState {
  const file = path.join(stateDir, name);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return { held: false, pid: undefined };
  }
  let table: string | undefined;
  try {
    table = fs.readFileSync(procLocks, 'utf8');
  } catch {
    table = undefined;
  }
  if (table !== undefined) {
    const where = `${procLocksDevice(st.dev)}:${st.ino}`;
    for (const line of table.split('\n')) {
      // "1: POSIX  ADVISORY  WRITE 1234 fe:00:5464550 1073741824 1073742335"
      const f = line.trim().split(/\s+/);
      const at = f.findIndex((x) => /^[0-9a-f]+:[0-9a-f]+:\d+$/.test(x));
      // The daemon's lock is a write lock; a read lock is someone's passing look (not a holder).
      if (at < 1 || f[at] !== where || !f.includes('WRITE')) continue;
      const pid = Number(f[at - 1]);
      return { held: true, pid: Number.isInteger(pid) && pid > 0 ? pid : undefined };
    }
    return { held: false, pid: undefined };
  }
  let db: Database.Database | undefined;
  try {
    db = openDatabase(file, { timeout: 0, readonly: true, fileMustExist: true });
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return { held: false, pid: undefined };
  } catch (err) {
    const code = (err as { code?: string }).code;
    return { held: code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED', pid: undefined };
  } finally {
    db?.close();
  }
}

/** The running daemon's pid for this state directory: the lock's holder, else undefined. */
export function daemonPid(stateDir: string): number | undefined {
  const state = lockHolder(stateDir);
  return state.held ? state.pid : undefined;
}
