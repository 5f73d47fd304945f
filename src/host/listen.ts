// Listeners made inside a guest and handed to the one daemon: no process stays per guest.
// TCP: a short-lived child of the host's own node (never anything from the guest), started by
// nsenter with only the guest's network namespace entered, binds 127.0.0.1:812 (and [::1]:812
// where the guest has IPv6 loopback) and passes the listening sockets to the daemon over the IPC
// channel (child_process handle passing), then exits. A connection the child accepted before it
// closed its copy is passed over too, so none is lost in the hand-over.
// Unix socket: bound by the daemon itself in the guest's /tmp, reached through guest-fs (a
// path-named Unix socket is not tied to a network namespace).
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import crypto from 'node:crypto';
import type { GuestFs } from './guest-fs.js';

const CHILD = `
const net = require('net');
const want = JSON.parse(process.env.SLICEID_LISTEN);
let left = want.length;
const done = () => { if (--left === 0) process.disconnect(); };
want.forEach((a, i) => {
  const s = net.createServer({ pauseOnConnect: true });
  s.on('connection', (c) => process.send({ type: 'conn', i }, c));
  s.once('error', (e) => { process.send({ type: 'error', i, code: e.code || String(e) }); done(); });
  s.listen({ host: a.host, port: a.port, exclusive: true }, () => {
    process.send({ type: 'server', i }, s, () => { s.close(); done(); });
  });
});
`;

export interface Handed {
  readonly host: string;
  readonly port: number;
  readonly server: net.Server;
  /**
   * The connections the handed server accepted since it arrived (held, never dropped), and stop
   * holding: call it in the same turn as the one that attaches the real 'connection' listener.
   */
  release(): net.Socket[];
}

export interface HandOver {
  readonly servers: Handed[];
  /** Per address that could not be bound: "127.0.0.1:812: EADDRINUSE". */
  readonly problems: string[];
}

/**
 * Bind `addrs` inside the network namespace `nsPath` (/proc/PID/ns/net or /var/run/netns/NAME).
 * `onStray`: a connection the child accepted before handing over (serve it like the others).
 */
export function listenInNetns(
  nsPath: string,
  addrs: ReadonlyArray<{ host: string; port: number }>,
  onStray: (host: string, socket: net.Socket) => void,
  timeoutMs = 10_000,
): Promise<HandOver> {
  return new Promise((resolve) => {
    const servers: Handed[] = [];
    const problems: string[] = [];
    let settled = false;
    const child = spawn('nsenter', [`--net=${nsPath}`, '--', process.execPath, '-e', CHILD], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SLICEID_LISTEN: JSON.stringify(addrs) },
      serialization: 'json',
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 2000) stderr += d.toString();
    });
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ servers, problems });
    };
    const timer = setTimeout(() => {
      problems.push(`the listener hand-over did not finish within ${timeoutMs} ms`);
      child.kill('SIGKILL');
      finish();
    }, timeoutMs);
    child.on('message', (msg: { type: string; i: number; code?: string }, handle?: net.Server | net.Socket) => {
      const a = addrs[msg.i];
      if (!a) return;
      const label = a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
      // After the time limit nobody takes what still arrives: closed, never left listening.
      if (settled) {
        if (handle instanceof net.Server) handle.close();
        else if (handle instanceof net.Socket) handle.destroy();
        return;
      }
      if (msg.type === 'server' && handle instanceof net.Server) {
        // Listening in this process from now on: hold what it accepts until it is adopted.
        const early: net.Socket[] = [];
        const hold = (s: net.Socket): void => void early.push(s);
        handle.on('connection', hold);
        const release = (): net.Socket[] => {
          handle.off('connection', hold);
          return early.splice(0);
        };
        servers.push({ host: a.host, port: a.port, server: handle, release });
      }
      else if (msg.type === 'conn' && handle instanceof net.Socket) onStray(a.host, handle);
      else if (msg.type === 'error') {
        // No IPv6 loopback in the guest: nothing to serve there, not a problem.
        if (a.host.includes(':') && (msg.code === 'EADDRNOTAVAIL' || msg.code === 'EAFNOSUPPORT')) return;
        problems.push(`${label}: ${msg.code === 'EADDRINUSE' ? 'held by another process in the guest (EADDRINUSE)' : msg.code}`);
      }
    });
    child.on('error', (err) => {
      problems.push(`nsenter could not be started: ${err.message}`);
      finish();
    });
    // 'close', not 'exit': the child may exit before this side has read all it sent (a server
    // handed after 'exit' was never adopted nor closed: a stopped host daemon kept listening).
    // 'close' comes once the IPC channel and stderr are closed too, every message handled.
    child.on('close', (code) => {
      if (code !== 0 && servers.length === 0 && problems.length === 0) problems.push(`entering the guest's network namespace failed: ${stderr.trim().split('\n')[0] ?? `exit ${code}`}`);
      finish();
    });
  });
}

/**
 * Bind the NodeManager Unix socket at `guestPath` in the guest's tree: bound under a temp name in
 * the resolved directory (mode 0666 through the umask, never a chmod that could follow a link)
 * and renamed over what is there. Returns the listening server and a note on what it replaced.
 */
export async function listenUnixInGuest(gfs: GuestFs, guestPath: string): Promise<{ server: net.Server; note: string | undefined }> {
  const dirPath = guestPath.slice(0, guestPath.lastIndexOf('/')) || '/';
  const name = guestPath.slice(guestPath.lastIndexOf('/') + 1);
  const server = net.createServer({ pauseOnConnect: false });
  let note: string | undefined;
  const listening = new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  gfs.withDir(dirPath, false, (dir) => {
    const temp = `${dir}/.${name}.${crypto.randomBytes(6).toString('hex')}`;
    const old = process.umask(0);
    try {
      server.listen(temp); // binds synchronously, inside the held directory
    } finally {
      process.umask(old);
    }
    try {
      const st = fs.lstatSync(`${dir}/${name}`);
      if (!st.isSocket()) note = `${guestPath} was a ${st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file'}`;
    } catch {
      // nothing there
    }
    try {
      fs.renameSync(temp, `${dir}/${name}`);
    } catch (err) {
      server.close();
      fs.rmSync(temp, { force: true });
      throw new Error(`${guestPath} (in the guest) cannot be taken: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}${note ? ` (${note})` : ''}`);
    }
  });
  await listening;
  return { server, note };
}
