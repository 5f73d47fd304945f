// The instance lock (src/fs/lock.ts): a kernel lock on <state dir>/daemon.lock, its holder's pid
// read from /proc/locks, released when the holder dies however it dies.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { acquireStateLock, daemonPid, lockHolder, LOCK_NAME } from '../../src/fs/lock.js';
import { projectDir, tempDir } from '../helpers/fixtures.js';
import { until } from '../helpers/daemon.js';

test('taken once: a second attempt learns the holder (this process, as the kernel lists it); released, it is free', (t) => {
  const dir = path.join(tempDir(), 'state');
  t.deepEqual(lockHolder(dir), { held: false, pid: undefined }, 'no state directory yet');
  const first = acquireStateLock(dir);
  if (!('lock' in first)) return t.fail('not taken');
  t.is((fs.statSync(dir).mode & 0o777).toString(8), '700');
  t.is(fs.readdirSync(dir).join(), LOCK_NAME, 'the lock file and nothing else');
  t.deepEqual(lockHolder(dir), { held: true, pid: process.pid });
  const second = acquireStateLock(dir);
  t.deepEqual(second, { heldBy: process.pid, file: path.join(dir, LOCK_NAME) });
  first.lock.release();
  t.deepEqual(lockHolder(dir), { held: false, pid: undefined });
  t.is(daemonPid(dir), undefined);
  const again = acquireStateLock(dir);
  t.true('lock' in again);
  if ('lock' in again) again.lock.release();
});

test('a holder killed with SIGKILL leaves the lock free; while it lives, its pid is the answer', async (t) => {
  const dir = path.join(tempDir(), 'state');
  const holder = spawn(
    process.execPath,
    ['--import=tsx', '-e', `const { acquireStateLock } = await import(${JSON.stringify(path.join(projectDir, 'src', 'fs', 'lock.ts'))}); const a = acquireStateLock(${JSON.stringify(dir)}); console.log('lock' in a ? 'held' : 'refused'); setInterval(() => {}, 1000);`],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: projectDir },
  );
  t.teardown(() => holder.kill('SIGKILL'));
  const line = await new Promise<string>((resolve) => readline.createInterface({ input: holder.stdout! }).once('line', resolve));
  t.is(line, 'held');
  t.is(daemonPid(dir), holder.pid);
  const mine = acquireStateLock(dir);
  t.deepEqual(mine, { heldBy: holder.pid, file: path.join(dir, LOCK_NAME) });
  holder.kill('SIGKILL');
  await until(() => lockHolder(dir).held === false, 10_000, 'the lock to be released by the kernel');
  const taken = acquireStateLock(dir);
  t.true('lock' in taken);
  if ('lock' in taken) taken.lock.release();
});

test('without /proc/locks the lock still answers "held" (the database cannot be read), with no pid', (t) => {
  const dir = path.join(tempDir(), 'state');
  const a = acquireStateLock(dir);
  if (!('lock' in a)) return t.fail('not taken');
  // In this process SQLite sees its own exclusive lock as busy, as another process would.
  t.deepEqual(lockHolder(dir, path.join(dir, 'no-such-proc-locks')), { held: true, pid: undefined });
  a.lock.release();
  t.deepEqual(lockHolder(dir, path.join(dir, 'no-such-proc-locks')), { held: false, pid: undefined });
});
