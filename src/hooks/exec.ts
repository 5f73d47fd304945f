// `sliceid hooks exec`: the hooks runner, outside the daemon's sandbox and process group (the
// sliceid-hooks.service unit under systemd, a detached session under SysV init). It takes the
// runner lock (one pass at a time; a second runner leaves at once, its request kept for the
// holder), marks the runs a dead runner left as vanished, and runs passes for the slice the daemon
// serves (from its cache) while requests come.
import type { Logger } from '../log.js';
import type { NodePaths } from '../paths.js';
import type { Config } from '../config.js';
import { openExistingCache, cachedIdentity } from '../commands/cache-read.js';
import { META_API } from '../daemon/refresh.js';
import type { ApiAddress } from '../api/server.js';
import { hookContext } from './context.js';
import { acquireHooksLock, hooksRequested, takeHooksRequest } from './lock.js';
import { markVanished } from './records.js';
import { runPass } from './pass.js';
import type { RunningHook } from './runner.js';
import type { HookContext } from './runner.js';

/** The served slice's hook context from the daemon's cache, or undefined (no slice yet). */
export function servedContext(paths: NodePaths): HookContext | undefined {
  const cache = openExistingCache(paths);
  if (!cache) return undefined;
  try {
    const identity = cachedIdentity(cache).identity?.identity;
    if (!identity) return undefined;
    const raw = cache.getMeta(META_API);
    const addresses = raw ? (JSON.parse(raw) as ApiAddress[]) : [];
    return hookContext(identity, addresses);
  } finally {
    cache.close();
  }
}

/** What a runner works on: the node's hooks, or a shared host's hooks for one guest. */
export interface RunnerTarget {
  /** The hooks directory (always the host's or node's own). */
  readonly dir: string;
  /** Where the runner lock and the request mark are. */
  readonly stateDir: string;
  readonly recordsFile: string;
  /** Before each pass: the context, or why nothing runs now (logged). */
  readonly context: () => HookContext | string;
  /** Before each hook: why the pass must stop now (a guest gone), else undefined. */
  readonly check?: () => string | undefined;
}

/** Exit status: 0 (passes run, or another runner holds the lock and has the request). */
export async function execHooks(paths: NodePaths, config: Config, logger: Logger): Promise<number> {
  return execPasses(
    {
      dir: config.hooks.dir ?? paths.hooksDir,
      stateDir: paths.stateDir,
      recordsFile: paths.hookRecords,
      context: () => servedContext(paths) ?? 'no slice is served yet; nothing run',
    },
    config.hooks.timeout * 1000,
    logger,
  );
}

export async function execPasses(target: RunnerTarget, timeoutMs: number, logger: Logger): Promise<number> {
  const { dir, stateDir, recordsFile } = target;
  let current: RunningHook | undefined;
  let stopping = false;
  let gone: string | undefined;
  const onTerm = (): void => {
    stopping = true;
    current?.abort();
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  try {
    for (;;) {
      const attempt = acquireHooksLock(stateDir);
      if (!('lock' in attempt)) {
        logger.info({ runner: attempt.heldBy }, 'slice hooks: another runner is at work; it takes the request');
        return 0;
      }
      try {
        for (const v of markVanished(recordsFile)) {
          logger.error(
            { hook: v.hook, slicename: v.slicename, runner: v.runner },
            `hook ${v.hook} vanished: its runner ended while it ran; it is not run again by itself ("sliceid hooks run --again" does)`,
          );
        }
        while (!stopping) {
          takeHooksRequest(stateDir);
          const ctx = target.context();
          if (typeof ctx === 'string') {
            logger.warn(`slice hooks: ${ctx}`);
            break;
          }
          const result = await runPass(
            { dir, recordsFile, timeoutMs, logger, interrupted: () => stopping || hooksRequested(stateDir) || (gone = target.check?.()) !== undefined, current: (h) => (current = h) },
            ctx,
          );
          if (gone !== undefined) {
            logger.warn(`slice hooks: ${gone}`);
            break;
          }
          if (!result.cut) {
            const { cut: _cut, ...counts } = result;
            logger[counts.hooks || counts.refused ? 'info' : 'debug']({ slicename: ctx.slicename, ...counts }, 'hooks done');
          }
          if (!hooksRequested(stateDir)) break;
        }
      } finally {
        attempt.lock.release();
      }
      // A request left after the last look, while the lock was still held: look again.
      if (stopping || !hooksRequested(stateDir)) return 0;
    }
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
  }
}
