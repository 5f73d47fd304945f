// Logging never stops the service (issue 25, point 7): with stdout on a full device or a closed
// pipe, the daemon drops the lines it cannot write, counts them (status), and the API answers.
import test from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { copyTree, ownFixtures, tempDir } from '../helpers/fixtures.js';
import { cliPath, getSshKeys, runCli, until } from '../helpers/daemon.js';

const pnode = path.join(ownFixtures, 'emulab-pnode');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const alive = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

async function stop(p: ChildProcess): Promise<void> {
  if (!alive(p)) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await gone;
}

test.serial('stdout on a full device: lines dropped and counted, the daemon starts, serves and refreshes', async (t) => {
  if (process.getuid?.() !== 0) return t.pass('needs root (tmpfs mount)');
  const mnt = tempDir('sliceid-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  t.teardown(() => void execFileSync('umount', ['-l', mnt]));
  // Fill it: the log file is then appended to a device with no room (as a full /var would be).
  const log = path.join(mnt, 'sliceid.log');
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'fill')}`, 'bs=4k'], { stdio: 'ignore' });
  } catch {
    // ENOSPC: full, as wanted
  }
  const fd = fs.openSync(log, 'a');
  t.throws(() => fs.writeSync(fd, 'x'.repeat(8192)), { code: 'ENOSPC' }, 'the device is full');
  const root = copyTree(pnode);
  const port = await freePort();
  const d = spawn(process.execPath, [cliPath, 'run', '--root', root, '--port', String(port)], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  t.teardown(() => stop(d));
  const ready = await runCli(['wait', '--root', root, '--timeout', '30']);
  t.is(ready.code, 0, ready.stderr);
  t.deepEqual(Object.keys(await getSshKeys(port)), ['wlab_radio'], 'the API answers');
  // A refresh logs more; the daemon goes on.
  t.is((await runCli(['refresh', '--root', root])).code, 0);
  const status = await until(async () => {
    const s = await runCli(['status', '--root', root]);
    return /log: \d+ line\(s\) dropped, the log destination failed \(ENOSPC/.test(s.stdout) ? s : undefined;
  }, 15_000, 'status to report the dropped lines');
  t.log(status.stdout.split('\n').find((l) => l.includes('dropped')));
  t.true(alive(d), 'the daemon is running');
  t.deepEqual(Object.keys(await getSshKeys(port)), ['wlab_radio'], 'the API still answers');
});

test.serial('stdout a pipe whose reader has gone (EPIPE): the daemon goes on serving', async (t) => {
  const root = copyTree(pnode);
  const port = await freePort();
  const d = spawn(process.execPath, [cliPath, 'run', '--root', root, '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => stop(d));
  await new Promise<void>((resolve) => {
    const rl = readline.createInterface({ input: d.stdout! });
    rl.on('line', (l) => {
      if (l.includes('"msg":"ready"')) {
        rl.close();
        resolve();
      }
    });
  });
  // The reader goes away: every later write is EPIPE (Node ignores SIGPIPE).
  d.stdout!.destroy();
  t.is((await runCli(['refresh', '--root', root])).code, 0);
  const status = await until(async () => {
    const s = await runCli(['status', '--root', root]);
    return /log: \d+ line\(s\) dropped, the log destination failed \(EPIPE/.test(s.stdout) ? s : undefined;
  }, 15_000, 'status to report the dropped lines');
  t.log(status.stdout.split('\n').find((l) => l.includes('dropped')));
  t.true(alive(d));
  t.deepEqual(Object.keys(await getSshKeys(port)), ['wlab_radio']);
  // And it still stops cleanly on SIGTERM.
  const code = new Promise<number | null>((r) => d.once('exit', (c) => r(c)));
  d.kill('SIGTERM');
  t.is(await code, 0);
});

test.serial('--log-format journal: plain lines with priority prefixes; a bad value is a usage error', async (t) => {
  const bad = await runCli(['run', '--root', tempDir(), '--log-format', 'xml']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--log-format xml: must be one of auto, json, journal/);
  const root = copyTree(pnode);
  const d = spawn(process.execPath, [cliPath, 'run', '--root', root, '--port', '0', '--log-format', 'journal'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => stop(d));
  const seen: string[] = [];
  const readyLine = await new Promise<string>((resolve) => {
    readline.createInterface({ input: d.stdout! }).on('line', (l) => {
      seen.push(l);
      if (/^<6>ready port=\d+ /.test(l)) resolve(l);
    });
  });
  t.regex(readyLine, /slicename=wlab_radio keys=3/);
  t.true(seen.every((l) => /^<[2-7]>\S/.test(l)), seen.join('\n'));
});
