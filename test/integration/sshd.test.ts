// OpenSSH's sshd, on a loopback port, takes its keys from `sliceid authorized-keys %u`: the key
// the test wrote into the accounts file lets root in, another key is refused.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { copyTree, ownFixtures, projectDir } from '../helpers/fixtures.js';
import { startDaemon, until, cliPath } from '../helpers/daemon.js';

/** A directory whose every ancestor is root-owned and not group- or world-writable. */
function safeParent(): string {
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

function ssh(key: string, port: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('ssh', [
      '-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR',
      'root@127.0.0.1', 'echo sliceid-login-ok',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

test('sshd AuthorizedKeysCommand `sliceid authorized-keys %u` admits the cached key and refuses another', async (t) => {
  t.is(process.getuid?.(), 0, 'this test runs sshd and logs in as root: run the tests as root (CI does)');
  const root = copyTree(path.join(ownFixtures, 'emulab-pnode'));
  // sshd insists that the command and every directory above it are root-owned and not writable
  // by group or others: a checkout under /tmp will not do, so pick a place that qualifies.
  const work = fs.mkdtempSync(path.join(safeParent(), 'sliceid-sshd-'));
  fs.chmodSync(work, 0o755);
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  for (const name of ['good', 'other']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', path.join(work, name)]);
  }
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'host_key')]);
  const command = path.join(work, 'authorized-keys');
  fs.writeFileSync(command, `#!/bin/sh\nexec '${process.execPath}' '${cliPath}' authorized-keys "$1" --root '${root}'\n`, { mode: 0o755 });
  fs.chmodSync(command, 0o755);

  const pub = fs.readFileSync(path.join(work, 'good.pub'), 'utf8').trim();
  fs.appendFileSync(path.join(root, 'var/emulab/boot/tmcc/accounts'), `PUBKEY LOGIN=root KEY="${pub}"\n`);
  const d = await startDaemon(root);
  t.teardown(() => d.stop());
  const keys = execFileSync(process.execPath, [cliPath, 'authorized-keys', 'root', '--root', root], { encoding: 'utf8' });
  t.is(keys.trim(), pub);

  const port = await freePort();
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = path.join(work, 'sshd_config');
  fs.writeFileSync(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(work, 'host_key')}`, `PidFile ${path.join(work, 'sshd.pid')}`,
    'AuthorizedKeysFile none', `AuthorizedKeysCommand ${command} %u`, 'AuthorizedKeysCommandUser root',
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', '',
  ].join('\n'));
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let sshdLog = '';
  sshd.stderr.on('data', (b: Buffer) => (sshdLog += b.toString()));
  t.teardown(() => void sshd.kill('SIGTERM'));
  await until(() => canConnect(port), 10000, 'sshd to listen');

  const good = await ssh(path.join(work, 'good'), port);
  t.is(good.code, 0, `${good.out}\n${sshdLog}`);
  t.regex(good.out, /sliceid-login-ok/);
  const other = await ssh(path.join(work, 'other'), port);
  t.not(other.code, 0);
  t.notRegex(other.out, /sliceid-login-ok/);
});
