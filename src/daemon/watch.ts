// File-system watching with chokidar on inotify (never polling). The set of watched paths
// follows what the last refresh used (tmcc directories, authorized_keys files, config).
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
  const watcher: FSWatcher = watch([...current], {
    ignoreInitial: true,
    usePolling: false,
    persistent: true,
    depth: 2,
    // Our own atomic writes land as dot-temp files, SQLite has its side files: not events to act on.
    ignored: (file: string) => /\/\.[^/]*\.tmp$/.test(file) || /\.db(-wal|-shm|-journal)?$/.test(file),
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
    },
    close: () => watcher.close(),
  };
}
