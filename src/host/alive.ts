// Noticing that a guest's process exited, without polling. Node 20 has no pidfd and a host daemon
// cannot waitpid() a process that is not its child; inotify on /proc/<pid> reports nothing when
// the process exits (procfs sends no events: verified). So, two triggers:
//  - the process's cgroup (v2, the unified hierarchy): a container manager (Docker, nspawn, LXC,
//    machined's scopes) gives each guest a cgroup of its own, and the kernel reports a change of
//    its `cgroup.events` ("populated 0" when its last process exits) to inotify;
//  - a cheap check (one read of /proc/<pid>/stat, the start time compared so that a reused pid is
//    not taken for the guest's) at every other event the daemon gets: any guest's file event, a
//    change in the netns directory or machined's, SIGHUP.
// A guest whose process shares its cgroup with others (a process started by hand in a shell's
// cgroup, or a host on cgroup v1 only) is noticed at the next such event, not at its exit.
import fs from 'node:fs';
import path from 'node:path';

/**
 * The start time of a process (field 22 of /proc/<pid>/stat), undefined when it is gone or a
 * zombie (it has exited; its parent has not reaped it yet: that is when its cgroup empties).
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified), if it is. */
function cgroup2Mount(): string | undefined {
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [pre, post] = line.split(' - ');
      if (post?.startsWith('cgroup2 ')) return pre!.split(' ')[4];
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** The `cgroup.events` file of the process's own v2 cgroup; undefined for the root cgroup or none. */
export function cgroupEvents(pid: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  const rel = /^0::(\/.*)$/m.exec(text)?.[1];
  if (!rel || rel === '/' || rel.includes('..')) return undefined;
  const mount = cgroup2Mount();
  if (!mount) return undefined;
  const file = path.join(mount, rel, 'cgroup.events');
  return fs.existsSync(file) ? file : undefined;
}

interface Tracked {
  readonly pid: number;
  readonly start: string;
  fsw: fs.FSWatcher | undefined;
}

export class GuestProcesses {
  private readonly tracked = new Map<string, Tracked>();

  /** `exited` is called (once per process) when a tracked guest's process is seen gone. */
  constructor(private readonly exited: (name: string) => void) {}

  /**
   * Whether the guest's process is alive; at first sight of this pid its start time is recorded
   * and its cgroup watched. A pid whose start time changed is another process: not alive.
   */
  alive(name: string, pid: number): boolean {
    const t = this.tracked.get(name);
    if (t && t.pid === pid) return processStart(pid) === t.start;
    this.forget(name);
    const start = processStart(pid);
    if (start === undefined) return false;
    const entry: Tracked = { pid, start, fsw: undefined };
    this.tracked.set(name, entry);
    const events = cgroupEvents(pid);
    if (events) {
      try {
        const fsw = fs.watch(events, { persistent: false }, () => {
          if (this.tracked.get(name) !== entry || processStart(pid) === start) return;
          this.forget(name);
          this.exited(name);
        });
        fsw.on('error', () => fsw.close());
        entry.fsw = fsw;
      } catch {
        // not watchable: the other events only
      }
    }
    return true;
  }

  /** Check every tracked guest now (at any event); calls `exited` for the ones gone. */
  check(): void {
    for (const [name, t] of [...this.tracked]) {
      if (processStart(t.pid) === t.start) continue;
      this.forget(name);
      this.exited(name);
    }
  }

  /** Whether the cgroup of the guest's process is watched (tests, status). */
  watchesCgroup(name: string): boolean {
    return this.tracked.get(name)?.fsw !== undefined;
  }

  forget(name: string): void {
    this.tracked.get(name)?.fsw?.close();
    this.tracked.delete(name);
  }

  close(): void {
    for (const name of [...this.tracked.keys()]) this.forget(name);
  }
}
