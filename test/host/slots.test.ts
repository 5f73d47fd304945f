// src/host/slots.ts: the host daemon's guests refresh a few at a time.
import test from 'ava';
import { Slots } from '../../src/host/slots.js';

test('at most size tasks run at once; the others start in the order they came, as slots free', async (t) => {
  const slots = new Slots(3);
  let running = 0;
  let most = 0;
  let finished = 0;
  const started: number[] = [];
  const gates: Array<() => void> = [];
  const runs = Array.from({ length: 10 }, (_, i) =>
    slots.run(async () => {
      running++;
      most = Math.max(most, running);
      started.push(i);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      finished++;
      return i * 2;
    }),
  );
  // Open the gates one at a time, each once every task that can run is waiting at its gate.
  for (let opened = 0; opened < 10; opened++) {
    const runnable = Math.min(3, 10 - opened);
    while (finished < opened || gates.length < runnable) await new Promise((r) => setImmediate(r));
    t.is(running, runnable);
    gates.shift()!();
  }
  t.deepEqual(await Promise.all(runs), Array.from({ length: 10 }, (_, i) => i * 2));
  t.is(most, 3);
  t.deepEqual(started, [...Array(10).keys()]);
});

test('a task that throws frees its slot and its caller gets the error', async (t) => {
  const slots = new Slots(1);
  const failed = slots.run(() => Promise.reject(new Error('refresh failed')));
  const next = slots.run(() => Promise.resolve('ran'));
  await t.throwsAsync(failed, { message: 'refresh failed' });
  t.is(await next, 'ran');
  t.is(await slots.run(() => Promise.resolve('and again')), 'and again');
});
