// The shrink guard. A key file caught half-written at a line boundary parses as complete but
// holds fewer users or keys. Emulab's updater rewrites its files in well under a second, so a
// source that would lose users or keys is applied only once the very same content has been read
// again after a settle time; until then the last good data keeps being served.
import crypto from 'node:crypto';
import type { SourceResult } from '../keys/types.js';
import type { SourceState } from '../store/types.js';

export const SHRINK_SETTLE_MS = 2000;

interface Pending {
  readonly digest: string;
  readonly since: number;
}

export type ShrinkVerdict =
  | { readonly apply: true }
  | { readonly apply: false; readonly confirmInMs: number; readonly reason: string };

function digestOf(result: SourceResult): string {
  const h = crypto.createHash('sha256');
  for (const u of result.users) {
    h.update(`${u.login}\0${u.uid ?? ''}\0`);
    for (const k of u.keys) h.update(`${k.text}\n`);
  }
  return h.digest('base64');
}

export class ShrinkGuard {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly settleMs = SHRINK_SETTLE_MS) {}

  /** Decide whether `result` may replace what `cached` (its current state, if any) holds. */
  check(result: SourceResult, cached: SourceState | undefined, now = Date.now()): ShrinkVerdict {
    const keys = result.users.reduce((n, u) => n + u.keys.length, 0);
    const shrinks = result.status === 'ok' && cached?.lastGood !== undefined && (keys < cached.keys || result.users.length < cached.users);
    if (!shrinks) {
      this.pending.delete(result.id);
      return { apply: true };
    }
    const digest = digestOf(result);
    const seen = this.pending.get(result.id);
    if (seen && seen.digest === digest && now - seen.since >= this.settleMs) {
      this.pending.delete(result.id);
      return { apply: true };
    }
    const since = seen && seen.digest === digest ? seen.since : now;
    this.pending.set(result.id, { digest, since });
    return {
      apply: false,
      confirmInMs: Math.max(1, since + this.settleMs - now),
      reason: `would drop to ${result.users.length} users and ${keys} keys (from ${cached!.users} and ${cached!.keys}); applied only if unchanged after ${this.settleMs} ms`,
    };
  }
}
