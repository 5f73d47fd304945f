import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, ensureDir, readIfExists } from '../../src/fs/atomic.js';
import { writePidFile, livePid, removePidFile } from '../../src/fs/pidfile.js';
import { tempDir } from '../helpers/fixtures.js';

test('writeFileAtomic writes with the mode, skips identical content, leaves no temp files', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'slicename');
  t.true(writeFileAtomic(file, 'a_b', 0o644));
  t.is(fs.readFileSync(file, 'utf8'), 'a_b');
  t.is(fs.statSync(file).mode & 0o777, 0o644);
  const mtime = fs.statSync(file).mtimeMs;
  t.false(writeFileAtomic(file, 'a_b', 0o644));
  t.is(fs.statSync(file).mtimeMs, mtime);
  t.true(writeFileAtomic(file, 'a_b', 0o600));
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  t.deepEqual(fs.readdirSync(dir), ['slicename']);
});

test('a failed write leaves the previous file in place', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'node.gid');
  writeFileAtomic(file, 'old', 0o644);
  fs.chmodSync(dir, 0o500);
  try {
    if (process.getuid?.() === 0) {
      // root ignores directory modes: make the rename fail instead by putting a directory in the way.
      fs.chmodSync(dir, 0o755);
      const blocked = path.join(dir, 'blocked');
      fs.mkdirSync(path.join(blocked, 'x'), { recursive: true });
      t.throws(() => writeFileAtomic(blocked, 'new', 0o644));
    } else {
      t.throws(() => writeFileAtomic(file, 'new', 0o644));
    }
  } finally {
    fs.chmodSync(dir, 0o755);
  }
  t.is(fs.readFileSync(file, 'utf8'), 'old');
  t.false(fs.readdirSync(dir).some((f) => f.endsWith('.tmp')));
});

test('ensureDir forces the mode on an existing directory; readIfExists tells missing from present', (t) => {
  const dir = path.join(tempDir(), 'state');
  fs.mkdirSync(dir, { mode: 0o755 });
  ensureDir(dir, 0o700);
  t.is(fs.statSync(dir).mode & 0o777, 0o700);
  t.is(readIfExists(path.join(dir, 'nope')), undefined);
});

test('pidfile: written, found alive, removed only by its owner', (t) => {
  const file = path.join(tempDir(), 'run', 'sliceid.pid');
  writePidFile(file);
  t.is(livePid(file), process.pid);
  removePidFile(file, process.pid + 1);
  t.true(fs.existsSync(file));
  removePidFile(file);
  t.false(fs.existsSync(file));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '999999999\n');
  t.is(livePid(file), undefined);
  fs.writeFileSync(file, 'garbage');
  t.is(livePid(file), undefined);
});
