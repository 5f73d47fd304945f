// What the hooks did, per slice and hook (JSON in the state directory, written atomically): a
// restart runs nothing again; a changed hook (content hash), a new slice or a failed run runs again.
import { readIfExists, writeFileAtomic } from '../fs/atomic.js';

export type HookOutcome = 'ok' | 'failed' | 'timed-out' | 'interrupted' | 'error';

export interface HookRun {
  readonly hash: string;
  readonly outcome: HookOutcome;
  /** Exit status when it exited, else undefined. */
  readonly exitCode?: number;
  /** The signal that ended it, when one did. */
  readonly signal?: string;
  /** Start time (ms since the epoch). */
  readonly at: number;
  readonly durationMs: number;
  /** For 'error' (could not start) and 'timed-out': what happened. */
  readonly detail?: string;
}

export interface SliceRuns {
  readonly slicename: string;
  /** hook name -> its last run for this slice. */
  readonly hooks: Record<string, HookRun>;
}

export interface HookRecords {
  /** slice URN -> runs. */
  readonly slices: Record<string, SliceRuns>;
}

/** Records of this many slices are kept (the most recently run); older ones are dropped. */
export const MAX_SLICES = 32;

export function readHookRecords(file: string): HookRecords {
  const text = readIfExists(file)?.toString('utf8');
  if (!text) return { slices: {} };
  try {
    const parsed = JSON.parse(text) as Partial<HookRecords>;
    return parsed && typeof parsed.slices === 'object' && parsed.slices !== null ? { slices: parsed.slices } : { slices: {} };
  } catch {
    // A record we cannot read makes every hook run again: safer than never running one.
    return { slices: {} };
  }
}

/** Whether `hook` (with content `hash`) has to run for `sliceUrn`. */
export function needsRun(records: HookRecords, sliceUrn: string, hook: { name: string; hash: string }): boolean {
  const last = records.slices[sliceUrn]?.hooks[hook.name];
  return !last || last.outcome !== 'ok' || last.hash !== hook.hash;
}

/** Record one run (read, update, write atomically); returns the records written. */
export function recordHookRun(file: string, slice: { urn: string; slicename: string }, hook: string, run: HookRun): HookRecords {
  const records = readHookRecords(file);
  const prev = records.slices[slice.urn];
  const slices: Record<string, SliceRuns> = { ...records.slices, [slice.urn]: { slicename: slice.slicename, hooks: { ...prev?.hooks, [hook]: run } } };
  const latest = (s: SliceRuns): number => Math.max(0, ...Object.values(s.hooks).map((r) => r.at));
  const kept = Object.entries(slices).sort(([, a], [, b]) => latest(b) - latest(a)).slice(0, MAX_SLICES);
  const out: HookRecords = { slices: Object.fromEntries(kept) };
  writeFileAtomic(file, `${JSON.stringify(out, null, 1)}\n`, 0o600);
  return out;
}

