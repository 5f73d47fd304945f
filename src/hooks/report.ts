// What `sliceid hooks` lists and what `status` counts as problems: the hooks found (and refused),
// and per slice each hook's last run.
import { loadConfig } from '../config.js';
import type { NodePaths } from '../paths.js';
import { discoverHooks, type HookSet } from './discover.js';
import { needsRun, readHookRecords, type HookRecords, type HookRun } from './records.js';
import { isoTime } from '../time.js';

export interface HookReport {
  readonly set: HookSet;
  readonly records: HookRecords;
}

export function hookReport(dir: string, recordsFile: string): HookReport {
  return { set: discoverHooks(dir), records: readHookRecords(recordsFile) };
}

/** e.g. "failed, exit 3" or "timed-out, SIGTERM" */
export function describeRun(run: HookRun): string {
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
    if (!run || run.outcome === 'ok') continue;
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
  return hookProblems(hookReport(dir, paths.hookRecords), sliceUrn);
}
