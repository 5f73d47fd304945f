// What `sliceid hooks` lists and what `status` counts as problems: the hooks found (and refused),
// and per slice each hook's last run.
import { loadConfig } from '../config.js';
import type { NodePaths } from '../paths.js';
import { discoverHooks, type HookSet } from './discover.js';
import { needsRun, readHookRecords, type HookRecords, type HookRun } from './records.js';
import { isoTime } from '../time.js';
import type { LockState } from '../fs/lock.js';
import { hooksRunner } from './lock.js';

export interface HookReport {
  readonly set: HookSet;
  /** The records as they are true now: a "running" run whose runner is gone shows as vanished. */
  readonly records: HookRecords;
  /** The runner lock (src/hooks/lock.ts): whether a runner is at work, its pid. */
  readonly runner: LockState;
}

export function hookReport(dir: string, recordsFile: string, runner: LockState): HookReport {
  const read = readHookRecords(recordsFile);
  const slices: HookRecords['slices'] = {};
  for (const [urn, slice] of Object.entries(read.slices)) {
    const hooks: Record<string, HookRun> = {};
    for (const [name, run] of Object.entries(slice.hooks)) {
      const gone = run.outcome === 'running' && !(runner.held && (runner.pid === undefined || runner.pid === run.runner));
      hooks[name] = gone ? { ...run, outcome: 'vanished', detail: `its runner${run.runner ? ` (pid ${run.runner})` : ''} ended while it ran; it may have done part of its work; not run again by itself` } : run;
    }
    slices[urn] = { slicename: slice.slicename, hooks };
  }
  return { set: discoverHooks(dir), records: { slices }, runner };
}

/** e.g. "failed, exit 3" or "timed-out, SIGTERM" */
export function describeRun(run: HookRun): string {
  if (run.outcome === 'running') return `running, runner pid ${run.runner ?? 'unknown'}`;
  const how = run.exitCode !== undefined ? `exit ${run.exitCode}` : run.signal ? run.signal : '';
  return [run.outcome, how, run.detail].filter(Boolean).join(', ');
}

/**
 * Problems for `status`: refused hooks, and hooks of the current slice whose last run did not
 * succeed (hooks that no longer exist are not counted).
 */
export function hookProblems(report: HookReport, sliceUrn: string | undefined): string[] {
  const problems = report.set.refused.map((r) => (r.name === '*' ? `slice hooks refused: ${r.reason}` : `hook ${r.name} refused: ${r.reason}`));
  const runs = sliceUrn ? report.records.slices[sliceUrn] : undefined;
  for (const hook of report.set.hooks) {
    const run = runs?.hooks[hook.name];
    if (!run || run.outcome === 'ok' || run.outcome === 'running') continue;
    if (run.outcome === 'vanished') {
      problems.push(`hook ${hook.name} vanished for ${runs!.slicename} (started ${isoTime(run.at)}): ${run.detail ?? 'its runner ended while it ran'}; check what it did, then "sliceid hooks run --again"`);
      continue;
    }
    const changed = run.hash !== hook.hash ? ' (changed since)' : '';
    problems.push(
      `hook ${hook.name} ${describeRun(run)} for ${runs!.slicename} at ${isoTime(run.at)}${changed}; it runs again at the next start or with "sliceid hooks run"`,
    );
  }
  return problems;
}

/** Hooks of `sliceUrn` that the daemon would run now (never ran, failed or changed). */
export function pendingHooks(report: HookReport, sliceUrn: string): string[] {
  return report.set.hooks.filter((h) => needsRun(report.records, sliceUrn, h)).map((h) => h.name);
}

/**
 * `status`'s hook problems on this node: the hooks directory the node's config names (the
 * default when it names none, or cannot be read: the daemon does not start with such a config).
 */
export function nodeHookProblems(paths: NodePaths, sliceUrn: string | undefined): string[] {
  let dir = paths.hooksDir;
  try {
    dir = loadConfig(paths).config.hooks.dir ?? dir;
  } catch {
    // Unreadable config: the default directory (the daemon does not start with such a config).
  }
  return hookProblems(hookReport(dir, paths.hookRecords, hooksRunner(paths.stateDir)), sliceUrn);
}
