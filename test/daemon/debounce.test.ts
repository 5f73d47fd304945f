import test from 'ava';
import { debounce } from '../../src/daemon/debounce.js';
import { RefreshQueue } from '../../src/daemon/queue.js';

test('debounce coalesces a burst into one call carrying its reasons', async (t) => {
  const calls: string[][] = [];
  let done!: () => void;
  const fired = new Promise<void>((r) => (done = r));
  const d = debounce((reasons) => {
    calls.push(reasons);
    done();
  }, 30, 1000);
  for (let i = 0; i < 10; i++) d.trigger(`e${i}`);
  await fired;
  t.is(calls.length, 1);
  t.deepEqual(calls[0], ['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9']);
});

test('debounce fires no later than maxWait after the first event, even while events keep coming', async (t) => {
  let fired = 0;
  const d = debounce(() => fired++, 50, 120);
  const start = Date.now();
  while (fired === 0 && Date.now() - start < 2000) {
    d.trigger('tick');
    await new Promise((r) => setTimeout(r, 10));
  }
  d.cancel();
  t.is(fired, 1);
  t.true(Date.now() - start < 1000);
});

test('cancel drops pending events', async (t) => {
  let fired = 0;
  const d = debounce(() => fired++, 5, 10);
  d.trigger('x');
  d.cancel();
  await new Promise((r) => setTimeout(r, 30));
  t.is(fired, 0);
});

test('RefreshQueue never overlaps runs and coalesces requests made during a run into one', async (t) => {
  const runs: string[] = [];
  let active = 0;
  let maxActive = 0;
  const q = new RefreshQueue(async (trigger, geniGet) => {
    active++;
    maxActive = Math.max(maxActive, active);
    runs.push(`${trigger}:${geniGet}`);
    await new Promise((r) => setTimeout(r, 20));
    active--;
  }, (err) => t.fail(String(err)));
  const first = q.request('a', false);
  void q.request('b', false);
  void q.request('c', true);
  await first;
  await q.idle();
  t.is(maxActive, 1);
  t.deepEqual(runs, ['a:false', 'b+c:true']);
});

test('RefreshQueue reports a failing run and keeps working', async (t) => {
  const errors: unknown[] = [];
  let n = 0;
  const q = new RefreshQueue(async () => {
    n++;
    if (n === 1) throw new Error('boom');
  }, (err) => errors.push(err));
  await q.request('one', false);
  await q.request('two', false);
  t.is(n, 2);
  t.is(errors.length, 1);
});
