// Slice hooks on a shared host: the HOST's hooks (its /etc/sliceid/slice.d, its config; never a
// file of a guest's tree) run once per guest slice, as issue 22 runs them on a node: outside the
// daemon, by `sliceid hooks exec --guest NAME` (the template unit sliceid-hooks@NAME.service under
// systemd, else a detached process), with the runner lock, the request mark and the records in the
// guest's private staging tree (var/lib/sliceid/ under the staging root /var/lib/sliceid/guests/<name>/root). A hook gets
// today's variables plus SLICEID_GUEST, SLICEID_GUEST_PID (empty when no process of the guest is
// known), SLICEID_GUEST_ROOT, and starts in the guest's network namespace with the host's file
// system (src/hooks/runner.ts).
//
// The daemon side (GuestHooks) offers a guest's slice once its identity files are written in the
// guest and its API listens there, and leaves beside the records where the guest is
// (hooks.guest.json: its process with the process's start time, its network namespace with the
// namespace's inode). The runner checks both before each pass: a guest that went away, or a pid
// reused by another process, is never entered.
import fs from 'node:fs';
import path from 'node:path';
import { nodePaths, type NodePaths } from '../paths.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { replaceFile } from '../fs/atomic.js';
import { SliceHooks } from '../hooks/index.js';
import { hooksRequested } from '../hooks/lock.js';
import type { RunnerTarget } from '../hooks/exec.js';
import type { HookContext } from '../hooks/runner.js';
import { cachedIdentity, openExistingCache } from '../commands/cache-read.js';
import type { KeyCache } from '../store/types.js';
import type { Guest } from './guest.js';

/** Where the guest is, as the daemon last served it (in the guest's staging state dir). */
export const GUEST_WHERE = 'hooks.guest.json';

interface GuestWhere {
  readonly name: string;
  readonly pid?: number;
  /** The process's start time (field 22 of /proc/PID/stat): a reused pid differs. */
  readonly pidStart?: string;
  readonly netns: string;
  /** dev:ino of the namespace file: another namespace differs. */
  readonly netnsId: string;
  readonly root: string;
  readonly apiUrl: string;
}

/** A guest's private staging tree on the host (src/host/guest.ts). */
export function guestPaths(hostPaths: NodePaths, name: string): NodePaths {
  return nodePaths(hostPaths.under(`/var/lib/sliceid/guests/${name}/root`));
}

function pidStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function nsId(file: string): string | undefined {
  try {
    const st = fs.statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** The slice's context from a guest's cache (the identity its refresh wrote), without `guest`. */
function sliceContext(cache: KeyCache, apiUrl: string): HookContext | undefined {
  const identity = cachedIdentity(cache).identity?.identity;
  if (!identity) return undefined;
  // The guest's Unix socket is a path in the guest: "" (a hook runs with the host's file system,
  // where that path is not the guest's; SLICEID_API_URL reaches the API from the guest's netns).
  return { slicename: identity.slicename, sliceUrn: identity.slice.urn, sliceHrn: identity.slice.hrn, nodeUrn: identity.node.urn, apiUrl, apiSocket: '' };
}

export interface GuestHooksOptions {
  readonly hostPaths: NodePaths;
  /** The host's config (node sections): [hooks] dir, runner. */
  readonly config: () => Config;
  /** `sliceid hooks exec` arguments the detached runner gets besides --guest (--config, --log-format). */
  readonly execArgs: readonly string[];
  readonly logger: Logger;
}

/** The host daemon's side: one SliceHooks per guest, offered each time a guest is served. */
export class GuestHooks {
  private readonly perGuest = new Map<string, { key: string; hooks: SliceHooks; written: string }>();

  constructor(private readonly opts: GuestHooksOptions) {}

  /** A guest was refreshed or its listeners made: its slice's hooks run when they have not yet. */
  offer(g: Guest): void {
    try {
      this.offerGuest(g);
    } catch (err) {
      this.opts.logger.error({ guest: g.spec.name, err: (err as Error).message }, 'slice hooks: guest not offered');
    }
  }

  private offerGuest(g: Guest): void {
    const st = g.status();
    const tcp = st.endpoints.find((e) => !e.startsWith('/'));
    // Its identity files written in the guest and its API answering there.
    if (!st.present || !tcp || !st.files.includes('/etc/slicename')) return;
    const { pid } = g.spec;
    const netns = g.spec.netns ?? (pid ? `/proc/${pid}/ns/net` : undefined);
    const root = g.spec.root ?? (pid ? `/proc/${pid}/root` : undefined);
    const netnsId = netns && nsId(netns);
    if (!netns || !root || !netnsId) return;
    const ctx = sliceContext(g.cache, `http://${tcp}/`);
    if (!ctx) return;
    const name = g.spec.name;
    const where: GuestWhere = { name, ...(pid ? { pid, pidStart: pidStart(pid) ?? '' } : {}), netns, netnsId, root, apiUrl: ctx.apiUrl };
    // A guest that came back (another process or namespace) is offered anew: what is pending runs.
    const key = `${pid ?? ''}|${netnsId}|${root}`;
    let entry = this.perGuest.get(name);
    if (!entry || entry.key !== key) {
      const config = this.opts.config();
      entry = {
        key,
        written: '',
        hooks: new SliceHooks({
          paths: g.paths,
          dir: config.hooks.dir ?? this.opts.hostPaths.hooksDir,
          runner: config.hooks.runner,
          execArgs: ['--guest', name, ...this.opts.execArgs],
          logger: this.opts.logger.child({ guest: name }),
          unit: `sliceid-hooks@${name}.service`,
          runnerRoot: this.opts.hostPaths.root,
        }),
      };
      this.perGuest.set(name, entry);
    }
    const text = `${JSON.stringify(where)}\n`;
    if (text !== entry.written) {
      // Rewritten at each offer that changes it, read by the runner only: replaced atomically, no
      // fsync (50 guests starting cost no 50 disk flushes).
      replaceFile(path.join(g.paths.stateDir, GUEST_WHERE), text, 0o600, { fsync: false });
      entry.written = text;
    }
    entry.hooks.offer(ctx);
  }

  /** SIGUSR2 (`sliceid hooks run --guest NAME` left the guest's request mark): start its runner. */
  runRequested(guests: Iterable<Guest>): void {
    for (const g of guests) if (hooksRequested(g.paths.stateDir)) this.perGuest.get(g.spec.name)?.hooks.runPending();
  }
}

/** The runner's side (`sliceid hooks exec --guest NAME`): the host's hooks for one guest. */
export function guestRunnerTarget(hostPaths: NodePaths, config: Config, name: string): RunnerTarget {
  const paths = guestPaths(hostPaths, name);
  /** The guest the current pass runs for. */
  let served: GuestWhere | undefined;
  return {
    dir: config.hooks.dir ?? hostPaths.hooksDir,
    stateDir: paths.stateDir,
    recordsFile: paths.hookRecords,
    context: () => {
      const where = readWhere(paths, name);
      if (typeof where === 'string') return where;
      served = where;
      return guestContext(paths, where);
    },
    // Before each hook too: a pass may last long, and the guest may go (or its pid be reused) meanwhile.
    check: () => (served ? stillThere(served) : undefined),
  };
}

function readWhere(paths: NodePaths, name: string): GuestWhere | string {
  let where: GuestWhere;
  try {
    where = JSON.parse(fs.readFileSync(path.join(paths.stateDir, GUEST_WHERE), 'utf8')) as GuestWhere;
  } catch {
    return `guest ${name} has not been served by the host daemon yet; nothing run`;
  }
  if (where.name !== name) return `guest ${name}: ${GUEST_WHERE} names another guest; nothing run`;
  return stillThere(where) ?? where;
}

/** Why the guest `where` describes is not the one there now, else undefined. */
function stillThere(where: GuestWhere): string | undefined {
  const name = where.name;
  if (nsId(where.netns) !== where.netnsId) return `guest ${name} is gone (its network namespace ${where.netns} is not the one served); its hooks run when it is served again`;
  if (where.pid && pidStart(where.pid) !== where.pidStart) return `guest ${name} is gone (process ${where.pid} is not the guest's any more); its hooks run when it is served again`;
  return undefined;
}

/** The hook context for the guest `where` describes, or why its hooks do not run now. */
function guestContext(paths: NodePaths, where: GuestWhere): HookContext | string {
  const name = where.name;
  const cache = openExistingCache(paths);
  if (!cache) return `guest ${name} has no cache yet; nothing run`;
  try {
    const ctx = sliceContext(cache, where.apiUrl);
    if (!ctx) return `guest ${name} serves no slice yet; nothing run`;
    return { ...ctx, guest: { name, pid: where.pid, root: where.root, netns: where.netns } };
  } finally {
    cache.close();
  }
}
