// Shared by the tests and the bench that run a real sshd (test/integration/sshd.test.ts,
// bench/sshd.ts): a place sshd accepts for commands and key files, and a free loopback port.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { projectDir } from './fixtures.js';

/**
 * A directory whose every ancestor is root-owned and not group- or world-writable: sshd refuses
 * an AuthorizedKeysCommand, and with StrictModes a key file, below anything else. A checkout
 * under /tmp will not do.
 */
export function safeParent(): string {
  const safe = (dir: string): boolean => {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      const st = fs.statSync(d);
      if (st.uid !== 0 || (st.mode & 0o022) !== 0) return false;
      if (d === path.dirname(d)) return true;
    }
  };
  const candidates = [path.join(projectDir, '.tmp'), '/run', os.homedir(), '/var/lib'];
  for (const dir of candidates) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      if (safe(dir)) return dir;
    } catch {
      // not usable; try the next
    }
  }
  throw new Error(`no directory fit for sshd's AuthorizedKeysCommand among ${candidates.join(', ')}`);
}

/** A TCP port free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * A local account that logs in through sshd as a slice user does (sliceid gives root and system
 * accounts no keys): made with useradd when missing (uid from 1000 up, home `/`, no password but
 * not locked, which sshd without PAM requires). `addUser`: its tmcc accounts line.
 */
export function loginUser(login = 'sliceid-login'): { login: string; uid: number; gid: number; addUser: string } {
  const id = (flag: string): number => Number(execFileSync('id', [flag, login], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    id('-u');
  } catch {
    execFileSync('useradd', ['--no-create-home', '--home-dir', '/', '--shell', '/bin/sh', login], { stdio: 'ignore' });
  }
  execFileSync('usermod', ['-p', '*', login], { stdio: 'ignore' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid < 1000) throw new Error(`${login} has uid ${uid}, a system account's: sliceid gives it no keys`);
  return { login, uid, gid, addUser: `ADDUSER LOGIN=${login} PSWD=* UID=${uid} GID=${gid} ROOT=0 NAME="${login}" HOMEDIR=/users/${login} GLIST="" SERIAL=1 EMAIL="${login}@test" SHELL=sh` };
}
