// Where a shared host's guests come from (spec section 8): the config's [[guest]] entries, every
// network namespace file in the netns directory (named by its file name; its process is one
// whose /proc/PID/ns/net is that namespace), and systemd-machined's machines (/run/systemd/machines,
// LEADER=<pid>) where machined runs. The directories are followed with inotify (fs.watch), no polling.
import fs from 'node:fs';
import path from 'node:path';
import type { NodePaths } from '../paths.js';
import type { GuestSpec } from './guest.js';
import { GUEST_NAME } from './config.js';

/** A process in the network namespace `nsFile`, or undefined (the lowest pid, /proc scanned once). */
export function processInNetns(nsFile: string): number | undefined {
  let want: fs.Stats;
  try {
    want = fs.statSync(nsFile);
  } catch {
    return undefined;
  }
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  // A process that shares the host's root (ip netns exec before its chroot) is no guest's.
  const hostRoot = fs.statSync('/');
  const pids = names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      const st = fs.statSync(`/proc/${pid}/ns/net`);
      if (st.ino !== want.ino || st.dev !== want.dev) continue;
      const r = fs.statSync(`/proc/${pid}/root`);
      if (r.ino === hostRoot.ino && r.dev === hostRoot.dev) continue;
      return pid;
    } catch {
      // gone, or a kernel thread
    }
  }
  return undefined;
}

export function netnsGuests(dir: string): GuestSpec[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => GUEST_NAME.test(n))
    .sort()
    .map((name) => {
      const netns = path.join(dir, name);
      const pid = processInNetns(netns);
      return { name, netns, from: 'netns' as const, ...(pid !== undefined ? { pid } : {}) };
    });
}

/** systemd-machined's machines: /run/systemd/machines/<name> holds LEADER=<pid>. */
export function machinedGuests(paths: NodePaths): GuestSpec[] {
  const dir = paths.under('/run/systemd/machines');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => GUEST_NAME.test(n) && !n.startsWith('unit:'));
  } catch {
    return [];
  }
  const out: GuestSpec[] = [];
  for (const name of names) {
    try {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      const leader = /^LEADER=(\d+)$/m.exec(text)?.[1];
      if (leader) out.push({ name, pid: Number(leader), from: 'netns' });
    } catch {
      // not a machine file
    }
  }
  return out;
}

/** Every guest now: config entries first (they win over a namespace of the same name). */
export function discover(paths: NodePaths, configured: readonly GuestSpec[], netnsDir: string): GuestSpec[] {
  const out = new Map<string, GuestSpec>();
  for (const g of configured) out.set(g.name, g);
  for (const g of [...netnsGuests(netnsDir), ...machinedGuests(paths)]) if (!out.has(g.name)) out.set(g.name, g);
  return [...out.values()];
}

/** Watch the directories guests appear in; `changed` is called (coalesced) on any event. */
export function watchGuests(paths: NodePaths, netnsDir: string, changed: () => void): () => void {
  const watchers: fs.FSWatcher[] = [];
  let queued = false;
  const poke = (): void => {
    if (queued) return;
    queued = true;
    setImmediate(() => {
      queued = false;
      changed();
    });
  };
  for (const dir of [netnsDir, paths.under('/run/systemd/machines')]) {
    try {
      const w = fs.watch(dir, { persistent: false }, poke);
      w.on('error', () => w.close());
      watchers.push(w);
    } catch {
      // the directory does not exist (yet): its parent is watched for it
      try {
        const parent = path.dirname(dir);
        const w = fs.watch(parent, { persistent: false }, (_e, name) => {
          if (name === path.basename(dir)) poke();
        });
        w.on('error', () => w.close());
        watchers.push(w);
      } catch {
        // nothing to watch
      }
    }
  }
  return () => {
    for (const w of watchers) w.close();
  };
}
