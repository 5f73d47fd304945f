import test from 'ava';
import { ShrinkGuard } from '../../src/daemon/shrink.js';
import type { SourceResult, SshKey } from '../../src/keys/types.js';
import type { SourceState } from '../../src/store/types.js';

const key = (n: number): SshKey => ({ type: 'ssh-ed25519', blob: `B${n}`, comment: '', text: `ssh-ed25519 B${n}`, fingerprint: `F${n}` });
const result = (keys: number, status: SourceResult['status'] = 'ok'): SourceResult => ({
  id: 'tmcc:accounts',
  origin: 'accounts',
  status,
  users: [{ login: 'ada', keys: Array.from({ length: keys }, (_, i) => key(i)) }],
  problems: [],
});
const cached = (keys: number): SourceState => ({
  id: 'tmcc:accounts', origin: 'accounts', lastStatus: 'ok', lastAttempt: 0, lastGood: 0, stale: false, reason: undefined, users: 1, keys,
});

test('growth and same-size changes apply at once', (t) => {
  const g = new ShrinkGuard(1000);
  t.true(g.check(result(3), cached(2), 0).apply);
  t.true(g.check(result(2), cached(2), 0).apply);
  t.true(g.check(result(1), undefined, 0).apply);
});

test('a shrink applies only when the same content is seen again after the settle time', (t) => {
  const g = new ShrinkGuard(1000);
  const first = g.check(result(1), cached(3), 0);
  t.false(first.apply);
  t.is(first.apply ? 0 : first.confirmInMs, 1000);
  const early = g.check(result(1), cached(3), 500);
  t.false(early.apply);
  t.is(early.apply ? 0 : early.confirmInMs, 500);
  t.true(g.check(result(1), cached(3), 1000).apply);
});

test('a different shrink restarts the clock; a restore cancels it', (t) => {
  const g = new ShrinkGuard(1000);
  t.false(g.check(result(1), cached(3), 0).apply);
  t.false(g.check(result(2), cached(3), 1200).apply);
  t.false(g.check(result(2), cached(3), 2100).apply);
  t.true(g.check(result(2), cached(3), 2200).apply);
  t.false(g.check(result(1), cached(3), 3000).apply);
  t.true(g.check(result(3), cached(3), 3100).apply);
  t.false(g.check(result(1), cached(3), 4500).apply);
});

test('only complete sources are guarded (partial and missing ones are kept by the cache itself)', (t) => {
  const g = new ShrinkGuard(1000);
  t.true(g.check(result(0, 'missing'), cached(3), 0).apply);
  t.true(g.check(result(1, 'partial'), cached(3), 0).apply);
});
