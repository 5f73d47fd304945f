// src/time.ts: isoTime is Date#toISOString to the character, without it.
import test from 'ava';
import fc from 'fast-check';
import { isoTime, monotonicMs } from '../src/time.js';

const MAX = 8.64e15; // the largest time value a Date holds

test('isoTime equals Date#toISOString over the whole range of dates, and for the edges', (t) => {
  const edges = [0, -1, 1, MAX, -MAX, Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1), Date.UTC(0, 0, 1) - 1, Date.UTC(-1, 0, 1), 951782400000, Date.now()];
  for (const ms of edges) t.is(isoTime(ms), new Date(ms).toISOString(), String(ms));
  fc.assert(
    fc.property(fc.integer({ min: -MAX, max: MAX }), (ms) => isoTime(new Date(ms)) === new Date(ms).toISOString()),
    { numRuns: 20000 },
  );
});

test('isoTime refuses an invalid date as Date#toISOString does', (t) => {
  t.throws(() => isoTime(new Date(NaN)), { instanceOf: RangeError });
  t.throws(() => new Date(NaN).toISOString(), { instanceOf: RangeError });
});

test('monotonicMs is process.hrtime in milliseconds, never going back', (t) => {
  const before = Number(process.hrtime.bigint()) / 1e6;
  const a = monotonicMs();
  const b = monotonicMs();
  const after = Number(process.hrtime.bigint()) / 1e6;
  t.true(before <= a && a <= b && b <= after);
});
