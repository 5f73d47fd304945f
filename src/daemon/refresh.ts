// One refresh: sources -> identity -> files, and sources -> keys -> cache.
import type { NodePaths } from '../paths.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { KeyCache } from '../store/types.js';
import type { SourceResult } from '../keys/types.js';
import { refreshIdentity, type IdentityResult } from '../identity/index.js';
import { collectKeySources, keyWatchPaths } from '../keys/collect.js';
import { InputError } from '../errors.js';

export interface RefreshOutcome {
  readonly identity: IdentityResult | undefined;
  /** Set when the identity could not be derived; the previous files were left in place. */
  readonly identityError: string | undefined;
  readonly sources: readonly SourceResult[];
  readonly watchPaths: readonly string[];
  readonly changed: boolean;
}

export interface RefreshContext {
  readonly paths: NodePaths;
  readonly config: Config;
  readonly configFile: string | undefined;
  readonly cache: KeyCache;
  readonly logger: Logger;
}

export const META_IDENTITY = 'identity';
export const META_IDENTITY_ERROR = 'identity_error';
/** The API's listening addresses, for `status`. */
export const META_API = 'api';

/** Run one refresh. `geniGet`: also ask the testbed (start-up and explicit refresh only). */
export async function refreshOnce(ctx: RefreshContext, trigger: string, geniGet: boolean): Promise<RefreshOutcome> {
  const started = performance.now();
  const { paths, config, cache, logger } = ctx;
  const useGeniGet = geniGet && config.geniGet.enabled;

  let identity: IdentityResult | undefined;
  let identityError: string | undefined;
  try {
    identity = await refreshIdentity(paths, config, { geniGet: useGeniGet, logger });
    cache.setMeta(META_IDENTITY, JSON.stringify(identity));
    cache.setMeta(META_IDENTITY_ERROR, '');
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    identityError = err.message;
    cache.setMeta(META_IDENTITY_ERROR, identityError);
    logger.error({ where: err.where, value: err.value, rule: err.rule }, `identity refused: ${err.message}`);
  }
  const identityMs = performance.now() - started;

  const vnodeId = identity?.facts.vmname?.value;
  const sources = await collectKeySources(paths, { vnodeId, geniGet: useGeniGet, timeoutMs: config.geniGet.timeoutMs, logger });
  let changed = false;
  const applied: string[] = [];
  const stale: string[] = [];
  for (const result of sources) {
    const outcome = cache.applySource(result);
    changed ||= outcome.changed;
    (outcome.applied ? applied : stale).push(result.id);
    for (const problem of result.problems) {
      logger.warn({ source: result.id, where: problem.where }, problem.message);
    }
    if (!outcome.applied) logger.warn({ source: result.id, status: result.status }, `keeping last good data: ${outcome.reason}`);
  }
  // A user's authorized_keys stops being a source only when a complete accounts file says so.
  const accounts = sources.find((s) => s.id.startsWith('tmcc'));
  if (accounts?.status === 'ok') {
    const current = new Set(sources.map((s) => s.id));
    for (const state of cache.sources()) {
      if (state.id.startsWith('authorized_keys:') && !current.has(state.id)) changed = cache.dropSource(state.id) || changed;
    }
  }
  const users = cache.users();
  const watchPaths = [
    paths.bootDir,
    paths.hostnameFile,
    ...(ctx.configFile ? [ctx.configFile] : paths.configCandidates),
    ...keyWatchPaths(paths, vnodeId, users),
  ];
  const durationMs = Math.round((performance.now() - started) * 10) / 10;
  const keys = cache.sliceKeys().length;
  const summary = `${users.length} users, ${keys} keys; applied ${applied.join(', ') || 'none'}${stale.length ? `; stale ${stale.join(', ')}` : ''}`;
  const filesChanged = identity ? identity.written.length > 0 : false;
  cache.recordRefresh({ at: Date.now(), trigger, durationMs, changed: changed || filesChanged, summary });
  logger.info(
    {
      trigger,
      durationMs,
      identityMs: Math.round(identityMs * 10) / 10,
      slicename: identity?.identity.slicename,
      issued: identity?.issued,
      written: identity?.written,
      users: users.length,
      keys,
      changed: changed || filesChanged,
      stale,
      identityError,
    },
    'refresh',
  );
  return { identity, identityError, sources, watchPaths, changed: changed || filesChanged };
}
