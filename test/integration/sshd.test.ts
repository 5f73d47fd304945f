// OpenSSH's sshd, on a loopback port, takes its keys from sliceid: from the key files the daemon
// keeps (AuthorizedKeysFile, StrictModes on), also while the daemon is stopped, following the
// accounts file; and from `sliceid authorized-keys %u` and /usr/lib/sliceid/libexec/authorized-keys
// (AuthorizedKeysCommand).
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { copyTree, ownFixtures, projectDir } from '../helpers/fixtures.js';
import { freePort, loginUser, safeParent } from '../helpers/sshd.js';
import { startDaemon, until, cliPath } from '../helpers/daemon.js';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

function ssh(key: string, port: number, login: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('ssh', [
      '-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR',
      `${login}@127.0.0.1`, 'echo sliceid-login-ok',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

test.serial('sshd AuthorizedKeysCommand (daemon stopped), `sliceid authorized-keys %u` and libexec/authorized-keys (#! node): the key of the key file is admitted, another refused', async (t) => {
  t.is(process.getuid?.(), 0, 'this test runs sshd and adds a local account: run the tests as root (CI does)');
  const root = copyTree(path.join(ownFixtures, 'emulab-pnode'));
  const user = loginUser();
  // sshd insists that the command and every directory above it are root-owned and not writable
  // by group or others: a checkout under /tmp will not do, so pick a place that qualifies.
  const work = fs.mkdtempSync(path.join(safeParent(), 'sliceid-sshd-'));
  fs.chmodSync(work, 0o755);
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  for (const name of ['good', 'other']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', path.join(work, name)]);
  }
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'host_key')]);
  // The CLI (as /usr/bin/sliceid runs it), and the executable the package installs for sshd.
  const viaCli = path.join(work, 'authorized-keys');
  fs.writeFileSync(viaCli, `#!/bin/sh\nexec '${process.execPath}' '${cliPath}' authorized-keys "$1" --root '${root}'\n`, { mode: 0o755 });
  fs.chmodSync(viaCli, 0o755);
  execFileSync('sh', [path.join(projectDir, 'packaging', 'authorized-keys-command.sh'), process.execPath, path.join(work, 'libexec')]);
  const commands = [`${viaCli} %u`, `${path.join(work, 'libexec', 'authorized-keys')} %u --root ${root}`];

  const pub = fs.readFileSync(path.join(work, 'good.pub'), 'utf8').trim();
  fs.appendFileSync(path.join(root, 'var/emulab/boot/tmcc/accounts'), `${user.addUser}\nPUBKEY LOGIN=${user.login} KEY="${pub}"\n`);
  const d = await startDaemon(root);
  t.teardown(() => d.stop());
  const keys = execFileSync(process.execPath, [cliPath, 'authorized-keys', user.login, '--root', root], { encoding: 'utf8' });
  t.is(keys.trim(), pub);
  await d.stop();

  for (const command of commands) {
    const sshd = await startSshd(t, work, ['AuthorizedKeysFile none', `AuthorizedKeysCommand ${command}`, 'AuthorizedKeysCommandUser root', 'StrictModes no']);
    const good = await ssh(path.join(work, 'good'), sshd.port, user.login);
    t.is(good.code, 0, `${command}: ${good.out}\n${sshd.log()}`);
    t.regex(good.out, /sliceid-login-ok/, command);
    const other = await ssh(path.join(work, 'other'), sshd.port, user.login);
    t.not(other.code, 0, command);
    t.notRegex(other.out, /sliceid-login-ok/, command);
    sshd.stop();
  }
});

/** sshd on a free loopback port with `config` lines; resolves once it listens. */
async function startSshd(t: { teardown(fn: () => void): void }, work: string, lines: string[]): Promise<{ port: number; log: () => string; stop: () => void }> {
  const port = await freePort();
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = path.join(work, `sshd_config.${port}`);
  fs.writeFileSync(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(work, 'host_key')}`, `PidFile ${path.join(work, `sshd.${port}.pid`)}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', ...lines, '',
  ].join('\n'));
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  sshd.stderr.on('data', (b: Buffer) => (log += b.toString()));
  t.teardown(() => void sshd.kill('SIGTERM'));
  await until(() => canConnect(port), 10000, 'sshd to listen');
  return { port, log: () => log, stop: () => void sshd.kill('SIGTERM') };
}

test.serial('sshd AuthorizedKeysFile reads the key files (StrictModes on): with the daemon stopped, a key added, a key removed', async (t) => {
  t.is(process.getuid?.(), 0, 'this test runs sshd and adds a local account: run the tests as root (CI does)');
  const user = loginUser();
  // sshd checks every directory above the key file: the node tree lives where all are root-owned.
  const work = fs.mkdtempSync(path.join(safeParent(), 'sliceid-sshd-'));
  fs.chmodSync(work, 0o755);
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  const root = path.join(work, 'node');
  fs.cpSync(path.join(ownFixtures, 'emulab-pnode'), root, { recursive: true, filter: (src) => path.basename(src) !== 'expected.json' });
  fs.chmodSync(root, 0o755);
  for (const name of ['first', 'second', 'stranger']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', path.join(work, name)]);
  }
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'host_key')]);
  const pub = (name: string): string => fs.readFileSync(path.join(work, `${name}.pub`), 'utf8').trim();
  const accounts = path.join(root, 'var/emulab/boot/tmcc/accounts');
  const original = fs.readFileSync(accounts, 'utf8');
  fs.writeFileSync(accounts, `${original}${user.addUser}\nPUBKEY LOGIN=${user.login} KEY="${pub('first')}"\n`);
  const keyFile = path.join(root, 'etc/sliceid/authorized_keys', user.login);

  // The daemon writes the file, then stops: sshd reads the file on its own.
  let d = await startDaemon(root);
  t.teardown(() => d.stop());
  t.is(fs.readFileSync(keyFile, 'utf8'), `${pub('first')}\n`);
  await d.stop();
  const { port, log } = await startSshd(t, work, [`AuthorizedKeysFile ${path.join(root, 'etc/sliceid/authorized_keys')}/%u`, 'StrictModes yes']);
  const login = (name: string): Promise<{ code: number | null; out: string }> => ssh(path.join(work, name), port, user.login);
  const first = await login('first');
  t.is(first.code, 0, `${first.out}\n${log()}`);
  t.regex(first.out, /sliceid-login-ok/);
  t.not((await login('second')).code, 0);
  t.not((await login('stranger')).code, 0);

  // A key added to the accounts file works within a second. On a machine whose cores are
  // oversubscribed (this suite shares 2 cores with other suites and builds) the second is
  // stretched by the run queue per core, twice over: the load average lags behind a burst.
  d = await startDaemon(root);
  const budget = Math.round(1000 * Math.max(1, (2 * os.loadavg()[0]!) / os.cpus().length));
  const added = Date.now();
  fs.appendFileSync(accounts, `PUBKEY LOGIN=${user.login} KEY="${pub('second')}"\n`);
  await until(() => fs.readFileSync(keyFile, 'utf8').includes(pub('second')), budget, `the added key in the key file within ${budget} ms`, 10);
  t.log(`added key in the key file after ${Date.now() - added} ms (budget ${budget} ms)`);
  const second = await login('second');
  t.is(second.code, 0, `${second.out}\n${log()}`);

  // A key the accounts file drops stops working once the removal has settled (shrink guard).
  fs.writeFileSync(accounts, `${original}${user.addUser}\nPUBKEY LOGIN=${user.login} KEY="${pub('second')}"\n`);
  await until(() => !fs.readFileSync(keyFile, 'utf8').includes(pub('first')), 15000, 'the dropped key to leave the key file');
  t.not((await login('first')).code, 0);
  t.is((await login('second')).code, 0);
  await d.stop();
  const mode = (p: string): number => fs.statSync(p).mode & 0o777;
  t.deepEqual([mode(keyFile), mode(path.dirname(keyFile)), mode(path.dirname(path.dirname(keyFile)))], [0o644, 0o755, 0o755]);
});
