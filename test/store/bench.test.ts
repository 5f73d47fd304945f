// Measurement: an accounts file of 10,000 users with 3 keys each (realistic lines, distinct ed25519
// keys made from random bytes), read + parsed + applied, then served. The figures are logged (CPU
// time, as other processes on a busy machine do not count, with wall time beside); the speed is
// judged by the benchmark (bench/, the 10,000-user refresh), here only that the cost grows
// linearly: the same run with 1,000 users is the reference.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { readAccounts } from '../../src/keys/accounts.js';
import { openKeyCache } from '../../src/store/cache.js';
import { tempDir } from '../helpers/fixtures.js';
import { randomEd25519 } from '../keys/keygen.js';

const KEYS = 3;

function measure<T>(fn: () => T): { value: T; cpuMs: number; wallMs: number } {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const value = fn();
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { value, cpuMs: (used.user + used.system) / 1000, wallMs };
}

const fmt = (m: { cpuMs: number; wallMs: number }): string => `${m.cpuMs.toFixed(0)} ms CPU / ${m.wallMs.toFixed(0)} ms wall`;

interface Run {
  size: number;
  parse: Measured;
  apply: Measured;
  first: Measured;
  memo: Measured;
  users: Measured;
  same: Measured;
  changed: Measured;
  after: Measured;
}
type Measured = { cpuMs: number; wallMs: number };

function run(t: ExecutionContext, count: number): Run {
  const dir = tempDir();
  const file = path.join(dir, 'accounts');
  const lines: string[] = ['ADDGROUP NAME=bigproj GID=6005'];
  for (let i = 0; i < count; i++) {
    lines.push(
      `ADDUSER LOGIN=user${i} PSWD=* UID=${20000 + i} GID=6005 ROOT=0 NAME="User Number ${i}" HOMEDIR=/users/user${i} GLIST="" SERIAL=${1500000000 + i} EMAIL="user${i}@example.edu" SHELL=bash`,
    );
  }
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < KEYS; k++) lines.push(`PUBKEY LOGIN=user${i} KEY="${randomEd25519(`user${i}@host-${k}.example.edu`)}"`);
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const size = fs.statSync(file).size;

  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir, { mode: 0o700 });
  const cache = openKeyCache(path.join(stateDir, 'cache.db'));

  const parse = measure(() => readAccounts(file));
  t.is(parse.value.status, 'ok');
  t.is(parse.value.users.length, count);
  const apply = measure(() => cache.applySource(parse.value));
  t.true(apply.value.changed);
  const first = measure(() => cache.sliceKeys());
  t.is(first.value.length, count * KEYS);
  const memo = measure(() => {
    let same = true;
    for (let i = 0; i < 10_000; i++) same &&= cache.sliceKeys() === first.value;
    return same;
  });
  t.true(memo.value);
  const users = measure(() => cache.users());
  t.is(users.value.length, count);

  // The same file again (an inotify event that changed nothing): parsed, compared, not rewritten.
  const same = measure(() => cache.applySource(readAccounts(file)));
  t.false(same.value.changed);
  // One key replaced: the whole source is replaced in one transaction.
  lines[lines.length - 1] = `PUBKEY LOGIN=user${count - 1} KEY="${randomEd25519('new@key')}"`;
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const changed = measure(() => cache.applySource(readAccounts(file)));
  t.true(changed.value.changed);
  const after = measure(() => cache.sliceKeys());
  t.true(after.value[after.value.length - 1]!.endsWith('new@key'));
  cache.close();

  return { size, parse, apply, first, memo, users, same, changed, after };
}

test('10,000 users x 3 keys: parse + apply, sliceKeys, unchanged and changed refreshes; cost linear in the users', (t) => {
  const small = run(t, 1_000);
  const r = run(t, 10_000);
  t.log(`accounts file: ${(r.size / 1024 / 1024).toFixed(1)} MiB, 10000 users, ${10_000 * KEYS} keys`);
  t.log(`read + parse:                ${fmt(r.parse)}`);
  t.log(`apply (first, 30k inserts):  ${fmt(r.apply)}`);
  t.log(`sliceKeys() first:           ${fmt(r.first)}`);
  t.log(`sliceKeys() memoized:        ${((r.memo.wallMs * 1000) / 10_000).toFixed(2)} us per call (mean of 10,000)`);
  t.log(`users() first:               ${fmt(r.users)}`);
  t.log(`refresh, unchanged file:     ${fmt(r.same)}`);
  t.log(`refresh, one key changed:    ${fmt(r.changed)} (+ sliceKeys ${fmt(r.after)})`);
  // Ten times the users: linear is 10x the CPU; a cost quadratic in the users would be 100x.
  const cpu = (m: Run): [number, number] => [m.parse.cpuMs + m.apply.cpuMs + m.first.cpuMs, m.changed.cpuMs + m.after.cpuMs];
  const [firstRatio, changedRatio] = cpu(r).map((v, i) => v / cpu(small)[i]!) as [number, number];
  t.log(`against 1,000 users: first refresh ${firstRatio.toFixed(1)}x, changed refresh ${changedRatio.toFixed(1)}x the CPU`);
  t.true(firstRatio < 25, `first refresh ${firstRatio.toFixed(1)}x`);
  t.true(changedRatio < 25, `changed refresh ${changedRatio.toFixed(1)}x`);
});
