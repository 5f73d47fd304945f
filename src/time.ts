// Time helpers that keep node's and V8's heavier machinery out of the daemon's start:
// - the `performance` global loads node's perf_hooks modules on first use (~0.8 MB resident, ~2 ms);
// - Date#toISOString (and JSON.stringify of a Date) on a current date pages in ~0.6 MB of ICU's
//   time-zone data, even in UTC, where the UTC getters do not (bench/README.md).

/** A monotonic clock in milliseconds (fractional), for durations only. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Exactly what Date#toISOString gives (RangeError for an invalid date), from the UTC getters. */
export function isoTime(date: Date | number): string {
  const d = typeof date === 'number' ? new Date(date) : date;
  if (Number.isNaN(d.getTime())) throw new RangeError('Invalid time value');
  const y = d.getUTCFullYear();
  const year = y >= 0 && y <= 9999 ? pad(y, 4) : `${y < 0 ? '-' : '+'}${pad(Math.abs(y), 6)}`;
  return (
    `${year}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}Z`
  );
}
