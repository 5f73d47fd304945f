// Guests for tests: a chroot holding busybox and a fixture tree only, in its own network, UTS and
// mount namespaces (unshare), loopback up, a tmpfs /tmp of its own.
import fs from 'node:fs';
import { openSockets } from '../../src/host/run.js';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';

export const FIXTURES = path.resolve('test/fixtures');

export interface TestGuest {
  readonly dir: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  kill(): Promise<void>;
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A guest tree: the fixture copied, busybox, an empty /tmp. */
export function guestTree(fixture: string, base = fs.mkdtempSync(path.join(os.tmpdir(), 'guest-'))): string {
  const dir = path.join(base, 'root');
  fs.cpSync(path.join(FIXTURES, fixture), dir, { recursive: true });
  fs.rmSync(path.join(dir, 'expected.json'), { force: true });
  fs.rmSync(path.join(dir, 'usr'), { recursive: true, force: true }); // no geni-get: nothing of the guest is run anyway
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.copyFileSync('/usr/bin/busybox', path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  return dir;
}

/**
 * Start the guest's process: own net/UTS/mount namespaces, lo up, tmpfs /tmp, chroot, sleep.
 * rootAfterS: the process stays that long in the host's root first (as a container's first process
 * does before it enters its own).
 */
export async function startGuest(dir: string, opts: { netns?: string; hostname?: string; rootAfterS?: number } = {}): Promise<TestGuest> {
  const wait = opts.rootAfterS ? `sleep ${opts.rootAfterS} && ` : '';
  const script = `ip link set lo up && hostname ${opts.hostname ?? 'guest'} && mount -t tmpfs -o mode=1777 tmpfs '${dir}/tmp' && ${wait}exec chroot '${dir}' /bin/busybox sleep 1000000`;
  const args = opts.netns ? ['netns', 'exec', opts.netns, 'unshare', '-u', '-m', 'sh', '-c', script] : ['-n', '-u', '-m', 'sh', '-c', script];
  const proc = spawn(opts.netns ? 'ip' : 'unshare', args, { stdio: 'ignore' });
  const pid = proc.pid!;
  await waitFor('the guest to start', () => {
    try {
      return fs.readlinkSync(`/proc/${pid}/root`) === dir;
    } catch {
      return false;
    }
  });
  return {
    dir,
    pid,
    proc,
    kill: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    },
  };
}

/** Run python3 inside the guest's network namespace (the host's python: the guest has none). */
export function pyInGuest(pid: number, code: string, args: string[] = []): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'python3', '-c', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

export const XMLRPC_KEYS = `
import sys, xmlrpc.client, json
p = xmlrpc.client.ServerProxy(sys.argv[1])
print(json.dumps({"keys": p.GetSSHKeys(), "xids": p.GetXIDs(), "record": p.GetRecord()}))
`;

export const RAW_HTTP10 = `
import socket, sys
body = b"<?xml version='1.0'?><methodCall><methodName>GetSSHKeys</methodName><params></params></methodCall>"
s = socket.create_connection(("127.0.0.1", 812), timeout=10)
s.sendall(b"POST / HTTP/1.0\\r\\nContent-Type: text/xml\\r\\nContent-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
sys.stdout.write(out.decode())
`;

/** The live processes whose parent is this test worker: "pid cmdline" each. */
export function childProcesses(): string[] {
  const out: string[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== process.pid || state === 'Z') continue;
      out.push(`${p} ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\u0000').join(' ').trim()}`);
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * What would keep this worker from exiting once its tests are done: child processes still alive
 * and sockets or servers still open (a closed listener takes a moment to go: waited for up to
 * `ms`). Each is named; the processes left are killed so that the worker can exit and the run
 * reports the leak.
 */
export async function leftovers(ms = 5000): Promise<string[]> {
  const look = (): { procs: string[]; handles: string[] } => ({
    // tsx's esbuild service is the worker's own.
    procs: childProcesses().filter((p) => !/\/esbuild --service/.test(p)),
    handles: openSockets(),
  });
  let seen = look();
  const end = Date.now() + ms;
  while ((seen.procs.length || seen.handles.length) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    seen = look();
  }
  for (const line of seen.procs) {
    try {
      process.kill(Number(line.split(' ')[0]), 'SIGKILL');
    } catch {
      // gone
    }
  }
  return [...seen.procs.map((p) => `process ${p}`), ...seen.handles];
}
