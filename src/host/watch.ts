// A guest's data followed live, as a node follows its testbed files (src/daemon/watch.ts): inotify
// watches (fs.watch; never polling: idle means idle) on the directories that hold the guest's
// inputs, and a change refreshes that guest only, debounced as the node's refreshes are.
//
// The guest's root user is hostile, so a watch never resolves anything of the guest by the host:
// each directory is resolved inside the guest through guest-fs (its symlinks taken against its own
// root), and the watch is set on the descriptor guest-fs opened (/proc/self/fd/N: inotify watches
// that inode, whatever the guest later links where). A watch only triggers a refresh; the refresh
// reads through guest-fs as always. Events are filtered by name (the guest's /etc is busy; the
// files sliceid writes there itself are not inputs) and coalesced per guest: a guest flooding its
// directories gets at most one refresh queued at a time and one per `maxWaitMs`, and the other
// guests' refreshes take their turns in the daemon's queue meanwhile.
//
// Watched, per guest: /etc (hostname, passwd, machine-id), /var/emulab (boot replaced),
// /var/emulab/boot and its tmcc and tmcc.* directories, each slice user's home (for .ssh) and
// ~/.ssh (for authorized_keys) of the users whose authorized_keys are a key source (a missing home
// from its parent); on the host, /var/emulab/boot/tmcc.<name>/ and the boot directory (for it
// being made or replaced). Planned again after each refresh of the guest: a directory replaced
// since is watched afresh (same path, new inode), one gone is dropped. Bounded: at most
// MAX_BOOT_DIRS tmcc directories and 2 per slice user. A refresh that deferred a shrink (keys
// removed: applied once read again unchanged, src/daemon/shrink.ts) arms a one-shot timer that
// refreshes the guest again to confirm it, as the node's daemon does.
import fs from 'node:fs';
import path from 'node:path';
import type { NodePaths } from '../paths.js';
import type { Logger } from '../log.js';
import { debounce, type Debouncer } from '../daemon/debounce.js';
import type { GuestFs } from './guest-fs.js';

const BOOT = '/var/emulab/boot';
const ETC_INPUTS = new Set(['hostname', 'passwd', 'machine-id']);
const NAME = /^[-\w.]{1,64}$/;
const MAX_BOOT_DIRS = 64;
const MAX_USERS = 10_000;

/** What the watches need of a guest (src/host/guest.ts's Guest). */
export interface WatchedGuest {
  readonly spec: { readonly name: string };
  /** The guest's root, opened through guest-fs; undefined when it has none known. */
  openFs(): GuestFs | undefined;
  /** The guest paths of the slice users' authorized_keys files its last refresh read. */
  readonly userKeyFiles: readonly string[];
  /** Its last refresh deferred a shrink: refresh again after this many ms to confirm it. */
  readonly confirmInMs: number | undefined;
}

type Filter = (name: string) => boolean;

interface DirWatch {
  readonly fsw: fs.FSWatcher;
  readonly dev: number;
  readonly ino: number;
  filter: Filter;
}

interface Entry {
  readonly dirs: Map<string, DirWatch>;
  readonly events: Debouncer;
  /** A refresh is queued or running; `again`: events came meanwhile. */
  busy: boolean;
  again: boolean;
  closed: boolean;
  /** One-shot: a deferred shrink confirmed (armed by a refresh, as the node's confirm timer). */
  confirm: NodeJS.Timeout | undefined;
}

export interface GuestWatchOptions {
  readonly hostPaths: NodePaths;
  readonly logger: Logger;
  /** Refresh the guest (resolves when done); called at most once at a time per guest. */
  readonly changed: (name: string, reasons: string[]) => Promise<void>;
  readonly quietMs?: number;
  readonly maxWaitMs?: number;
}

const ordinary: Filter = (n) => NAME.test(n) && !n.startsWith('.');

export class GuestWatches {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(private readonly opts: GuestWatchOptions) {}

  /** Follow exactly these guests now (each planned again), the others' watches closed. */
  follow(guests: Iterable<WatchedGuest>): void {
    const keep = new Set<string>();
    for (const g of guests) {
      keep.add(g.spec.name);
      this.plan(g);
    }
    for (const name of [...this.entries.keys()]) if (!keep.has(name)) this.drop(name);
  }

  /** Watch what the guest's data is in now (after a refresh: directories replaced are watched afresh). */
  plan(g: WatchedGuest): void {
    if (this.closed) return;
    const name = g.spec.name;
    let entry = this.entries.get(name);
    if (!entry) {
      const e: Entry = { dirs: new Map(), busy: false, again: false, closed: false, confirm: undefined, events: debounce((reasons) => this.fire(name, e, reasons), this.opts.quietMs ?? 100, this.opts.maxWaitMs ?? 1000) };
      entry = e;
      this.entries.set(name, e);
    }
    if (entry.confirm) clearTimeout(entry.confirm);
    entry.confirm = undefined;
    if (g.confirmInMs !== undefined) {
      const e = entry;
      e.confirm = setTimeout(() => {
        e.confirm = undefined;
        if (!e.closed) e.events.trigger('confirm');
      }, g.confirmInMs);
    }
    const wanted = new Set<string>();
    const want = (key: string, filter: Filter, hostDir: string): void => {
      wanted.add(key);
      this.watchDir(entry, key, filter, hostDir);
    };
    // The host's copy of the guest's tmcc cache, and the boot directory it is made in.
    const hostTmcc = this.opts.hostPaths.tmccDir(name);
    if (isDir(hostTmcc)) want(`host:${hostTmcc}`, ordinary, hostTmcc);
    const hostBoot = path.dirname(hostTmcc);
    if (isDir(hostBoot)) want(`host:${hostBoot}`, (n) => n === path.basename(hostTmcc), hostBoot);
    let gfs: GuestFs | undefined;
    try {
      gfs = g.openFs();
    } catch {
      gfs = undefined; // the refresh names the problem
    }
    if (gfs) {
      try {
        const guestDir = (p: string, filter: Filter): boolean => {
          try {
            return gfs!.withDir(p, false, (hostDir) => {
              want(`guest:${p}`, filter, hostDir);
              return true;
            });
          } catch {
            return false; // not there (its parent's watch sees it come), or refused
          }
        };
        guestDir('/etc', (n) => ETC_INPUTS.has(n));
        guestDir('/var/emulab', (n) => n === 'boot');
        if (guestDir(BOOT, ordinary)) {
          const tmcc = gfs.list(BOOT).filter((n) => n === 'tmcc' || (n.startsWith('tmcc.') && NAME.test(n)));
          for (const d of tmcc.slice(0, MAX_BOOT_DIRS)) guestDir(`${BOOT}/${d}`, ordinary);
        }
        for (const file of g.userKeyFiles.slice(0, MAX_USERS)) {
          const ssh = path.posix.dirname(file);
          const home = path.posix.dirname(ssh);
          if (!guestDir(home, (n) => n === path.posix.basename(ssh))) {
            guestDir(path.posix.dirname(home), (n) => n === path.posix.basename(home));
            continue;
          }
          guestDir(ssh, (n) => n === path.posix.basename(file));
        }
      } finally {
        gfs.close();
      }
    }
    for (const [key, d] of [...entry.dirs]) {
      if (wanted.has(key)) continue;
      d.fsw.close();
      entry.dirs.delete(key);
    }
  }

  /** Watch one directory (a host path, or /proc/self/fd/N held open by guest-fs). */
  private watchDir(entry: Entry, key: string, filter: Filter, hostDir: string): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(hostDir);
    } catch {
      return;
    }
    const had = entry.dirs.get(key);
    if (had && had.dev === st.dev && had.ino === st.ino) {
      had.filter = filter;
      return;
    }
    had?.fsw.close();
    entry.dirs.delete(key);
    try {
      const fsw = fs.watch(hostDir, { persistent: false, encoding: 'utf8' });
      const d: DirWatch = { fsw, dev: st.dev, ino: st.ino, filter };
      fsw.on('change', (_event, name) => {
        if (entry.closed) return;
        if (typeof name !== 'string' || d.filter(name)) entry.events.trigger(`${key.replace(/^\w+:/, '')}/${name ?? ''}`);
      });
      fsw.on('error', () => {
        // The directory went away: the guest is refreshed, and planned again.
        fsw.close();
        if (entry.dirs.get(key) === d) entry.dirs.delete(key);
        if (!entry.closed) entry.events.trigger(`${key.replace(/^\w+:/, '')} gone`);
      });
      entry.dirs.set(key, d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') this.opts.logger.warn({ dir: key }, 'no inotify watch left for a guest directory (fs.inotify.max_user_watches)');
    }
  }

  private fire(name: string, entry: Entry, reasons: string[]): void {
    if (entry.closed) return;
    if (entry.busy) {
      entry.again = true;
      return;
    }
    entry.busy = true;
    void this.opts
      .changed(name, reasons)
      .catch((err: unknown) => this.opts.logger.error({ guest: name, err: (err as Error).message }, 'guest refresh after a change failed'))
      .finally(() => {
        entry.busy = false;
        if (entry.again && !entry.closed) {
          entry.again = false;
          entry.events.trigger('changed during the refresh');
        }
      });
  }

  /** Close a guest's watches (it went away). */
  drop(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    entry.closed = true;
    entry.events.cancel();
    if (entry.confirm) clearTimeout(entry.confirm);
    for (const d of entry.dirs.values()) d.fsw.close();
    entry.dirs.clear();
    this.entries.delete(name);
  }

  /** How many directories are watched (for one guest, or all): tests and status. */
  count(name?: string): number {
    if (name !== undefined) return this.entries.get(name)?.dirs.size ?? 0;
    let n = 0;
    for (const e of this.entries.values()) n += e.dirs.size;
    return n;
  }

  /** Which directories are watched for a guest (keys: guest:/path or host:/path). */
  watched(name: string): string[] {
    return [...(this.entries.get(name)?.dirs.keys() ?? [])].sort();
  }

  close(): void {
    this.closed = true;
    for (const name of [...this.entries.keys()]) this.drop(name);
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
