// File-system watching, on inotify (never polling), in two parts:
// - the testbed's own paths (boot directory, tmcc directories, host name, config): few, small and
//   root-owned, watched with chokidar;
// - the users' authorized_keys files, in homes their users own: watched with node:fs.watch as the
//   files they are meant to be, never as what a user makes of them. One non-recursive watch on
//   each user's ~/.ssh (events filtered by the name authorized_keys) and one on the home (for
//   ~/.ssh itself being replaced). A ~/.ssh that is a symbolic link is not watched (its
//   replacement by a real directory is seen from the home); an authorized_keys that is a
//   directory or a symbolic link is never entered nor followed: its events are those of its name
//   in ~/.ssh. So the watches are bounded by the number of users, whatever they put in their
//   homes, and nothing a user links to (the daemon's log, its state) can fire an event.
// Why not chokidar for the homes: chokidar (5) watches a directory to learn about one name in it
// by reading the whole directory again at each event (1.83 s of CPU for 100 writes beside 20k
// files, against 4.2 ms with fs.watch), follows symbolic links and walks into directories.
import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';

export interface Watcher {
  /** Resolves once the initial paths are watched (chokidar's first scan is done). */
  readonly ready: Promise<void>;
  /**
   * Watch exactly these paths from now on: `paths` the testbed's (files or directories; missing
   * ones are fine), `userFiles` users' `~/.ssh/authorized_keys` files. The user files are watched
   * when this returns.
   */
  setPaths(paths: readonly string[], userFiles?: readonly string[]): void;
  /** How many directories the user-file part watches now (for tests and status). */
  userWatchCount(): number;
  close(): Promise<void>;
}

export function startWatcher(
  initial: readonly string[],
  onEvent: (event: string, file: string) => void,
  logger: Logger,
  initialUserFiles: readonly string[] = [],
): Watcher {
  let current = new Set(initial);
  let only = onlyChildren(current);
  const watcher: FSWatcher = watch([...current], {
    ignoreInitial: true,
    usePolling: false,
    persistent: true,
    depth: 2,
    // Our own atomic writes land as dot-temp files, SQLite has its side files: not events to act on.
    ignored: (file: string) =>
      /\/\.[^/]*\.tmp$/.test(file) || /\.db(-wal|-shm|-journal)?$/.test(file) || (only.get(path.dirname(file))?.has(file) === false),
  });
  // chokidar given nothing to watch never reports ready.
  const ready = current.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  watcher.on('all', (event, file) => onEvent(event, file));
  watcher.on('error', (err) => logger.warn({ err: String(err) }, 'file watcher error'));
  const users = userFileWatcher(onEvent, logger);
  users.set(initialUserFiles);
  return {
    ready,
    setPaths(paths, userFiles = []) {
      const next = new Set(paths);
      const add = [...next].filter((p) => !current.has(p));
      const remove = [...current].filter((p) => !next.has(p));
      if (remove.length) watcher.unwatch(remove);
      if (add.length) watcher.add(add);
      current = next;
      only = onlyChildren(current);
      users.set(userFiles);
    },
    userWatchCount: () => users.count(),
    close: async () => {
      users.close();
      await watcher.close();
    },
  };
}

/** Watched directories that have watched children: those children are all that is wanted of them. */
function onlyChildren(paths: ReadonlySet<string>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const p of paths) {
    const dir = path.dirname(p);
    if (!paths.has(dir)) continue;
    let set = out.get(dir);
    if (!set) out.set(dir, (set = new Set()));
    set.add(p);
  }
  return out;
}

// ---- users' authorized_keys -------------------------------------------------------------------

/** One watched name in one directory, for one user file. */
interface Want {
  readonly dir: string;
  readonly name: string;
  /** The user file this watch serves. */
  readonly file: string;
  /** The directory is the user's (~/.ssh): watched only as a real directory, never through a link. */
  readonly userOwned: boolean;
}

interface DirWatch {
  fsw: fs.FSWatcher | undefined;
  readonly userOwned: boolean;
  /** name -> the user files interested in it */
  readonly names: Map<string, Set<string>>;
}

export interface UserFileWatcher {
  set(files: readonly string[]): void;
  count(): number;
  close(): void;
}

const lstatOf = (p: string): fs.Stats | undefined => {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
};

/**
 * What to watch for `file` (= home/.ssh/authorized_keys): the home for `.ssh` and, when ~/.ssh is
 * a real directory (not a symbolic link), ~/.ssh for `authorized_keys`. A home that is not there
 * (yet) is watched for from its parent (the testbed's /users, root's).
 */
export function plan(file: string): Want[] {
  const ssh = path.dirname(file);
  const home = path.dirname(ssh);
  let homeIsDir = false;
  try {
    // The home is the testbed's (named in passwd, made by root): followed if it is a link.
    homeIsDir = fs.statSync(home).isDirectory();
  } catch {
    // not there (yet)
  }
  if (!homeIsDir) return [{ dir: path.dirname(home), name: path.basename(home), file, userOwned: false }];
  const out: Want[] = [{ dir: home, name: path.basename(ssh), file, userOwned: false }];
  if (lstatOf(ssh)?.isDirectory()) out.push({ dir: ssh, name: path.basename(file), file, userOwned: true });
  return out;
}

export function userFileWatcher(onEvent: (event: string, file: string) => void, logger: Logger): UserFileWatcher {
  const dirs = new Map<string, DirWatch>();
  /** user file -> its current wants, as "dir\0name" */
  const files = new Map<string, Set<string>>();
  let closed = false;

  const key = (w: Want): string => `${w.dir}\0${w.name}`;

  const open = (dir: string, d: DirWatch): void => {
    d.fsw?.close();
    d.fsw = undefined;
    try {
      const fsw = fs.watch(dir, { persistent: true, recursive: false, encoding: 'utf8' });
      fsw.on('change', (event, name) => fired(dir, event, typeof name === 'string' ? name : null));
      fsw.on('error', (err) => {
        // The directory went away (or was replaced): its parent's watch re-plans.
        logger.debug({ dir, err: err.message }, 'user directory watch ended');
        if (d.fsw === fsw) d.fsw = undefined;
        fsw.close();
      });
      d.fsw = fsw;
      // Made a symbolic link between the check and the watch: then it is not watched (the
      // home's watch sees the link replaced and plans again).
      if (d.userOwned && !lstatOf(dir)?.isDirectory()) {
        fsw.close();
        d.fsw = undefined;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') logger.warn({ dir }, 'no inotify watch left for a user directory (fs.inotify.max_user_watches)');
      else logger.debug({ dir, err: code ?? String(err) }, 'user directory not watched');
    }
  };

  const add = (w: Want): void => {
    let d = dirs.get(w.dir);
    if (!d) {
      d = { fsw: undefined, userOwned: w.userOwned, names: new Map() };
      dirs.set(w.dir, d);
      open(w.dir, d);
    }
    let set = d.names.get(w.name);
    if (!set) d.names.set(w.name, (set = new Set()));
    set.add(w.file);
  };

  const drop = (k: string, file: string): void => {
    const [dir, name] = k.split('\0') as [string, string];
    const d = dirs.get(dir);
    if (!d) return;
    const set = d.names.get(name);
    set?.delete(file);
    if (set && set.size === 0) d.names.delete(name);
    if (d.names.size === 0) {
      d.fsw?.close();
      dirs.delete(dir);
    }
  };

  /** Watch what `file` needs now; `reopen` the directories whose watch may be on an old inode. */
  const replan = (file: string, reopen: ReadonlySet<string> = new Set()): void => {
    // Planned again once the watches are set: a directory made between the look and the watch
    // (mkdir -p of a home and its .ssh) is then seen.
    for (let round = 0; round < 3; round++) {
      const wants = plan(file);
      const next = new Set(wants.map(key));
      const had = files.get(file) ?? new Set<string>();
      if (round > 0 && next.size === had.size && [...next].every((k) => had.has(k))) return;
      for (const k of had) if (!next.has(k)) drop(k, file);
      for (const w of wants) {
        if (!had.has(key(w))) add(w);
        else if (round === 0 && reopen.has(w.dir)) open(w.dir, dirs.get(w.dir)!);
      }
      files.set(file, next);
    }
  };

  function fired(dir: string, event: string, name: string | null): void {
    if (closed) return;
    const d = dirs.get(dir);
    if (!d) return;
    // inotify names the child; a nameless event (none on Linux for a directory) counts for all.
    const targets = name === null ? [...d.names.entries()] : d.names.has(name) ? [[name, d.names.get(name)!] as const] : [];
    for (const [n, set] of targets) {
      for (const file of [...set]) {
        if (path.join(dir, n) === file) {
          onEvent(event, file);
        } else {
          // ~/.ssh or the home itself: whatever is there now is watched afresh.
          replan(file, new Set([path.join(dir, n)]));
          onEvent(event, path.join(dir, n));
        }
      }
    }
  }

  return {
    set(list) {
      if (closed) return;
      const next = new Set(list);
      for (const [file, had] of [...files]) {
        if (next.has(file)) continue;
        for (const k of had) drop(k, file);
        files.delete(file);
      }
      for (const file of next) if (!files.has(file)) replan(file);
    },
    count: () => [...dirs.values()].filter((d) => d.fsw !== undefined).length,
    close() {
      closed = true;
      for (const d of dirs.values()) d.fsw?.close();
      dirs.clear();
      files.clear();
    },
  };
}
