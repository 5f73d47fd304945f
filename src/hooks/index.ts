// The slice hooks as the daemon runs them: once per slice, when the slice's identity is written
// and the API answers. One pass at a time, hooks in order, each an async child process, so
// neither the API nor the refresh queue ever waits for them; nothing is armed while idle.
import type { Logger } from '../log.js';
import type { ApiAddress } from '../api/server.js';
import type { Identity } from '../identity/types.js';
import { discoverHooks } from './discover.js';
import { needsRun, readHookRecords, recordHookRun } from './records.js';
import { runHook, type HookContext, type RunningHook } from './runner.js';

export type { HookContext } from './runner.js';

export interface SliceHooksOptions {
  readonly dir: string;
  readonly recordsFile: string;
  readonly timeoutMs: number;
  readonly logger: Logger;
}

/** The context hooks get, from the identity written and the API's addresses. */
export function hookContext(identity: Identity, addresses: readonly ApiAddress[]): HookContext {
  const tcp = addresses.find((a): a is { host: string; port: number } => 'port' in a);
  const socket = addresses.find((a): a is { socket: string } => 'socket' in a);
  const host = tcp && (tcp.host.includes(':') ? `[${tcp.host}]` : tcp.host);
  return {
    slicename: identity.slicename,
    sliceUrn: identity.slice.urn,
    sliceHrn: identity.slice.hrn,
    nodeUrn: identity.node.urn,
    apiUrl: tcp ? `http://${host}:${tcp.port}/` : '',
    apiSocket: socket?.socket ?? '',
  };
}

export class SliceHooks {
  private current: HookContext | undefined;
  private pending = false;
  private running: Promise<void> | undefined;
  private hook: RunningHook | undefined;
  private stopped = false;

  constructor(private readonly opts: SliceHooksOptions) {}

  /**
   * A slice identity is established (start-up, or a refresh that wrote one): its hooks run when
   * the slice is not the one this daemon already ran them for.
   */
  offer(ctx: HookContext): void {
    const isNew = ctx.sliceUrn !== this.current?.sliceUrn;
    this.current = ctx;
    if (isNew) this.kick();
  }

  /** Run what has not run well for the current slice (failed, changed, new): `sliceid hooks run`. */
  runPending(): void {
    if (this.current) this.kick();
  }

  /** Resolves when no pass is running (tests, stop). */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** Stop: no new hook starts, a running one is stopped (and recorded as interrupted). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.hook?.abort();
    await this.running;
  }

  private kick(): void {
    this.pending = true;
    this.running ??= this.loop().finally(() => (this.running = undefined));
  }

  private async loop(): Promise<void> {
    while (this.pending && !this.stopped && this.current) {
      this.pending = false;
      try {
        await this.pass(this.current);
      } catch (err) {
        this.opts.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'slice hooks could not run');
      }
    }
  }

  private async pass(ctx: HookContext): Promise<void> {
    const { logger, dir, recordsFile } = this.opts;
    const set = discoverHooks(dir);
    for (const r of set.refused) logger.error({ hook: r.name }, `hook refused: ${r.reason}`);
    const records = readHookRecords(recordsFile);
    let ran = 0;
    let failed = 0;
    for (const hook of set.hooks) {
      // A new slice (or a new request) starts a fresh pass; stopping starts nothing.
      if (this.stopped || this.pending) return;
      if (!needsRun(records, ctx.sliceUrn, hook)) continue;
      logger.info({ hook: hook.name, slicename: ctx.slicename }, 'hook start');
      this.hook = runHook(hook, ctx, { timeoutMs: this.opts.timeoutMs, logger });
      const run = await this.hook.result;
      this.hook = undefined;
      ran++;
      if (run.outcome !== 'ok') failed++;
      try {
        recordHookRun(recordsFile, { urn: ctx.sliceUrn, slicename: ctx.slicename }, hook.name, run);
      } catch (err) {
        logger.error({ hook: hook.name, err: (err as Error).message }, 'could not record the hook run: it will run again at the next start');
      }
      const { hash: _hash, ...shown } = run;
      (run.outcome === 'ok' ? logger.info.bind(logger) : logger.error.bind(logger))({ hook: hook.name, slicename: ctx.slicename, ...shown }, 'hook done');
    }
    logger[set.hooks.length || set.refused.length ? 'info' : 'debug'](
      { slicename: ctx.slicename, hooks: set.hooks.length, ran, failed, refused: set.refused.length },
      'hooks done',
    );
  }
}
