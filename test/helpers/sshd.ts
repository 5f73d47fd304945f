// Shared by the tests and the bench that run a real sshd (test/integration/sshd.test.ts,
// bench/sshd.ts): a place sshd accepts for commands and key files, and a free loopback port.
import fs from 'node:fs';
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
