import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { discoverHooks } from '../../src/hooks/discover.js';
import { tempDir } from '../helpers/fixtures.js';
import { writeHook } from './helpers.js';

function hooksDir(): string {
  const dir = path.join(tempDir(), 'slice.d');
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  return dir;
}

test('run-parts rules: letters, digits, - and _ only, executable regular files, byte order', (t) => {
  const dir = hooksDir();
  for (const name of ['50-raven', '10_first', 'B', 'a', '20-two', 'x.sh', 'y~', 'z.rpmsave', '.hidden', 'old.bak']) writeHook(dir, name, 'exit 0');
  writeHook(dir, '30-not-executable', 'exit 0', 0o644);
  fs.mkdirSync(path.join(dir, '40-a-directory'));
  fs.symlinkSync(path.join(dir, 'a'), path.join(dir, '45-link'));
  fs.symlinkSync(path.join(dir, 'missing'), path.join(dir, '46-dangling'));
  const set = discoverHooks(dir);
  t.deepEqual(set.hooks.map((h) => h.name), ['10_first', '20-two', '45-link', '50-raven', 'B', 'a']);
  t.deepEqual(set.refused, []);
  t.deepEqual([...set.skipped].sort(), ['.hidden', '30-not-executable', '40-a-directory', '46-dangling', 'old.bak', 'x.sh', 'y~', 'z.rpmsave'].sort());
  t.regex(set.hooks[0]!.hash, /^[0-9a-f]{64}$/);
});

test('the content hash follows the content', (t) => {
  const dir = hooksDir();
  writeHook(dir, 'h', 'echo one');
  const before = discoverHooks(dir).hooks[0]!.hash;
  t.is(discoverHooks(dir).hooks[0]!.hash, before);
  writeHook(dir, 'h', 'echo two');
  t.not(discoverHooks(dir).hooks[0]!.hash, before);
});

test('a group- or world-writable hook, or one not owned by root, is refused with the reason', (t) => {
  const dir = hooksDir();
  writeHook(dir, '10-ok', 'exit 0');
  writeHook(dir, '20-group', 'exit 0', 0o775);
  writeHook(dir, '30-world', 'exit 0', 0o757);
  const nobody = writeHook(dir, '40-nobody', 'exit 0');
  fs.chownSync(nobody, 65534, 65534);
  const set = discoverHooks(dir);
  t.deepEqual(set.hooks.map((h) => h.name), ['10-ok']);
  t.deepEqual(set.refused.map((r) => r.name), ['20-group', '30-world', '40-nobody']);
  t.regex(set.refused[0]!.reason, /20-group is group-writable \(mode 0775\)/);
  t.regex(set.refused[1]!.reason, /world-writable \(mode 0757\)/);
  t.regex(set.refused[2]!.reason, /owned by uid 65534, not root/);
});

test('a directory that is group-writable or not root-owned runs none of its hooks', (t) => {
  for (const spoil of [(d: string) => fs.chmodSync(d, 0o775), (d: string) => fs.chownSync(d, 65534, 0)]) {
    const dir = hooksDir();
    writeHook(dir, '10-ok', 'exit 0');
    spoil(dir);
    const set = discoverHooks(dir);
    t.deepEqual(set.hooks, []);
    t.is(set.refused.length, 1);
    t.is(set.refused[0]!.name, '*');
    t.regex(set.refused[0]!.reason, /none of its hooks run/);
  }
});

test('no directory: no hooks and no problem', (t) => {
  const set = discoverHooks(path.join(tempDir(), 'absent'));
  t.deepEqual([set.hooks, set.refused, set.skipped], [[], [], []]);
});
