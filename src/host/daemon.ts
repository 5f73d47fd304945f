// `sliceid run --host`: one daemon on a shared host serving every guest (spec section 8). It
// follows the guests (config, netns directory, machined), runs each one's pipeline (guest.ts),
// publishes their status in /var/run/sliceid.guests, and stops cleanly. No process per guest.
import fs from 'node:fs';
import path from 'node:path';
import type { NodePaths } from '../paths.js';
import type { Logger } from '../log.js';
import { ensureDir, writeFileAtomic } from '../fs/atomic.js';
import { acquireStateLock } from '../fs/lock.js';
import { loadHostConfig, type HostConfig } from './config.js';
import { discover, watchGuests } from './discovery.js';
import { Guest, type GuestSpec, type GuestStatus } from './guest.js';
import { GuestWatches } from './watch.js';
import { GuestProcesses } from './alive.js';
import { GuestHooks } from './hooks.js';
import { collectGarbage } from '../daemon/gc.js';
import { Slots } from './slots.js';

export const guestsStateFile = (paths: NodePaths): string => paths.under('/var/run/sliceid.guests');

export interface HostState {
  readonly pid: number;
  readonly at: string;
  readonly config: string | undefined;
  readonly configError: string | undefined;
  readonly guests: GuestStatus[];
}

export interface HostDaemon {
  readonly guests: ReadonlyMap<string, Guest>;
  /** The guests' own files, followed live (src/host/watch.ts). */
  readonly watches: GuestWatches;
  /** Follow the guests again now (what an inotify event does); resolves when done. */
  sync(trigger: string): Promise<void>;
  /** SIGHUP: reread the config, follow the guests, refresh every one. */
  reload(): Promise<void>;
  stop(reason: string): Promise<void>;
  readonly stopped: Promise<void>;
}

// A namespace's process (in its own root: src/host/discovery.ts) usually follows the namespace
// file within tens of ms: the first looks come soon; each is one pass over /proc.
const RETRY_MS = [50, 50, 100, 100, 200, 400, 800, 1600, 3200, 6400];
/** Guests refreshed at once (a refresh of all, guests appearing together). */
const REFRESH_SLOTS = 4;

export async function startHostDaemon(opts: { paths: NodePaths; configFile: string | undefined; logger: Logger; signals?: boolean; logFormat?: string }): Promise<HostDaemon> {
  const { paths, logger } = opts;
  const attempt = acquireStateLock(paths.stateDir);
  if (!('lock' in attempt)) throw new Error(`another sliceid daemon holds ${attempt.file}${attempt.heldBy ? ` (pid ${attempt.heldBy})` : ''}; nothing done`);
  const lock = attempt.lock;
  let config: HostConfig = loadHostConfig(paths, opts.configFile);
  let configError: string | undefined;
  const guests = new Map<string, Guest>();
  let chain: Promise<void> = Promise.resolve();
  let stopping = false;
  let retry: { timer: NodeJS.Timeout; step: number } | undefined;
  let unwatch = (): void => {};
  let retryStep = 0;
  const stateFile = guestsStateFile(paths);

  const writeState = (): void => {
    const state: HostState = { pid: process.pid, at: new Date().toISOString(), config: config.file, configError, guests: [...guests.values()].map((g) => g.status()) };
    try {
      ensureDir(path.dirname(stateFile), 0o755);
      writeFileAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`, 0o644);
    } catch (err) {
      logger.warn({ file: stateFile, err: (err as Error).message }, 'could not write the guests state file');
    }
  };

  let peerGeneration = 0;
  const execArgs = [...(opts.configFile ? ['--config', opts.configFile] : []), ...(opts.logFormat ? ['--log-format', opts.logFormat] : [])];
  const hooks = new GuestHooks({ hostPaths: paths, config: () => config.node, execArgs, logger });
  const guestOptions = () => ({
    allSlices: () => config.allSlices,
    peers: () => ({ guests: [...guests.values()], generation: peerGeneration }),
    hostPaths: paths,
    config: config.node,
    logger,
    port: config.node.api.port,
    listen: config.node.api.listen,
    socket: config.node.api.socket === '' ? '' : (config.node.api.socket ?? '/tmp/nodemanager.api'),
    onServed: (g: Guest) => void (!stopping && hooks.offer(g)),
  });

  // Guests refresh a few at a time (src/host/slots.ts): the C heap's peak, and what it keeps.
  const refreshSlots = new Slots(REFRESH_SLOTS);
  const refresh = (g: Guest, trigger: string): Promise<void> => refreshSlots.run(() => g.refresh(trigger));

  const same = (a: GuestSpec, b: GuestSpec): boolean => a.pid === b.pid && a.netns === b.netns && a.root === b.root && a.hostname === b.hostname;

  const doSync = async (trigger: string, refreshAll: boolean): Promise<void> => {
    if (stopping) return;
    // A guest's process that exited: a namespace guest keeps its namespace (served, no root
    // known); any other guest has gone away (src/host/alive.ts).
    const specs = discover(paths, config.guests, config.netnsDir).flatMap((s): GuestSpec[] => {
      if (!s.pid || procs.alive(s.name, s.pid)) return [s];
      if (guests.get(s.name)?.status().present) logger.info({ guest: s.name, guestPid: s.pid }, 'the guest\'s process exited');
      const { pid: _gone, ...rest } = s;
      return s.netns ? [rest] : [];
    });
    const seen = new Set<string>();
    let incomplete = false;
    await Promise.all(
      specs.map(async (spec) => {
        seen.add(spec.name);
        if (!spec.pid && !spec.root && spec.from === 'netns') incomplete = true;
        let g = guests.get(spec.name);
        if (!g) {
          g = new Guest(spec, guestOptions());
          guests.set(spec.name, g);
          logger.info({ guest: spec.name, from: spec.from, guestPid: spec.pid, netns: spec.netns }, 'guest appeared');
          await refresh(g, trigger);
          await g.listen();
          return;
        }
        const wasAbsent = !g.status().present;
        const changed = !same(g.spec, spec);
        g.spec = spec;
        if (wasAbsent || changed) {
          if (wasAbsent) logger.info({ guest: spec.name }, 'guest is back');
          await g.close(true);
          await refresh(g, trigger);
          await g.listen();
        } else if (refreshAll) await refresh(g, trigger);
      }),
    );
    for (const [name, g] of guests) {
      if (seen.has(name)) continue;
      procs.forget(name);
      if (!g.status().present) continue;
      logger.info({ guest: name }, 'guest went away: listeners closed, its cached data kept');
      await g.close(false);
    }
    peerGeneration++;
    for (const g of guests.values()) g.warm();
    watches.follow([...guests.values()].filter((g) => g.status().present));
    writeState();
    // A namespace seen before its process: looked for again a few times (backing off), then at
    // the next event or SIGHUP.
    if (retry) clearTimeout(retry.timer);
    retry = undefined;
    if (incomplete && retryStep < RETRY_MS.length) {
      const ms = RETRY_MS[retryStep++]!;
      retry = { step: retryStep, timer: setTimeout(() => void sync('looking for a process in the namespace'), ms) };
    }
  };

  // Once the queue has drained (guests appeared, refreshed, went away), one compacting collection
  // gives back what their refreshes allocated and left (src/daemon/gc.ts): with 50 guests V8 kept
  // tens of MB of pages committed, and its memory reducer collected them later, while idle.
  let queued = 0;
  const enqueue = (fn: () => Promise<void>): Promise<void> => {
    queued++;
    const next = chain
      .then(fn)
      .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'host: guest follow-up failed'))
      .finally(() => {
        if (--queued === 0 && !stopping) setImmediate(() => queued === 0 && !stopping && collectGarbage());
      });
    chain = next;
    return next;
  };
  const sync = (trigger: string): Promise<void> => enqueue(() => doSync(trigger, false));

  const procs = new GuestProcesses((name) => void sync(`the process of guest ${name} exited`));

  // A change in one guest's files refreshes that guest only, in its turn in the queue.
  const watches = new GuestWatches({
    hostPaths: paths,
    logger,
    changed: (name, reasons) =>
      enqueue(async () => {
        procs.check();
        const g = guests.get(name);
        if (stopping || !g || !g.status().present) return;
        await g.refresh(`files: ${reasons.join(', ')}`);
        watches.plan(g);
        writeState();
      }),
  });

  const rewatch = (): void => {
    unwatch();
    unwatch = watchGuests(paths, config.netnsDir, () => {
      rewatch();
      retryStep = 0;
      void sync('guests changed');
    });
  };

  const reload = (): Promise<void> =>
    enqueue(async () => {
      try {
        config = loadHostConfig(paths, opts.configFile);
        configError = undefined;
      } catch (err) {
        configError = `config not reloaded, the previous one stays: ${(err as Error).message}`;
        logger.error(configError);
      }
      rewatch();
      retryStep = 0;
      await doSync('SIGHUP', true);
    });

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const onHup = (): void => void reload();
  const onTerm = (): void => void stop('signal');
  const onHooks = (): void => hooks.runRequested(guests.values());
  const stop = async (reason: string): Promise<void> => {
    if (stopping) return stopped;
    stopping = true;
    logger.info({ reason, guests: guests.size }, 'host daemon stopping');
    if (retry) clearTimeout(retry.timer);
    unwatch();
    watches.close();
    procs.close();
    if (opts.signals) {
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      process.off('SIGUSR2', onHooks);
    }
    await chain;
    // All guests at once: 50 guests close in about one guest's time.
    await Promise.all([...guests.values()].map((g) => g.close(true)));
    for (const g of guests.values()) g.dispose();
    fs.rmSync(stateFile, { force: true });
    lock.release();
    resolveStopped();
  };

  // The signals are ours before the first guest is followed: the guests file written during the
  // start is what callers wait for, and a SIGTERM right after it must stop the daemon, not kill it.
  if (opts.signals) {
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onTerm);
    process.on('SIGUSR2', onHooks);
  }
  try {
    ensureDir(paths.stateDir, 0o700);
    rewatch();
    await enqueue(() => doSync('start', false));
  } catch (err) {
    await stop('start failed');
    throw err;
  }
  logger.info({ guests: [...guests.keys()], config: config.file }, 'host daemon serving');
  return { guests, watches, sync, reload, stop, stopped };
}
