// File-system watching with chokidar on inotify (never polling). The set of watched paths
// follows what the last refresh used (tmcc directories, authorized_keys files, config).
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';

export interface Watcher {
  /** Resolves once the initial paths are watched (chokidar's first scan is done). */
  readonly ready: Promise<void>;
  /** Watch exactly these paths from now on (files or directories; missing ones are fine). */
  setPaths(paths: readonly string[]): void;
  close(): Promise<void>;
}

export function startWatcher(
  initial: readonly string[],
  onEvent: (event: string, file: string) => void,
  logger: Logger,
): Watcher {
  let current = new Set(initial);
  let only = onlyChildren(current);
  const watcher: FSWatcher = watch([...current], {
    ignoreInitial: true,
    usePolling: false,
    persistent: true,
    depth: 2,
    // Our own atomic writes land as dot-temp files, SQLite has its side files: not events to act on.
    // In a directory watched for named files (a user's ~/.ssh) nothing else is looked at: what a
    // user puts there (other names, symlinks to elsewhere) is neither followed nor reported.
    ignored: (file: string) =>
      /\/\.[^/]*\.tmp$/.test(file) || /\.db(-wal|-shm|-journal)?$/.test(file) || (only.get(path.dirname(file))?.has(file) === false),
  });
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  watcher.on('all', (event, file) => onEvent(event, file));
  watcher.on('error', (err) => logger.warn({ err: String(err) }, 'file watcher error'));
  return {
    ready,
    setPaths(paths) {
      const next = new Set(paths);
      const add = [...next].filter((p) => !current.has(p));
      const remove = [...current].filter((p) => !next.has(p));
      if (remove.length) watcher.unwatch(remove);
      if (add.length) watcher.add(add);
      current = next;
      only = onlyChildren(current);
    },
    close: () => watcher.close(),
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
