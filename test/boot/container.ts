// A Debian root booted under a real systemd with systemd-nspawn, for the package boot tests.
// The cached debootstrap root (test/boot/debian-root.sh) is the read-only lower layer of an
// overlay mount, so each container starts from a clean copy in milliseconds. The host has no
// systemd or D-Bus: nspawn runs with --register=no --keep-unit, commands enter the container
// with nsenter on its systemd's PID, and it is stopped with `systemctl --no-block poweroff`.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/fixtures.js';

const execFileP = promisify(execFile);

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<Run> {
  try {
    const child = execFileP(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      maxBuffer: 256 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 120_000,
    });
    if (opts.input !== undefined) child.child.stdin!.end(opts.input);
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** Poll `fn` until it returns a truthy value or the deadline passes. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const mounted = new Set<string>();
process.once('exit', () => {
  for (const m of mounted) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
});

/** Parent pid and comm of every process, from /proc. */
function processTable(): Map<number, { ppid: number; comm: string }> {
  const table = new Map<number, { ppid: number; comm: string }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      table.set(Number(entry), { ppid, comm });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** The pid (host view) of the container's PID 1: a descendant of nspawn that is pid 1 in its namespace. */
function containerInit(nspawnPid: number): number | undefined {
  const table = processTable();
  for (const [pid] of table) {
    let p: number | undefined = pid;
    let inside = false;
    for (let hops = 0; p && hops < 4; hops++) {
      p = table.get(p)?.ppid;
      if (p === nspawnPid) inside = true;
    }
    // PID 1 of the new namespace, once it has become systemd (nspawn sets the namespaces up first).
    if (!inside || table.get(pid)?.comm !== 'systemd') continue;
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (nspid && nspid.length > 1 && nspid.at(-1) === '1') return pid;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

/** The cgroups this process is in (cgroup v2, or v1's named systemd hierarchy and v2 beside it), as directories. */
function ownCgroupDirs(): string[] {
  const dirs: string[] = [];
  // Hybrid hierarchy: v2 is mounted at /sys/fs/cgroup/unified; pure v2: at /sys/fs/cgroup.
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean)) {
    const [, controllers, rel] = line.split(':') as [string, string, string];
    if (controllers === '') dirs.push(path.join(v2, rel));
    else if (controllers === 'name=systemd') dirs.push(path.join('/sys/fs/cgroup/systemd', rel));
  }
  return dirs.filter((d) => fs.existsSync(d));
}

/** nspawn --keep-unit leaves empty payload/supervisor cgroups behind: remove them (deepest first). */
export function cleanCgroups(): void {
  for (const dir of ownCgroupDirs()) {
    for (const name of ['payload', 'supervisor']) {
      const top = path.join(dir, name);
      if (!fs.existsSync(top)) continue;
      const all: string[] = [];
      const walk = (d: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
        all.push(d);
      };
      walk(top);
      for (const d of all) {
        try {
          fs.rmdirSync(d);
        } catch {
          // not empty (a process still in it) or already gone
        }
      }
    }
  }
}

export class Container {
  /** The container's root directory (the overlay mount) as the host sees it. */
  readonly root: string;
  private proc: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private console = '';
  /** The container's systemd, host pid. */
  pid = 0;

  private constructor(root: string) {
    this.root = root;
  }

  /** A fresh writable copy of `base` (overlay: base stays untouched). */
  static async create(base: string): Promise<Container> {
    const dir = tempDir('sliceid-boot-');
    for (const d of ['upper', 'work', 'root']) fs.mkdirSync(path.join(dir, d));
    const root = path.join(dir, 'root');
    await must('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base},upperdir=${dir}/upper,workdir=${dir}/work`, root]);
    mounted.add(root);
    return new Container(root);
  }

  /** Boot; resolves once systemd reports the boot finished (running or degraded). */
  async boot(hostname: string): Promise<string> {
    this.console = '';
    const proc = spawn(
      'systemd-nspawn',
      ['-D', this.root, '-b', '--console=pipe', '--register=no', '--keep-unit', '--private-network', `--hostname=${hostname}`],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' } },
    );
    this.proc = proc;
    process.once('exit', () => proc.kill('SIGKILL'));
    const keep = (d: Buffer): void => {
      this.console = (this.console + d.toString()).slice(-20_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    let gone = false;
    void this.exited.then(() => (gone = true));
    this.pid = await until(() => {
      if (gone) throw new Error(`systemd-nspawn exited during boot:\n${this.console}`);
      return containerInit(proc.pid!);
    }, 60_000, 'the container systemd');
    // Until systemd's private socket is up, systemctl cannot connect and prints nothing; then
    // --wait blocks until the boot is over.
    return until(async () => {
      if (gone) throw new Error(`systemd-nspawn exited during boot:\n${this.console}`);
      const state = (await this.exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: 120_000 })).stdout.trim();
      return ['running', 'degraded', 'maintenance'].includes(state) ? state : '';
    }, 120_000, 'the end of the container boot');
  }

  /** Run a command inside (all of the container's namespaces, its root). */
  exec(args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<Run> {
    if (!this.pid) throw new Error('container not running');
    return run('nsenter', ['-t', String(this.pid), '-a', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', ...args], opts);
  }

  async mustExec(args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
    const r = await this.exec(args, opts);
    if (r.code !== 0) throw new Error(`in container: ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
    return r.stdout;
  }

  /** A path inside the running container, through its root as /proc shows it (sees its /run, /tmp). */
  inside(p: string): string {
    return path.join(`/proc/${this.pid}/root`, p);
  }

  /** Clean shutdown: systemctl --no-block poweroff, then wait for nspawn to exit. */
  async poweroff(): Promise<number | null> {
    if (!this.proc || !this.exited) return null;
    await this.exec(['systemctl', '--no-block', 'poweroff']);
    const code = await Promise.race([this.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 90_000).unref())]);
    if (code === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.exited;
      throw new Error(`the container did not power off within 90 s:\n${this.console.slice(-3000)}`);
    }
    this.proc = undefined;
    this.pid = 0;
    cleanCgroups();
    return code;
  }

  get consoleTail(): string {
    return this.console.slice(-4000);
  }

  /** Unmount the overlay (after poweroff). */
  async dispose(): Promise<void> {
    if (this.proc) {
      this.proc.kill('SIGKILL');
      await this.exited;
      cleanCgroups();
    }
    await run('umount', [this.root]);
    mounted.delete(this.root);
  }
}
