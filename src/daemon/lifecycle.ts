// The daemon: start (instance lock, config, state dir, cache, first refresh, API, pidfile,
// watcher, signals, readiness), follow changes pushed to it (inotify events, SIGHUP; the config
// is reloaded on SIGHUP and when its file changes), and stop cleanly on SIGTERM/SIGINT.
import fs from 'node:fs';
import path from 'node:path';
import type { NodePaths } from '../paths.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { ensureDir, removeStaleTemps, writeFileAtomic } from '../fs/atomic.js';
import { writePidFile, removePidFile } from '../fs/pidfile.js';
import { acquireStateLock, type StateLock } from '../fs/lock.js';
import { openKeyCache } from '../store/cache.js';
import type { KeyCache } from '../store/types.js';
import { startApi, type ApiServer } from '../api/server.js';
import { NodeView } from './data.js';
import { refreshOnce, identityWatchPaths, META_API, type RefreshOutcome } from './refresh.js';
import { RefreshQueue } from './queue.js';
import { startWatcher, type Watcher } from './watch.js';
import { operatorText } from '../operator-text.js';
import { userKeyFiles } from '../keys/collect.js';
import { debounce } from './debounce.js';
import { ShrinkGuard } from './shrink.js';
import { SliceHooks, hookContext } from '../hooks/index.js';
import { collectGarbage } from './gc.js';
import { burstHeap } from '../heap.js';
import { applyReload, configFaults, type ConfigState } from './reload.js';
import { notifyReady } from './notify.js';
import { logStats, onLogDrop } from '../log.js';

/** What the running daemon publishes beside its pidfile for `status`: the config it runs with. */
export interface PublishedConfig {
  readonly file: string | undefined;
  readonly loadedAt: number;
  readonly getsshkeysKeyTypes: Config['api']['getsshkeysKeyTypes'];
  readonly error: string | undefined;
  readonly restart: readonly string[];
}

/**
 * Publish the last refresh's faults and the config the daemon runs with beside the pidfile
 * (status reads them even when the cache is unwritable).
 */
function writeFaults(file: string, faults: readonly string[], config: PublishedConfig, logger: Logger): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const log = logStats();
    writeFileAtomic(file, `${JSON.stringify({ faults, config, log })}\n`, 0o644);
  } catch (err) {
    logger.warn({ file, err: (err as Error).message }, 'could not write the faults file');
  }
}

export interface DaemonOptions {
  readonly paths: NodePaths;
  readonly config: Config;
  readonly configFile: string | undefined;
  /**
   * Read and validate the config again (SIGHUP, the file changed), with the command line's
   * settings applied as at start; throws on an invalid file. Without it the config is not reloaded.
   */
  readonly loadConfig?: () => { config: Config; file: string | undefined };
  readonly logger: Logger;
  /** The log format in use (the detached hooks runner writes the same). */
  readonly logFormat?: 'json' | 'journal';
  /** Debounce of file events (ms). */
  readonly quietMs?: number;
  /** How long a shrinking key source must stay unchanged before it is applied (ms). */
  readonly shrinkSettleMs?: number;
}

export interface Daemon {
  readonly api: ApiServer;
  readonly cache: KeyCache;
  /** Resolves after the refresh it asked for (or one coalesced with it) has run. */
  refresh(trigger: string, geniGet: boolean): Promise<void>;
  stop(reason: string): Promise<void>;
  /** Resolves once the daemon has stopped. */
  readonly stopped: Promise<void>;
}

/** setTimeout's limit; a renewal further away is re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** Another daemon holds the state directory's lock: this one did nothing. */
export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { paths, logger } = opts;
  // One daemon per state directory, decided before anything is written or asked.
  const attempt = acquireStateLock(paths.stateDir);
  if (!('lock' in attempt)) {
    throw new AlreadyRunningError(
      `another sliceid daemon is running on ${paths.root}${attempt.heldBy ? ` (pid ${attempt.heldBy})` : ''}: it holds ${attempt.file}; nothing done`,
    );
  }
  const lock: StateLock = attempt.lock;
  try {
    return await startLocked(opts, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(opts: DaemonOptions, lock: StateLock): Promise<Daemon> {
  const { paths, logger } = opts;
  /** The config the listeners and the hook runner were made with; reloads apply the rest. */
  const started = opts.config;
  let config = started;
  let configState: ConfigState = { file: opts.configFile, loadedAt: Date.now(), error: undefined, restart: [] };
  try {
    ensureDir(paths.stateDir, 0o700);
  } catch (err) {
    // Degrade: the cache is then kept in memory, and each refresh reports what it cannot write.
    logger.error({ dir: paths.stateDir, err: (err as Error).message }, 'state directory unusable; serving from memory');
  }
  // Temp files of writes a kill interrupted: never complete, never needed.
  for (const dir of [path.dirname(paths.slicename), paths.stateDir, path.join(paths.stateDir, 'gid')]) {
    const left = removeStaleTemps(dir);
    if (left.length) logger.info({ dir, files: left }, 'removed temp files of an interrupted write');
  }
  const cache = openKeyCache(paths.database, { logger });
  const view = new NodeView(cache, config.api.getsshkeysKeyTypes);
  let renewalTimer: NodeJS.Timeout | undefined;
  let watcher: Watcher | undefined;
  let hooks: SliceHooks | undefined;
  let stopping = false;

  const armRenewal = (at: Date | undefined): void => {
    if (renewalTimer) clearTimeout(renewalTimer);
    renewalTimer = undefined;
    if (!at) return;
    const delay = Math.max(0, at.getTime() - Date.now());
    renewalTimer = setTimeout(() => {
      if (Date.now() >= at.getTime()) void queue.request('renewal', false);
      else armRenewal(at);
    }, Math.min(delay, MAX_TIMER_MS));
    renewalTimer.unref();
  };

  const apply = (outcome: RefreshOutcome): void => {
    // This refresh's identity, or the last good one when it could not derive one (degraded).
    const served = outcome.identity ?? outcome.served;
    if (served) {
      const identity = served.identity;
      const owners = ['creator', 'swapper']
        .map((f) => served.facts[f as 'creator' | 'swapper']?.value)
        .filter((v): v is string => !!v);
      view.setSlice({ slicename: identity.slicename, sliceUrn: identity.slice.urn, sliceHrn: identity.slice.hrn, owners });
    }
    if (outcome.identity) {
      armRenewal(outcome.identity.nextRenewal);
      // A refresh that wrote the identity of a new slice runs its hooks (once the API is up).
      if (api) hooks?.offer(hookContext(outcome.identity.identity, api.addresses));
    }
    watcher?.setPaths(outcome.watchPaths, outcome.userKeyFiles);
  };

  const ctx = { paths, config, configFile: opts.configFile, cache, logger, shrinkGuard: new ShrinkGuard(opts.shrinkSettleMs) };
  // The config is read again at the next refresh after SIGHUP or a change of its file.
  let reloadWanted = false;
  const configPaths = (): Set<string> => new Set([...(ctx.configFile ? [ctx.configFile] : []), ...paths.configCandidates].map((p) => path.resolve(p)));
  const reloadConfig = (): void => {
    reloadWanted = false;
    if (!opts.loadConfig) return;
    let loaded: { config: Config; file: string | undefined };
    try {
      loaded = opts.loadConfig();
    } catch (err) {
      const error = (err as Error).message;
      configState = { ...configState, error };
      logger.error({ err: error }, 'config not reloaded: the file is invalid; the daemon keeps the config it runs with');
      return;
    }
    const reloaded = applyReload(started, loaded);
    const levelChanged = reloaded.config.log.level !== config.log.level;
    config = reloaded.config;
    configState = reloaded.state;
    ctx.config = config;
    ctx.configFile = loaded.file;
    view.setKeyTypes(config.api.getsshkeysKeyTypes);
    if (levelChanged) logger.level = config.log.level;
    logger.info({ file: loaded.file ?? null, restart: configState.restart }, configState.restart.length ? 'config reloaded; some settings need a restart' : 'config reloaded');
  };
  const published = (): PublishedConfig => ({
    file: configState.file,
    loadedAt: configState.loadedAt,
    getsshkeysKeyTypes: config.api.getsshkeysKeyTypes,
    error: configState.error,
    restart: configState.restart,
  });
  let last: RefreshOutcome | undefined;
  let confirmTimer: NodeJS.Timeout | undefined;
  const queue = new RefreshQueue(
    async (trigger, geniGet) => {
      if (reloadWanted) reloadConfig();
      // The heap may grow during the refresh; the GC after it takes it back (src/heap.ts).
      burstHeap(true);
      try {
        await refreshOnce(ctx, trigger, geniGet, (outcome) => {
          last = outcome;
          apply(outcome);
          // The answers built now, while the refresh still holds the keys' texts, are all that
          // stays of them (src/store/cache.ts holds its memo weakly).
          api?.warm();
          // The burst is over: the sshd key files are written under the usual settings, after a
          // collection that frees what the refresh parsed and built (10,000 users: ~80 MB).
          burstHeap(false);
          // (At start the API is not up yet: one collection follows the ready line instead.)
          if (outcome.changed && api) collectGarbage();
        });
      } finally {
        burstHeap(false);
      }
      if (!last) return;
      // Once this callback's frame (which still holds the refresh's objects) is gone.
      if (last.changed && api) setImmediate(collectGarbage);
      writeFaults(paths.faultsFile, [...configFaults(configState), ...last.faults], published(), logger);
      if (confirmTimer) clearTimeout(confirmTimer);
      confirmTimer = undefined;
      if (last.confirmInMs !== undefined && !stopping) {
        confirmTimer = setTimeout(() => void queue.request('confirm', false), last.confirmInMs);
      }
    },
    (err) => logger.error({ err: err instanceof Error ? err.stack : String(err) }, 'refresh failed; serving the last good data'),
  );
  const knownUserFiles = (): string[] => {
    try {
      return userKeyFiles(paths, cache.users());
    } catch {
      return [];
    }
  };
  const events = debounce((reasons) => void queue.request(`files: ${reasons.join(', ')}`, false), opts.quietMs ?? 100, 1000);

  // Watch before the first read, so that a change made while it runs is not missed.
  watcher = startWatcher(
    identityWatchPaths(paths, opts.configFile),
    (event, file) => {
      if (stopping) return;
      if (configPaths().has(path.resolve(file))) reloadWanted = true;
      // The name may be a user's choice: the trigger is logged and shown by status, escaped.
      events.trigger(`${event} ${operatorText(path.relative(paths.root, file) || file)}`);
    },
    logger,
    // The users the cache knows from the last run are watched from the start too (their watches
    // are set here, synchronously); each refresh then sets the users it found.
    knownUserFiles(),
  );
  let api: ApiServer | undefined;
  const abandon = async (err: unknown): Promise<never> => {
    events.cancel();
    await Promise.allSettled([watcher?.close(), api?.close()]);
    await queue.idle();
    cache.close();
    lock.release();
    throw err;
  };
  await watcher.ready;

  // First refresh. A node whose identity cannot be derived now serves the last good one from its
  // state (or, at a first start, no slice yet), reports it, and keeps watching for the data.
  await queue.request('start', true);
  const degraded = last?.identity ? undefined : (last?.identityError ?? 'the first refresh failed');
  if (degraded) {
    const served = last?.served?.identity.slicename;
    logger.warn(
      { identityError: degraded, slicename: served },
      served
        ? `identity cannot be derived now: serving the last good identity (slice ${served}) and the cached keys; watching for the testbed data`
        : 'identity cannot be derived and none is kept: serving no slice yet; watching for the testbed data',
    );
  }

  const tcp = started.api.listen.map((host) => ({ host, port: started.api.port }));
  const socket = started.api.socket === null ? paths.socket : started.api.socket || undefined;
  if (socket) fs.mkdirSync(path.dirname(socket), { recursive: true });
  api = await startApi({ data: view, tcp, socket, allowNonLoopback: started.api.allowNonLoopback, logger }).catch(abandon);
  api.warm();
  writePidFile(paths.pidFile);

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onHup = (): void => {
    logger.info('SIGHUP: config reload and full refresh');
    reloadWanted = true;
    void queue.request('SIGHUP', true);
  };
  const onTerm = (signal: string) => (): void => void daemon.stop(signal);
  const onHooks = (): void => {
    logger.info('SIGUSR2: run the slice hooks that have not run well');
    hooks?.runPending();
  };
  const handlers: Array<[NodeJS.Signals, () => void]> = [
    ['SIGHUP', onHup],
    ['SIGTERM', onTerm('SIGTERM')],
    ['SIGINT', onTerm('SIGINT')],
    ['SIGUSR2', onHooks],
  ];
  for (const [sig, fn] of handlers) process.on(sig, fn);

  // Log lines the destination refused (full disk, closed pipe): counted by src/log.ts, published
  // for `status` a moment after a burst of drops (a timer armed only then).
  let dropTimer: NodeJS.Timeout | undefined;
  onLogDrop(() => {
    if (dropTimer || stopping) return;
    dropTimer = setTimeout(() => {
      dropTimer = undefined;
      writeFaults(paths.faultsFile, [...configFaults(configState), ...(last?.faults ?? [])], published(), logger);
    }, 1000);
  });

  const daemon: Daemon = {
    api,
    cache,
    refresh: (trigger, geniGet) => queue.request(trigger, geniGet),
    stopped,
    async stop(reason) {
      if (stopping) return stopped;
      stopping = true;
      logger.info({ reason }, 'stopping');
      for (const [sig, fn] of handlers) process.off(sig, fn);
      events.cancel();
      if (renewalTimer) clearTimeout(renewalTimer);
      if (confirmTimer) clearTimeout(confirmTimer);
      if (dropTimer) clearTimeout(dropTimer);
      onLogDrop(undefined);
      // A running hook is not the daemon's: its runner goes on (src/hooks/index.ts).
      await Promise.allSettled([watcher?.close(), api?.close()]);
      await queue.idle();
      cache.close();
      removePidFile(paths.pidFile);
      fs.rmSync(paths.faultsFile, { force: true });
      lock.release();
      logger.info('stopped');
      resolveStopped();
      return stopped;
    },
  };
  const addresses = api.addresses;
  cache.setMeta(META_API, JSON.stringify(addresses));
  const port = addresses.find((a): a is { host: string; port: number } => 'port' in a)?.port;
  logger.info(
    { port, socket, addresses, slicename: view.slicename(), keys: cache.sliceKeys().length, ...(degraded ? { degraded } : {}) },
    'ready',
  );
  // systemd (Type=notify): the identity files are written and the API answers.
  void notifyReady(logger, view.slicename() ? `serving ${view.slicename()}` : 'serving no slice yet');
  // Slice hooks: the identity files are written and the API answers.
  hooks = new SliceHooks({
    paths,
    dir: started.hooks.dir ?? paths.hooksDir,
    runner: started.hooks.runner,
    execArgs: [...(opts.configFile ? ['--config', opts.configFile] : []), ...(opts.logFormat ? ['--log-format', opts.logFormat] : [])],
    logger,
  });
  // (Degraded, none: they run once an identity is derived again, from apply.)
  if (last?.identity) hooks.offer(hookContext(last.identity.identity, addresses));
  // What start-up alone needed (module evaluation, the first refresh's objects) is garbage now:
  // collected once, the daemon starts ~1 MB smaller (bench/README.md).
  setImmediate(collectGarbage);
  return daemon;
}
