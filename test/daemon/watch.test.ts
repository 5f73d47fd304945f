import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startWatcher } from '../../src/daemon/watch.js';
import { silentLogger } from '../../src/log.js';
import { tempDir } from '../helpers/fixtures.js';

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

test("a user's .ssh is watched for authorized_keys only: other names and symlinks out are neither followed nor reported", async (t) => {
  const root = tempDir();
  const ssh = path.join(root, 'home/u/.ssh');
  const outside = path.join(root, 'rootonly');
  fs.mkdirSync(ssh, { recursive: true });
  fs.mkdirSync(outside, { mode: 0o700 });
  const file = path.join(ssh, 'authorized_keys');
  fs.writeFileSync(file, '');
  const events: string[] = [];
  const w = startWatcher([], (event, f) => events.push(`${event} ${f}`), silentLogger, [file]);
  t.teardown(() => w.close());
  await w.ready;
  fs.symlinkSync(outside, path.join(ssh, 'root'));
  fs.writeFileSync(path.join(ssh, 'SECRET-NAME'), 'x');
  fs.writeFileSync(path.join(outside, 'ROOT-FILE'), 'x');
  fs.appendFileSync(file, 'k\n');
  t.true(await until(() => events.some((e) => e.endsWith(file)), 5000), events.join('\n'));
  // Anything else would have arrived with (or before) it; give a straggler the same chance: a
  // second change of the file (write until seen).
  const seen = events.length;
  let got = false;
  for (let i = 0; i < 10 && !got; i++) {
    fs.appendFileSync(file, 'k\n');
    got = await until(() => events.slice(seen).some((e) => e.endsWith(file)), 500);
  }
  t.true(got, events.join('\n'));
  t.deepEqual(events.filter((e) => !e.endsWith(file)), []);
});

/** inotify watches the process holds (one "inotify wd:" line per watch in fdinfo). */
export function inotifyWatches(pid: number | 'self' = 'self'): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      n += fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

test('a directory tree at ~/.ssh/authorized_keys costs no watch: two watches per user, whatever is in the home', async (t) => {
  const root = tempDir();
  const ssh = path.join(root, 'home/u/.ssh');
  const file = path.join(ssh, 'authorized_keys');
  for (let d = 0; d < 20; d++) {
    const dir = path.join(file, `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(dir, `f${f}`), '');
  }
  const before = inotifyWatches();
  const events: string[] = [];
  const w = startWatcher([], (event, f) => events.push(`${event} ${f}`), silentLogger, [file]);
  t.teardown(() => w.close());
  t.is(w.userWatchCount(), 2, 'the home (for .ssh) and .ssh (for authorized_keys)');
  t.true(inotifyWatches() - before <= 2, `${inotifyWatches() - before} inotify watches added`);
  fs.writeFileSync(path.join(file, 'd0', 'f0'), 'x');
  fs.mkdirSync(path.join(file, 'd0', 'new'));
  // The tree goes, a file comes in its place: that is an event of the name.
  fs.rmSync(file, { recursive: true });
  fs.writeFileSync(file, 'k\n');
  t.true(await until(() => events.some((e) => e.endsWith(file)), 5000), events.join('\n'));
  t.deepEqual(events.filter((e) => !e.endsWith(file)), [], 'nothing inside the tree was reported');
});

test('symbolic links are never followed: ~/.ssh/authorized_keys -> a busy directory fires nothing; ~/.ssh -> a directory is not watched', async (t) => {
  const root = tempDir();
  const home = path.join(root, 'home/u');
  const ssh = path.join(home, '.ssh');
  const file = path.join(ssh, 'authorized_keys');
  const logdir = path.join(root, 'var/log');
  fs.mkdirSync(ssh, { recursive: true });
  fs.mkdirSync(logdir, { recursive: true });
  fs.symlinkSync(logdir, file);
  const events: string[] = [];
  const w = startWatcher([], (event, f) => events.push(`${event} ${f}`), silentLogger, [file]);
  t.teardown(() => w.close());
  for (let i = 0; i < 50; i++) fs.appendFileSync(path.join(logdir, 'sliceid.log'), 'a log line\n');
  // ~/.ssh itself becomes a link to the log directory: seen (from the home), but not entered.
  fs.renameSync(ssh, path.join(home, '.ssh.old'));
  fs.symlinkSync(logdir, ssh);
  t.true(await until(() => events.some((e) => e.endsWith(ssh)), 5000), events.join('\n'));
  t.is(w.userWatchCount(), 1, 'only the home is watched');
  const seen = events.length;
  for (let i = 0; i < 50; i++) fs.appendFileSync(path.join(logdir, 'sliceid.log'), 'a log line\n');
  fs.writeFileSync(path.join(logdir, 'authorized_keys'), 'k\n');
  // ~/.ssh made a real directory again: watched again, and its authorized_keys is reported.
  fs.unlinkSync(ssh);
  fs.mkdirSync(ssh);
  t.true(await until(() => w.userWatchCount() === 2, 5000));
  fs.writeFileSync(file, 'k\n');
  t.true(await until(() => events.some((e) => e.endsWith(file)), 5000), events.join('\n'));
  t.deepEqual(
    events.slice(seen).filter((e) => !e.endsWith(file) && !e.endsWith(ssh)),
    [],
    'nothing in the log directory was reported',
  );
  t.false(events.some((e) => e.includes('var/log')));
});

test('~/.ssh replaced by rename (Emulab: .ssh.new -> .ssh) is watched afresh; a home made later is watched once it exists', async (t) => {
  const root = tempDir();
  const home = path.join(root, 'users/u');
  const ssh = path.join(home, '.ssh');
  const file = path.join(ssh, 'authorized_keys');
  const later = path.join(root, 'users/v/.ssh/authorized_keys');
  fs.mkdirSync(ssh, { recursive: true });
  const events: string[] = [];
  const w = startWatcher([], (event, f) => events.push(`${event} ${f}`), silentLogger, [file, later]);
  t.teardown(() => w.close());
  t.is(w.userWatchCount(), 3, "u's home and .ssh, and /users for v's home");
  fs.mkdirSync(path.join(home, '.ssh.new'));
  fs.renameSync(ssh, path.join(home, '.ssh.old'));
  fs.renameSync(path.join(home, '.ssh.new'), ssh);
  t.true(await until(() => events.some((e) => e.endsWith(ssh)), 5000));
  fs.writeFileSync(path.join(home, '.ssh.old', 'authorized_keys'), 'old\n');
  fs.writeFileSync(file, 'k\n');
  t.true(await until(() => events.some((e) => e.endsWith(file)), 5000), events.join('\n'));
  fs.mkdirSync(path.dirname(later), { recursive: true });
  t.true(await until(() => w.userWatchCount() === 4, 5000), `${w.userWatchCount()}`);
  // mkdir -p made v's home and .ssh in a row: .ssh may have come before its watch; plan again on the next event.
  fs.writeFileSync(later, 'k\n');
  await until(() => events.some((e) => e.endsWith(later)), 3000);
  w.setPaths([], [file]);
  t.is(w.userWatchCount(), 2, 'a user no longer served is no longer watched');
});
