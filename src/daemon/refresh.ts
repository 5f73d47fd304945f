import fs from 'node:fs';
import path from 'node:path';
// One refresh: sources -> identity -> files, and sources -> keys -> cache.
import type { NodePaths } from '../paths.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { KeyCache, SourceState } from '../store/types.js';
import type { SourceResult } from '../keys/types.js';
import { refreshIdentity, type IdentityResult } from '../identity/index.js';
import { accountsFileFor, collectKeySources, keyWatchPaths, userKeyFiles, type CollectOptions } from '../keys/collect.js';
import { ACCOUNTS_SOURCE_ID } from '../keys/accounts.js';
import { AUTHORIZED_KEYS_PREFIX } from '../keys/authorized-keys.js';
import { InputError } from '../errors.js';
import type { ShrinkGuard } from './shrink.js';
import { writeSshdKeys } from '../writers/sshd-keys.js';
import { admitUsers, isSystemAccount, loginPolicy, type LoginPolicy } from '../keys/logins.js';
import { isoTime, monotonicMs } from '../time.js';

export interface RefreshOutcome {
  readonly identity: IdentityResult | undefined;
  /** Set when the identity could not be derived or written; the previous files were left in place. */
  readonly identityError: string | undefined;
  /**
   * The identity served: this refresh's, or when it has none, the last good one kept in the state
   * (the cache's record of the last refresh that derived one); undefined on a node that never had one.
   */
  readonly served: IdentityResult | undefined;
  readonly watchPaths: readonly string[];
  /** Users' authorized_keys files, watched apart from watchPaths (src/daemon/watch.ts). */
  readonly userKeyFiles: readonly string[];
  readonly changed: boolean;
  /** What went wrong in this refresh (refused input, I/O errors, deferred shrinks), for status. */
  readonly faults: readonly string[];
  /** Refresh again after this many ms to confirm a deferred shrink. */
  readonly confirmInMs: number | undefined;
}

export interface RefreshContext {
  readonly paths: NodePaths;
  readonly config: Config;
  readonly configFile: string | undefined;
  readonly cache: KeyCache;
  readonly logger: Logger;
  readonly shrinkGuard: ShrinkGuard;
  /** Users' files read elsewhere than under `paths` (a shared host's guest: inside the guest). */
  readonly userFiles?: CollectOptions['userFiles'];
}

export const META_IDENTITY = 'identity';
export const META_IDENTITY_ERROR = 'identity_error';
/** Users the login policy refused (src/keys/logins.ts), per source id: one sentence each, for `status`. */
export const META_REFUSED = 'refused_users';
/** The API's listening addresses, for `status`. */
export const META_API = 'api';

/**
 * What the identity is derived from (boot files, host name, config), and the accounts files
 * there are now. Those are named from the first watch on: chokidar reports `ready` once the paths
 * it was given are watched, but watches the directories it finds inside them (a tmcc directory)
 * only some milliseconds later, and an accounts file first named by a later refresh was set up
 * again while it changed; in both windows a change was lost (test/integration/sshd.test.ts).
 */
export function identityWatchPaths(paths: NodePaths, configFile: string | undefined): string[] {
  return [paths.bootDir, ...accountsFiles(paths), paths.hostnameFile, ...(configFile ? [configFile] : paths.configCandidates)];
}

/** `tmcc/accounts`, and `tmcc.<vnode>/accounts` of every vnode directory there is now. */
function accountsFiles(paths: NodePaths): string[] {
  const files = [accountsFileFor(paths)];
  try {
    for (const e of fs.readdirSync(paths.bootDir, { withFileTypes: true })) {
      if (e.isDirectory() && /^tmcc\.[-\w.]+$/.test(e.name)) files.push(path.join(paths.bootDir, e.name, 'accounts'));
    }
  } catch {
    // no boot directory (yet): its watch sees it arrive
  }
  return files;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The last identity a refresh derived, as the cache records it (META_IDENTITY); undefined when none or unreadable. */
export function lastIdentity(cache: KeyCache): IdentityResult | undefined {
  try {
    const raw = cache.getMeta(META_IDENTITY);
    const parsed = raw ? (JSON.parse(raw) as IdentityResult) : undefined;
    return typeof parsed?.identity?.slicename === 'string' && typeof parsed.identity.slice?.urn === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run one refresh. `geniGet`: also ask the testbed (start-up and explicit refresh only).
 * Each step fails on its own: a refused identity or an unwritable /etc does not stop the keys
 * from being updated, and a cache that cannot be written keeps serving what it holds.
 */
export async function refreshOnce(
  ctx: RefreshContext,
  trigger: string,
  geniGet: boolean,
  served?: (outcome: RefreshOutcome) => void,
): Promise<RefreshOutcome> {
  const started = monotonicMs();
  const { paths, config, cache, logger } = ctx;
  const useGeniGet = geniGet && config.geniGet.enabled;
  const faults: string[] = [];
  const tryCache = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      faults.push(`cache: could not ${what}: ${message(err)}`);
    }
  };

  let identity: IdentityResult | undefined;
  let identityError: string | undefined;
  try {
    // The daemon's first refresh (lifecycle's 'start') checks that the state is this node's.
    identity = await refreshIdentity(paths, config, { geniGet: useGeniGet, logger, start: trigger === 'start' });
  } catch (err) {
    if (err instanceof InputError) {
      identityError = err.message;
      logger.error({ where: err.where, value: err.value, rule: err.rule }, `identity refused: ${err.message}`);
    } else {
      identityError = `identity files not updated: ${message(err)}`;
      logger.error({ err: message(err) }, identityError);
    }
    faults.push(identityError);
  }
  // A failed geni-get call whose kept answer stands (src/sources/geniget-kept.ts): status says so.
  if (identity) faults.push(...identity.notes);
  tryCache('record the identity', () => {
    // nextRenewal as Date#toJSON would write it, without Date#toJSON (src/time.ts).
    if (identity) cache.setMeta(META_IDENTITY, JSON.stringify({ ...identity, nextRenewal: isoTime(identity.nextRenewal) }));
    cache.setMeta(META_IDENTITY_ERROR, identityError ?? '');
  });
  const identityMs = monotonicMs() - started;
  // Degrade, never vanish: without an identity now, the last good one keeps being served.
  const current = identity ?? lastIdentity(cache);
  if (!identity) {
    faults.push(
      current
        ? `serving the last good identity (slice ${current.identity.slicename}) and the cached keys until the testbed data gives one again`
        : 'no identity yet: no slice is served until the testbed data gives one (the daemon keeps watching)',
    );
  }

  const vnodeId = current?.facts.vmname?.value;
  const policy = loginPolicy(paths, current?.identity);
  const { changed: keysChanged, confirmInMs, applied, kept } = await applyKeySources(ctx, vnodeId, useGeniGet, policy, faults);
  let changed = keysChanged;
  const users = cache.users();
  const watchPaths = [...new Set([...identityWatchPaths(paths, ctx.configFile), ...keyWatchPaths(paths, vnodeId)])];
  const userFiles = userKeyFiles(paths, users);
  const durationMs = Math.round((monotonicMs() - started) * 10) / 10;
  const keys = cache.sliceKeys().length;
  const filesChanged = identity ? identity.written.length > 0 : false;
  changed ||= filesChanged;
  const summary = `${users.length} users, ${keys} keys; applied ${applied.join(', ') || 'none'}${kept.length ? `; kept last good ${kept.join(', ')}` : ''}`;
  tryCache('record the refresh', () => cache.recordRefresh({ at: Date.now(), trigger, durationMs, changed, summary }));
  for (const f of faults.slice(identityError ? 1 : 0)) logger.error(f);
  logger.info(
    {
      trigger,
      durationMs,
      identityMs: Math.round(identityMs * 10) / 10,
      slicename: current?.identity.slicename,
      issued: identity?.issued,
      written: identity?.written,
      users: users.length,
      keys,
      changed,
      stale: kept,
      faults: faults.length ? faults : undefined,
    },
    'refresh',
  );
  const outcome = { identity, identityError, served: current, watchPaths, userKeyFiles: userFiles, changed, faults, confirmInMs };
  // What the API serves is complete from here on (`served` hands it over); sshd's key files
  // follow, yielding to the API's requests between files (10,000 new users: ~1.5 s), and their
  // faults join this refresh's before it counts as done.
  served?.(outcome);
  // Never a key file for root or a system account, whatever the cache holds.
  await sshdKeysStep(ctx, users.some((u) => isSystemAccount(u, policy)) ? users.filter((u) => !isSystemAccount(u, policy)) : users, geniGet, faults);
  return outcome;
}

/**
 * Read the key sources and apply them to the cache (the shrink guard deciding what may shrink).
 * A function of its own so that the parsed sources (10,000 users: the file's text and 30,000
 * parsed keys) are garbage as soon as it returns, before the sshd key files are written.
 */
async function applyKeySources(
  ctx: RefreshContext,
  vnodeId: string | undefined,
  useGeniGet: boolean,
  policy: LoginPolicy,
  faults: string[],
): Promise<{ changed: boolean; confirmInMs: number | undefined; applied: string[]; kept: string[] }> {
  const { paths, config, cache, logger } = ctx;
  const sources = await collectKeySources(paths, { vnodeId, geniGet: useGeniGet, timeoutMs: config.geniGet.timeoutMs, logger, userFiles: ctx.userFiles });
  const states = new Map(cache.sources().map((s) => [s.id, s]));
  const refusals = new Map<string, string[]>(Object.entries(readRefusals(cache)));
  let changed = false;
  let confirmInMs: number | undefined;
  const applied: string[] = [];
  const kept: string[] = [];
  for (const read of sources) {
    for (const problem of read.problems) logger.warn({ source: read.id, where: problem.where }, problem.message);
    // Logins that are not this node's accounts are left out, whatever the source says.
    const { result, refused } = admitUsers(ownersRemoval(read, states.get(read.id)), policy);
    if (read.status === 'ok' || read.status === 'partial' || read.removedByOwner) refusals.set(read.id, refused);
    for (const r of refused) logger.warn({ source: read.id }, r);
    const verdict = ctx.shrinkGuard.check(result, states.get(result.id));
    if (!verdict.apply) {
      kept.push(result.id);
      confirmInMs = Math.min(confirmInMs ?? Infinity, verdict.confirmInMs);
      logger.warn({ source: result.id }, `keeping last good data: ${verdict.reason}`);
      continue;
    }
    try {
      const outcome = cache.applySource(result);
      changed ||= outcome.changed;
      (outcome.applied ? applied : kept).push(result.id);
      if (!outcome.applied) logger.warn({ source: result.id, status: result.status }, `keeping last good data: ${outcome.reason}`);
    } catch (err) {
      kept.push(result.id);
      faults.push(`cache: could not store ${result.id}: ${message(err)}`);
    }
  }
  // A user's authorized_keys stops being a source only when a complete accounts file says so.
  const accounts = sources.find((s) => s.id === ACCOUNTS_SOURCE_ID);
  if (accounts?.status === 'ok' && applied.includes(accounts.id)) {
    const current = new Set(sources.map((s) => s.id));
    for (const state of states.values()) {
      if (!state.id.startsWith(AUTHORIZED_KEYS_PREFIX) || current.has(state.id)) continue;
      // Dropping a source loses its keys: the shrink guard confirms it like any other shrink.
      const verdict = ctx.shrinkGuard.check({ id: state.id, origin: state.origin, status: 'ok', users: [], problems: [] }, state);
      if (verdict.apply) {
        try {
          changed = cache.dropSource(state.id) || changed;
        } catch (err) {
          faults.push(`cache: could not drop ${state.id}: ${message(err)}`);
        }
      } else {
        kept.push(state.id);
        confirmInMs = Math.min(confirmInMs ?? Infinity, verdict.confirmInMs);
        logger.warn({ source: state.id }, `keeping last good data: no longer listed by the accounts file; ${verdict.reason}`);
      }
    }
  }
  // What was refused, per source still cached (a source read as missing keeps its last sentences).
  const cachedIds = new Set(cache.sources().map((s) => s.id));
  const now = Object.fromEntries([...refusals].filter(([id, list]) => list.length && cachedIds.has(id)));
  try {
    if (JSON.stringify(now) !== JSON.stringify(readRefusals(cache))) cache.setMeta(META_REFUSED, JSON.stringify(now));
  } catch (err) {
    faults.push(`cache: could not record refused users: ${message(err)}`);
  }
  return { changed, confirmInMs, applied, kept };
}

/** The refused users the cache records (META_REFUSED), per source id. */
export function readRefusals(cache: KeyCache): Record<string, string[]> {
  try {
    const parsed = JSON.parse(cache.getMeta(META_REFUSED) ?? '{}') as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string[]] => Array.isArray(e[1]) && e[1].every((x) => typeof x === 'string')));
  } catch {
    return {};
  }
}

/**
 * A user-owned source its owner deleted or emptied (src/keys/authorized-keys.ts) that served keys:
 * read as complete and empty, so that the shrink guard applies it once it lasts (the user's own
 * decision, such as revoking the key of a stolen laptop) and a transient rewrite never does.
 * Anything else is left as read (a missing testbed file keeps its last good data).
 */
export function ownersRemoval(result: SourceResult, cached: SourceState | undefined): SourceResult {
  if (!result.removedByOwner || cached?.lastGood === undefined || (cached.keys === 0 && cached.users === 0)) return result;
  return { ...result, status: 'ok', users: [result.removedByOwner], reason: `${result.reason ?? 'removed'} (by its owner)` };
}

/**
 * The key files sshd reads (src/writers/sshd-keys.ts), from what the cache now serves. Fails on
 * its own: an unsafe or unwritable directory is a fault, the previous files stay. A full refresh
 * (start-up, SIGHUP) reads every file again instead of trusting what this process wrote.
 */
async function sshdKeysStep(ctx: RefreshContext, users: ReturnType<KeyCache['users']>, full: boolean, faults: string[]): Promise<void> {
  const started = monotonicMs();
  const fault = (text: string): void => {
    ctx.logger.error(text);
    faults.push(text);
  };
  try {
    const out = await writeSshdKeys(ctx.paths, users, full);
    for (const p of out.problems) fault(`sshd keys: ${p}`);
    if (out.written.length || out.removed.length) {
      const ms = Math.round((monotonicMs() - started) * 10) / 10;
      ctx.logger.info({ dir: ctx.paths.sshdKeysDir, written: out.written.length, removed: out.removed.length, ms }, 'sshd key files updated');
    }
  } catch (err) {
    fault(`sshd keys: files not updated: ${message(err)}`);
  }
}
