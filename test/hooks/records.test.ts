import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { MAX_SLICES, forgetVanished, markVanished, needsRun, readHookRecords, recordHookRun, type HookRun } from '../../src/hooks/records.js';
import { hookProblems } from '../../src/hooks/report.js';
import { tempDir } from '../helpers/fixtures.js';

const SLICE = { urn: 'urn:publicid:IDN+emulab.net:p+slice+s', slicename: 'p_s' };
const run = (outcome: HookRun['outcome'], hash = 'h1', at = 1000): HookRun => ({ hash, outcome, at, durationMs: 5, ...(outcome === 'failed' ? { exitCode: 3 } : {}) });

test('a hook runs when it never ran, failed, or changed, and not after a good run of the same content', (t) => {
  const file = path.join(tempDir(), 'hooks.json');
  const hook = { name: '10-a', hash: 'h1' };
  t.true(needsRun(readHookRecords(file), SLICE.urn, hook));
  recordHookRun(file, SLICE, hook.name, run('failed'));
  t.true(needsRun(readHookRecords(file), SLICE.urn, hook));
  recordHookRun(file, SLICE, hook.name, run('ok'));
  t.false(needsRun(readHookRecords(file), SLICE.urn, hook));
  t.true(needsRun(readHookRecords(file), SLICE.urn, { ...hook, hash: 'h2' }), 'changed content');
  t.true(needsRun(readHookRecords(file), 'urn:publicid:IDN+emulab.net:p+slice+other', hook), 'another slice');
  for (const outcome of ['timed-out', 'interrupted', 'error'] as const) {
    recordHookRun(file, SLICE, hook.name, run(outcome));
    t.true(needsRun(readHookRecords(file), SLICE.urn, hook), outcome);
  }
});

test('records are written atomically, 0600, kept per slice and hook; the oldest slices are dropped', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'hooks.json');
  recordHookRun(file, SLICE, '10-a', run('ok'));
  recordHookRun(file, SLICE, '20-b', run('failed'));
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  t.deepEqual(fs.readdirSync(dir), ['hooks.json']);
  const records = readHookRecords(file);
  t.deepEqual(Object.keys(records.slices[SLICE.urn]!.hooks), ['10-a', '20-b']);
  t.is(records.slices[SLICE.urn]!.slicename, 'p_s');
  for (let i = 0; i < MAX_SLICES + 3; i++) recordHookRun(file, { urn: `urn:x:${i}`, slicename: `s${i}` }, '10-a', run('ok', 'h1', 2000 + i));
  const kept = Object.keys(readHookRecords(file).slices);
  t.is(kept.length, MAX_SLICES);
  t.false(kept.includes(SLICE.urn));
  t.true(kept.includes(`urn:x:${MAX_SLICES + 2}`));
});

test('an unreadable records file means every hook runs again', (t) => {
  const file = path.join(tempDir(), 'hooks.json');
  fs.writeFileSync(file, '{"slices": {"urn');
  t.deepEqual(readHookRecords(file), { slices: {} });
  t.true(needsRun(readHookRecords(file), SLICE.urn, { name: 'a', hash: 'h' }));
});

test('status problems: refused hooks, and failed runs of present hooks of the current slice only', (t) => {
  const file = path.join(tempDir(), 'hooks.json');
  recordHookRun(file, SLICE, '10-a', run('failed', 'h1'));
  recordHookRun(file, SLICE, '20-gone', run('failed'));
  recordHookRun(file, SLICE, '30-ok', run('ok'));
  recordHookRun(file, { urn: 'urn:other', slicename: 'o' }, '30-ok', run('failed'));
  const report = {
    set: {
      dir: '/d',
      hooks: [{ name: '10-a', path: '/d/10-a', hash: 'h2' }, { name: '30-ok', path: '/d/30-ok', hash: 'h1' }],
      refused: [{ name: '40-gw', path: '/d/40-gw', reason: '/d/40-gw is group-writable (mode 0775)' }],
      skipped: [],
    },
    records: readHookRecords(file),
    runner: { held: false, pid: undefined },
  };
  const problems = hookProblems(report, SLICE.urn);
  t.is(problems.length, 2);
  t.is(problems[0], 'hook 40-gw refused: /d/40-gw is group-writable (mode 0775)');
  t.regex(problems[1]!, /^hook 10-a failed, exit 3 for p_s at 1970-01-01T00:00:01.000Z \(changed since\); it runs again/);
  t.deepEqual(hookProblems(report, undefined), [problems[0]]);
});

test('running then vanished: never rerun by itself; marked vanished by the next runner; --again forgets it', (t) => {
  const file = path.join(tempDir(), 'hooks.json');
  recordHookRun(file, SLICE, '10-a', { hash: 'h1', outcome: 'running', at: 1000, durationMs: 0, runner: 4242 });
  t.false(needsRun(readHookRecords(file), SLICE.urn, { name: '10-a', hash: 'h1' }), 'a running record is not started again');
  t.false(needsRun(readHookRecords(file), SLICE.urn, { name: '10-a', hash: 'h2' }), 'not even when changed');
  const marked = markVanished(file, 5000);
  t.deepEqual(marked, [{ slicename: 'p_s', hook: '10-a', runner: 4242 }]);
  const run = readHookRecords(file).slices[SLICE.urn]!.hooks['10-a']!;
  t.like(run, { outcome: 'vanished', runner: 4242, durationMs: 4000 });
  t.false(needsRun(readHookRecords(file), SLICE.urn, { name: '10-a', hash: 'h1' }));
  t.deepEqual(markVanished(file), [], 'once');
  t.deepEqual(forgetVanished(file, SLICE.urn), ['10-a']);
  t.true(needsRun(readHookRecords(file), SLICE.urn, { name: '10-a', hash: 'h1' }));
});
