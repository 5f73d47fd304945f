import test from 'ava';
import { collectGarbage } from '../../src/daemon/gc.js';

test('collectGarbage frees what is no longer reachable, without exposing gc() to the program', (t) => {
  let junk: string[][] | undefined = Array.from({ length: 2000 }, (_, i) => Array.from({ length: 50 }, (_, j) => `${i}:${j}:${'x'.repeat(20)}`));
  t.is(junk.length, 2000);
  junk = undefined;
  t.true(collectGarbage() > 1_000_000);
  t.is(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  t.true(collectGarbage() >= 0);
});
