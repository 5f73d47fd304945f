// Run one hook: as root (sliceid's own user), stdin from /dev/null, a minimal environment with the
// slice's context, in a process group of its own so that the whole group is killed at the time
// limit, and its output to the log line by line, bounded per line and in total.
import { spawn } from 'node:child_process';
import type { Logger } from '../log.js';
import type { Hook } from './discover.js';
import type { HookRun } from './records.js';
import { monotonicMs } from '../time.js';
import { operatorText } from '../operator-text.js';

/** What a hook learns from its environment. */
export interface HookContext {
  readonly slicename: string;
  readonly sliceUrn: string;
  readonly sliceHrn: string;
  readonly nodeUrn: string;
  /** e.g. http://127.0.0.1:812/ ("" when the API has no TCP address). */
  readonly apiUrl: string;
  /** The NodeManager Unix socket ("" when there is none). */
  readonly apiSocket: string;
  /**
   * A shared host's guest (src/host/hooks.ts): the hook gets SLICEID_GUEST* too and is started in
   * the guest's network namespace (nsenter --net), with the host's file system.
   */
  readonly guest?: GuestContext;
}

export interface GuestContext {
  readonly name: string;
  /** A process of the guest (undefined when only its namespace and root are known). */
  readonly pid: number | undefined;
  /** The guest's root as the host sees it (/proc/PID/root, or the configured root). */
  readonly root: string;
  /** The guest's network namespace file (/proc/PID/ns/net, or the configured or netns_dir one). */
  readonly netns: string;
}

export interface RunOptions {
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** A line longer than this is cut (and marked so). */
  readonly maxLineBytes?: number;
  /** Output beyond this (both streams together) is read and dropped, once noted in the log. */
  readonly maxOutputBytes?: number;
  /** After SIGTERM at the time limit (or on stop), SIGKILL to the group after this long. */
  readonly killGraceMs?: number;
}

export const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const MAX_LINE_BYTES = 4096;
export const MAX_OUTPUT_BYTES = 256 * 1024;

export function hookEnv(ctx: HookContext): NodeJS.ProcessEnv {
  return {
    PATH: SAFE_PATH,
    HOME: '/root',
    LANG: 'C',
    SLICEID_SLICENAME: ctx.slicename,
    SLICEID_SLICE_URN: ctx.sliceUrn,
    SLICEID_SLICE_HRN: ctx.sliceHrn,
    SLICEID_NODE_URN: ctx.nodeUrn,
    SLICEID_API_URL: ctx.apiUrl,
    SLICEID_API_SOCKET: ctx.apiSocket,
    // SLICEID_GUEST_PID is set, empty, when no process of the guest is known.
    ...(ctx.guest ? { SLICEID_GUEST: ctx.guest.name, SLICEID_GUEST_PID: ctx.guest.pid ? String(ctx.guest.pid) : '', SLICEID_GUEST_ROOT: ctx.guest.root } : {}),
  };
}

/** The command that starts a hook: the hook itself, or in a guest's network namespace nsenter's exec of it. */
export function hookCommand(hook: { path: string }, ctx: HookContext): [string, string[]] {
  // nsenter enters the namespace and execs the hook (no fork without --pid): the same process.
  return ctx.guest ? ['nsenter', [`--net=${ctx.guest.netns}`, '--', hook.path]] : [hook.path, []];
}

/** Splits a byte stream into lines without ever holding more than one bounded line. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  private cut = false;
  constructor(
    private readonly maxLine: number,
    private readonly emit: (line: string, cut: boolean) => void,
  ) {}

  push(chunk: Buffer): void {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(10, from);
      const end = nl < 0 ? chunk.length : nl;
      this.hold(chunk.subarray(from, end));
      if (nl < 0) return;
      this.flush();
      from = nl + 1;
    }
  }

  /** Emit what is held (a last line without a newline). */
  end(): void {
    if (this.held > 0 || this.cut) this.flush();
  }

  private hold(bytes: Buffer): void {
    const room = this.maxLine - this.held;
    if (bytes.length > room) this.cut = true;
    const kept = bytes.subarray(0, Math.max(0, room));
    if (kept.length) {
      this.parts.push(kept);
      this.held += kept.length;
    }
  }

  private flush(): void {
    const line = Buffer.concat(this.parts).toString('utf8').replace(/\r$/, '');
    const cut = this.cut;
    this.parts = [];
    this.held = 0;
    this.cut = false;
    this.emit(line, cut);
  }
}

export interface RunningHook {
  readonly result: Promise<HookRun>;
  /** Stop it (daemon stopping): SIGTERM to the group, SIGKILL after the grace time. */
  abort(): void;
}

export function runHook(hook: Hook, ctx: HookContext, opts: RunOptions): RunningHook {
  const { logger } = opts;
  const maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  const maxOutput = opts.maxOutputBytes ?? MAX_OUTPUT_BYTES;
  const grace = opts.killGraceMs ?? 5000;
  const at = Date.now();
  const started = monotonicMs();
  const duration = (): number => Math.round(monotonicMs() - started);
  let abort = (): void => {};

  const result = new Promise<HookRun>((resolve) => {
    let output = 0;
    let dropped = false;
    let timedOut = false;
    let aborted = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const timers = new Set<NodeJS.Timeout>();
    const arm = (ms: number, fn: () => void): void => {
      const t = setTimeout(() => (timers.delete(t), fn()), ms);
      timers.add(t);
    };

    const [file, args] = hookCommand(hook, ctx);
    const child = spawn(file, args, { cwd: '/', env: hookEnv(ctx), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // The group is gone already.
      }
    };
    const terminate = (): void => {
      killGroup('SIGTERM');
      arm(grace, () => killGroup('SIGKILL'));
    };
    abort = () => {
      if (exited || aborted) return;
      aborted = true;
      terminate();
    };

    const streams = [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ] as const;
    const splitters = streams.map(([stream, readable]) => {
      const splitter = new LineSplitter(maxLine, (line, cut) => {
        if (output >= maxOutput) {
          if (!dropped) logger.warn({ hook: hook.name, limit: maxOutput }, 'hook output beyond the limit is dropped');
          dropped = true;
          return;
        }
        output += Buffer.byteLength(line) + 1;
        logger.info({ hook: hook.name, stream, line: operatorText(line), ...(cut ? { cut: true } : {}) }, 'hook output');
      });
      readable.on('data', (d: Buffer) => splitter.push(d));
      return splitter;
    });

    let done = false;
    const finish = (run: Omit<HookRun, 'hash' | 'at' | 'durationMs'>): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of splitters) s.end();
      resolve({ hash: hook.hash, at, durationMs: duration(), ...run });
    };
    const settle = (): void => {
      const { code, signal } = exited!;
      // Whatever the hook left in its group when it was stopped goes with it.
      if (timedOut || aborted) killGroup('SIGKILL');
      if (timedOut) finish({ outcome: 'timed-out', ...(signal ? { signal } : {}), detail: `killed at the time limit of ${opts.timeoutMs / 1000} s` });
      else if (aborted) finish({ outcome: 'interrupted', ...(signal ? { signal } : {}), detail: 'sliceid stopped while it ran' });
      else if (code === 0) finish({ outcome: 'ok', exitCode: 0 });
      else finish({ outcome: 'failed', ...(code !== null ? { exitCode: code } : {}), ...(signal ? { signal } : {}) });
    };

    child.on('error', (err) => finish({ outcome: 'error', detail: `could not start: ${err.message}` }));
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      // A process the hook left in the background may hold its output open: read on for a
      // moment, then stop reading and settle.
      arm(1000, () => {
        for (const [, readable] of streams) readable.destroy();
        settle();
      });
    });
    child.on('close', () => {
      if (exited) settle();
    });
    arm(opts.timeoutMs, () => {
      if (exited) return;
      timedOut = true;
      logger.warn({ hook: hook.name, limitS: opts.timeoutMs / 1000 }, 'hook reached its time limit: killing its process group');
      terminate();
    });
  });
  return { result, abort: () => abort() };
}
