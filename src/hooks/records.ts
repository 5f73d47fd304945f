// What the hooks did, per slice and hook (JSON in the state directory, written atomically, only by
// the holder of the runner lock, src/hooks/lock.ts): a run is recorded as "running" (with its
// runner's pid) before it starts and with its outcome after it ends. A restart runs nothing again;
// a changed hook (content hash), a new slice or a failed run runs again. A "running" record whose
// runner is gone (killed, the machine reset) is a run that vanished: it may have done part of its
// work, so it is reported and never rerun by itself (`sliceid hooks run --again` does).
import { readIfExists, writeFileAtomic } from '../fs/atomic.js';

export type HookOutcome = 'ok' | 'failed' | 'timed-out' | 'interrupted' | 'error' | 'running' | 'vanished';

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
  /** For 'error' (could not start), 'timed-out' and 'vanished': what happened. */
  readonly detail?: string;
  /** The runner's pid ('running', 'vanished'). */
  readonly runner?: number;
}

/** Outcomes that never run again by themselves: done, or perhaps half done. */
const SETTLED: ReadonlySet<HookOutcome> = new Set(['ok', 'running', 'vanished']);

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
  if (!last) return true;
  // A run that vanished (or is running) is never started again by itself, even when changed since.
  if (last.outcome === 'running' || last.outcome === 'vanished') return false;
  return !SETTLED.has(last.outcome) || last.hash !== hook.hash;
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


/**
 * The runner lock's new holder: every "running" record is a run whose runner is gone (it held the
 * lock until it died). Each becomes "vanished"; returns the (slice, hook) pairs changed.
 */
export function markVanished(file: string, now = Date.now()): Array<{ slicename: string; hook: string; runner: number | undefined }> {
  const records = readHookRecords(file);
  const changed: Array<{ slicename: string; hook: string; runner: number | undefined }> = [];
  const slices: Record<string, SliceRuns> = {};
  for (const [urn, slice] of Object.entries(records.slices)) {
    const hooks: Record<string, HookRun> = {};
    for (const [name, run] of Object.entries(slice.hooks)) {
      if (run.outcome !== 'running') {
        hooks[name] = run;
        continue;
      }
      changed.push({ slicename: slice.slicename, hook: name, runner: run.runner });
      hooks[name] = {
        ...run,
        outcome: 'vanished',
        durationMs: Math.max(0, now - run.at),
        detail: `its runner${run.runner ? ` (pid ${run.runner})` : ''} ended while it ran; it may have done part of its work; not run again by itself`,
      };
    }
    slices[urn] = { slicename: slice.slicename, hooks };
  }
  if (changed.length) writeFileAtomic(file, `${JSON.stringify({ slices }, null, 1)}\n`, 0o600);
  return changed;
}

/** `sliceid hooks run --again`: forget the vanished runs of `sliceUrn` so that they run again. */
export function forgetVanished(file: string, sliceUrn: string): string[] {
  const records = readHookRecords(file);
  const slice = records.slices[sliceUrn];
  if (!slice) return [];
  const names = Object.entries(slice.hooks).filter(([, r]) => r.outcome === 'vanished').map(([n]) => n);
  if (!names.length) return [];
  const hooks = Object.fromEntries(Object.entries(slice.hooks).filter(([n]) => !names.includes(n)));
  writeFileAtomic(file, `${JSON.stringify({ slices: { ...records.slices, [sliceUrn]: { ...slice, hooks } } }, null, 1)}\n`, 0o600);
  return names;
}
