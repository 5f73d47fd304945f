// One hooks pass, in the runner process (src/hooks/exec.ts) that holds the runner lock: the hooks
// of slice.d in order, each that has not run well for the slice; each run recorded as "running"
// (with the runner's pid) before it starts and with its outcome after it ends.
import type { Logger } from '../log.js';
import { discoverHooks } from './discover.js';
import { needsRun, readHookRecords, recordHookRun } from './records.js';
import { runHook, type HookContext, type RunningHook } from './runner.js';

export interface PassOptions {
  readonly dir: string;
  readonly recordsFile: string;
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Checked before each hook: true stops the pass there (a new request, a stop). */
  readonly interrupted?: () => boolean;
  /** Set to the hook running now (the runner aborts it on SIGTERM). */
  readonly current?: (hook: RunningHook | undefined) => void;
}

export interface PassResult {
  readonly hooks: number;
  readonly ran: number;
  readonly failed: number;
  readonly refused: number;
  /** Whether it stopped before the end (interrupted). */
  readonly cut: boolean;
}

export async function runPass(opts: PassOptions, ctx: HookContext): Promise<PassResult> {
  const { logger, dir, recordsFile } = opts;
  const set = discoverHooks(dir);
  for (const r of set.refused) logger.error({ hook: r.name }, `hook refused: ${r.reason}`);
  let ran = 0;
  let failed = 0;
  for (const hook of set.hooks) {
    if (opts.interrupted?.()) return { hooks: set.hooks.length, ran, failed, refused: set.refused.length, cut: true };
    if (!needsRun(readHookRecords(recordsFile), ctx.sliceUrn, hook)) continue;
    const slice = { urn: ctx.sliceUrn, slicename: ctx.slicename };
    // Recorded before it starts: a runner that dies now leaves a run that is seen to have vanished.
    try {
      recordHookRun(recordsFile, slice, hook.name, { hash: hook.hash, outcome: 'running', at: Date.now(), durationMs: 0, runner: process.pid });
    } catch (err) {
      logger.error({ hook: hook.name, err: (err as Error).message }, 'could not record the hook run before it starts: not run');
      failed++;
      continue;
    }
    logger.info({ hook: hook.name, slicename: ctx.slicename }, 'hook start');
    const running = runHook(hook, ctx, { timeoutMs: opts.timeoutMs, logger });
    opts.current?.(running);
    const run = await running.result;
    opts.current?.(undefined);
    ran++;
    if (run.outcome !== 'ok') failed++;
    try {
      recordHookRun(recordsFile, slice, hook.name, run);
    } catch (err) {
      logger.error({ hook: hook.name, err: (err as Error).message }, 'could not record the hook run: it shows as running until a runner marks it vanished');
    }
    const { hash: _hash, ...shown } = run;
    (run.outcome === 'ok' ? logger.info.bind(logger) : logger.error.bind(logger))({ hook: hook.name, slicename: ctx.slicename, ...shown }, 'hook done');
  }
  return { hooks: set.hooks.length, ran, failed, refused: set.refused.length, cut: false };
}
