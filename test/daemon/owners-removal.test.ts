// A user-owned source its owner removed becomes a complete, empty read, which the shrink guard then
// applies only once it lasts (issue 25, point 2).
import test from 'ava';
import { ownersRemoval } from '../../src/daemon/refresh.js';
import { ShrinkGuard } from '../../src/daemon/shrink.js';
import type { SourceResult } from '../../src/keys/types.js';
import type { SourceState } from '../../src/store/types.js';

const user = { login: 'erin', uid: 10100, homedir: '/users/erin' };
const removed: SourceResult = {
  id: 'authorized_keys:erin', origin: '/users/erin/.ssh/authorized_keys', status: 'missing', users: [], problems: [],
  reason: '/users/erin/.ssh/authorized_keys does not exist', removedByOwner: { ...user, keys: [] },
};
const cached: SourceState = { id: removed.id, origin: removed.origin, lastStatus: 'ok', lastAttempt: 1, lastGood: 1, stale: false, reason: undefined, users: 1, keys: 2 };

test('applied as "no keys" through the shrink guard, only when it served keys', (t) => {
  const r = ownersRemoval(removed, cached);
  t.is(r.status, 'ok');
  t.deepEqual(r.users, [{ ...user, keys: [] }]);
  const guard = new ShrinkGuard(2000);
  const first = guard.check(r, cached, 1000);
  t.false(first.apply, 'held back at first sight');
  t.true(guard.check(r, cached, 3100).apply, 'applied when still so after the settle time');
  // Nothing cached, or nothing good: left as read (a missing source keeps what it has).
  t.is(ownersRemoval(removed, undefined), removed);
  t.is(ownersRemoval(removed, { ...cached, lastGood: undefined }), removed);
  t.is(ownersRemoval({ ...removed, removedByOwner: undefined }, cached).status, 'missing');
});
