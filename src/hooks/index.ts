// The slice hooks as the daemon starts them: once per slice, when the slice's identity is written
// and the API answers. The daemon never runs a hook itself (its sandbox forbids what hooks do,
// and a hook in its cgroup or process group dies with it): it leaves the request mark and starts
// the runner (src/hooks/exec.ts, `sliceid hooks exec`) outside itself: under systemd, the unit
// sliceid-hooks.service (`systemctl start --no-block`), elsewhere a detached process in a session
// of its own whose output goes where the daemon's goes. Stopping, restarting or killing the daemon
// neither stops a running hook nor starts it again. Nothing is armed while idle.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Logger } from '../log.js';
import type { NodePaths } from '../paths.js';
import type { HookRunnerMode } from '../config.js';
import { discoverHooks } from './discover.js';
import { needsRun, readHookRecords } from './records.js';
import { requestHooks } from './lock.js';
import type { HookContext } from './runner.js';

export { hookContext } from './context.js';
export type { HookContext } from './runner.js';

export const HOOKS_UNIT = 'sliceid-hooks.service';

/** Whether this process runs as a systemd service (read at start: notify.ts drops NOTIFY_SOCKET). */
const serviceEnv = Boolean(process.env['INVOCATION_ID'] || process.env['NOTIFY_SOCKET']);
export function underSystemd(): boolean {
  return serviceEnv && fs.existsSync('/run/systemd/system');
}

export interface SliceHooksOptions {
  readonly paths: NodePaths;
  readonly dir: string;
  readonly runner: HookRunnerMode;
  /** `sliceid hooks exec`'s extra arguments for the detached runner (--config FILE, --log-format F). */
  readonly execArgs: readonly string[];
  readonly logger: Logger;
  /** The unit to start under systemd (a shared host's guest: sliceid-hooks@NAME.service). */
  readonly unit?: string;
  /** The runner's --root (a shared host's guest: the host's root, not the guest's staging tree). */
  readonly runnerRoot?: string;
}

export class SliceHooks {
  private current: HookContext | undefined;
  readonly mode: 'systemd' | 'process';

  constructor(private readonly opts: SliceHooksOptions) {
    // On a temp tree (--root) the node's systemd is not this tree's: a process.
    this.mode = opts.runner === 'auto' ? ((opts.runnerRoot ?? opts.paths.root) === '/' && underSystemd() ? 'systemd' : 'process') : opts.runner;
  }

  /** A slice identity is established: its hooks run when the slice is new to this daemon. */
  offer(ctx: HookContext): void {
    const isNew = ctx.sliceUrn !== this.current?.sliceUrn;
    this.current = ctx;
    if (isNew) this.start(false);
  }

  /** `sliceid hooks run` (SIGUSR2): start a runner for what has not run well. */
  runPending(): void {
    if (this.current) this.start(true);
  }

  /** The hooks of the current slice that a runner would run now. */
  pending(ctx: HookContext): string[] {
    const records = readHookRecords(this.opts.paths.hookRecords);
    return discoverHooks(this.opts.dir).hooks.filter((h) => needsRun(records, ctx.sliceUrn, h)).map((h) => h.name);
  }

  private start(asked: boolean): void {
    const ctx = this.current!;
    const { logger, paths } = this.opts;
    const pending = this.pending(ctx);
    if (!pending.length && !asked) {
      logger.info({ slicename: ctx.slicename }, 'slice hooks: nothing to run');
      return;
    }
    try {
      requestHooks(paths.stateDir);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'slice hooks: could not leave the request for the runner; not started');
      return;
    }
    logger.info({ slicename: ctx.slicename, pending, runner: this.mode }, 'slice hooks: starting their runner');
    if (this.mode === 'systemd') {
      const unit = this.opts.unit ?? HOOKS_UNIT;
      execFile('systemctl', ['start', '--no-block', unit], { timeout: 30_000 }, (err, _stdout, stderr) => {
        if (err) {
          logger.error(
            { unit, err: err.message, stderr: String(stderr).trim().slice(0, 500) },
            `slice hooks: could not start their unit ${unit}; they run at the next start or with "sliceid hooks run"`,
          );
        }
      });
      return;
    }
    try {
      const child = spawn(process.execPath, [process.argv[1]!, 'hooks', 'exec', '--root', this.opts.runnerRoot ?? paths.root, ...this.opts.execArgs], {
        cwd: '/',
        detached: true, // a session of its own: no signal to the daemon's group reaches it
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', ...(process.env['SLICEID_LOG_LEVEL'] ? { SLICEID_LOG_LEVEL: process.env['SLICEID_LOG_LEVEL'] } : {}) },
      });
      child.on('error', (err) => logger.error({ err: err.message }, 'slice hooks: could not start their runner'));
      child.unref();
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'slice hooks: could not start their runner');
    }
  }
}
