// sliceid clean [--dry-run]: remove everything node-specific before an image is snapshot (the
// model is `cloud-init clean`), so that no node cloned from the image starts with another node's
// identity. Removed: the state directory's contents (keys, certificates, node UUID, node record,
// hook records, the key cache, set-aside state), the three identity files, the pidfile, faults
// file and socket, and the sshd key files. Kept: the configuration (/etc/sliceid, the slice hooks,
// an operator CA wherever it lives), the state directory itself (0700, the package's) and logs.
// Refused while a daemon runs (it holds the instance lock): it would write them again at its next
// refresh; clean holds that lock itself while it removes.
import fs from 'node:fs';
import path from 'node:path';
import { isInside, nodeStateEntries } from '../identity/node-record.js';
import type { Config } from '../config.js';
import type { NodePaths } from '../paths.js';
import { command, runningDaemon, setup } from './common.js';
import { acquireStateLock, type StateLock } from '../fs/lock.js';

const USAGE = 'usage: sliceid clean [--root DIR] [--config FILE] [--dry-run] [--json]\n';

/** Temp files our atomic writes leave when killed: `.<name>.<12 hex>.tmp`. */
const tempOf = (file: string): RegExp => new RegExp(`^\\.${path.basename(file).replace(/[.]/g, '\\.')}\\.[0-9a-f]{12}\\.tmp$`);

/** Every node-specific path that exists now, in removal order. */
export function nodeSpecificPaths(paths: NodePaths, config: Config, configFile: string | undefined): string[] {
  const keep = [config.authority?.cert, config.authority?.key, configFile].filter((f): f is string => !!f);
  const cache = path.basename(paths.database);
  const stateEntries = [
    ...nodeStateEntries(paths, keep),
    // The key cache and set-aside state are not identity (adopting state keeps them), but they are this node's.
    ...[cache, `${cache}-wal`, `${cache}-shm`, `${cache}-journal`, 'set-aside'],
    // The hooks runner's lock and a request left for it.
    'hooks.request',
    'hooks.lock',
  ].map((n) => path.join(paths.stateDir, n));
  const identityFiles = [paths.slicename, paths.sliceGid, paths.nodeGid];
  const temps = identityFiles.flatMap((file) => {
    try {
      return fs.readdirSync(path.dirname(file)).filter((n) => tempOf(file).test(n)).map((n) => path.join(path.dirname(file), n));
    } catch {
      return [];
    }
  });
  const socket = config.api.socket === null ? paths.socket : config.api.socket || undefined;
  const all = [...stateEntries, ...identityFiles, ...temps, paths.pidFile, paths.faultsFile, ...(socket ? [socket] : []), paths.sshdKeysDir];
  return [...new Set(all)].filter((p) => exists(p) && !keep.some((k) => isInside(k, p)));
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function refuse(daemon: { pid: number } | { running: boolean; why: string }): number {
  const what = 'pid' in daemon ? `the daemon is running (pid ${daemon.pid})` : `${daemon.why}: a daemon runs`;
  process.stderr.write(`sliceid: ${what}; stop it first (service sliceid stop); nothing removed\n`);
  return 1;
}

export const main = command(USAGE, { 'dry-run': { type: 'boolean', default: false } }, false, ({ values }) => {
  const { paths, config, configFile } = setup(values);
  const dryRun = values['dry-run'];
  // While it removes, clean holds the daemon's lock itself: no daemon can start meanwhile. The lock
  // file goes last (it is sliceid's own, not the node's); a dry run only asks who holds it.
  let lock: StateLock | undefined;
  if (!dryRun && fs.existsSync(paths.stateDir)) {
    const attempt = acquireStateLock(paths.stateDir);
    if ('heldBy' in attempt) return refuse(attempt.heldBy === undefined ? { running: true, why: `a daemon holds ${attempt.file}` } : { pid: attempt.heldBy });
    lock = attempt.lock;
  } else {
    const daemon = runningDaemon(paths);
    if ('pid' in daemon || daemon.running) return refuse(daemon);
  }
  let targets: string[];
  try {
    targets = nodeSpecificPaths(paths, config, configFile);
    if (!dryRun) for (const p of targets) fs.rmSync(p, { recursive: true, force: true });
    if (lock) fs.rmSync(lock.file, { force: true });
  } finally {
    lock?.release();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ dryRun, [dryRun ? 'wouldRemove' : 'removed']: targets })}\n`);
  } else if (targets.length === 0) {
    process.stdout.write('nothing node-specific to remove\n');
  } else {
    process.stdout.write(targets.map((p) => `${dryRun ? 'would remove' : 'removed'} ${p}\n`).join(''));
  }
  return 0;
});
