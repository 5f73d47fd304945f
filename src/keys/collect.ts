// Every key source of the node, in priority order: the tmcc accounts file, the authorized_keys of
// accounts users without PUBKEY lines (one source each), then geni-get geni_user (network, so only
// when asked for: start-up and explicit refresh; file events re-read only the files).
import fs from 'node:fs';
import path from 'node:path';
import type { NodePaths } from '../paths.js';
import type { Logger } from '../log.js';
import type { SourceId, SourceResult } from './types.js';
import { readAccounts, type AccountsSource } from './accounts.js';
import { AUTHORIZED_KEYS_PREFIX, readAuthorizedKeys, type UserFileReader } from './authorized-keys.js';
import { readGeniUser } from './geni-user.js';
import { readFirstLine } from '../sources/emulab.js';

export interface CollectOptions {
  /** Virtual node id (tmcc.<vnodeId>/), when known from the identity facts. */
  readonly vnodeId?: string | undefined;
  /** Also run geni-get geni_user (a network call). */
  readonly geniGet: boolean;
  readonly timeoutMs: number;
  readonly logger?: Logger | undefined;
  /**
   * Where users' files are: absent on a node (a home is `paths.under(HOMEDIR)`, read with
   * readUserFile); for a shared host's guest, HOMEDIR as written, read inside the guest.
   */
  readonly userFiles?: { readonly home: (homedir: string) => string; readonly read: UserFileReader } | undefined;
}

const DIR_NAME = /^[A-Za-z0-9][-\w.]{0,63}$/;

function isDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** A boot file naming a tmcc directory (vmname, nodeid), when it holds a plausible name. */
function bootFile(paths: NodePaths, name: string): string | undefined {
  try {
    const v = readFirstLine(path.join(paths.bootDir, name));
    return v !== undefined && DIR_NAME.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The tmcc cache directory: tmcc.<vnodeId> when given and present, else tmcc.<vmname> or
 * tmcc.<nodeid> when such a directory exists, else tmcc/ (which may be missing right now).
 */
export function tmccDirFor(paths: NodePaths, vnodeId?: string): string {
  const candidates = [vnodeId, bootFile(paths, 'vmname'), bootFile(paths, 'nodeid')];
  for (const id of candidates) {
    if (id && DIR_NAME.test(id) && isDir(paths.tmccDir(id))) return paths.tmccDir(id);
  }
  return paths.tmccDir();
}

export function accountsFileFor(paths: NodePaths, vnodeId?: string): string {
  return path.join(tmccDirFor(paths, vnodeId), 'accounts');
}

/**
 * The file sources (accounts, then authorized_keys of users without PUBKEY lines). No network.
 * The users' files are read asynchronously (a slow or hostile one delays only its own source).
 */
export async function collectFileSources(paths: NodePaths, vnodeId?: string, userFiles?: CollectOptions['userFiles']): Promise<SourceResult[]> {
  const accounts: AccountsSource = readAccounts(accountsFileFor(paths, vnodeId));
  const reads: Array<() => Promise<SourceResult>> = [];
  accounts.users.forEach((user, i) => {
    if (accounts.pubkeyLogins.has(user.login) || !user.homedir) return;
    const { keys: _ignored, ...account } = user;
    reads.push(() => (userFiles ? readAuthorizedKeys(userFiles.home(user.homedir!), account, 1 + i, userFiles.read) : readAuthorizedKeys(paths.under(user.homedir!), account, 1 + i)));
  });
  return [accounts, ...(await inParallel(reads, USER_FILE_READS))];
}

/** Users' files read at once: enough to hide latency, few enough that each read's deadline is its own. */
const USER_FILE_READS = 8;

/** Run `tasks` with at most `limit` at a time; results in the tasks' order. */
async function inParallel<T>(tasks: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const out = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

/** All key sources in priority order. geni-get's absence means no source at all. */
export async function collectKeySources(paths: NodePaths, opts: CollectOptions): Promise<SourceResult[]> {
  const out = await collectFileSources(paths, opts.vnodeId, opts.userFiles);
  if (opts.geniGet) {
    const geni = await readGeniUser(paths, { timeoutMs: opts.timeoutMs, logger: opts.logger });
    if (geni) out.push(geni);
  }
  return out;
}

export function authorizedKeysFile(paths: NodePaths, homedir: string): string {
  return path.join(paths.under(homedir), '.ssh', 'authorized_keys');
}

/** What keyWatchPaths needs to know of a user (UserView from the cache fits). */
export interface WatchedUser {
  readonly login: string;
  readonly homedir?: string | undefined;
  readonly keys: readonly unknown[];
  readonly sources: readonly SourceId[];
}

/**
 * The testbed's paths to watch for keys: the boot dir (tmcc dirs are deleted and rewritten in
 * it) and the accounts file. Users' files are userKeyFiles (watched apart: src/daemon/watch.ts).
 */
export function keyWatchPaths(paths: NodePaths, vnodeId: string | undefined): string[] {
  const out = new Set<string>([paths.bootDir, accountsFileFor(paths, vnodeId)]);
  if (vnodeId && DIR_NAME.test(vnodeId)) out.add(path.join(paths.tmccDir(vnodeId), 'accounts'));
  return [...out];
}

/**
 * The authorized_keys files of the users served from one (or with no key at all yet), one per
 * user whatever is in their homes (Emulab replaces a file via .new + rename).
 */
export function userKeyFiles(paths: NodePaths, users: readonly WatchedUser[]): string[] {
  const out = new Set<string>();
  for (const u of users) {
    if (!u.homedir) continue;
    if (u.sources.includes(AUTHORIZED_KEYS_PREFIX + u.login) || u.keys.length === 0) out.add(authorizedKeysFile(paths, u.homedir));
  }
  return [...out];
}
