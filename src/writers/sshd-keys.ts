// The key files sshd reads itself (AuthorizedKeysFile /etc/sliceid/authorized_keys/%u): one file
// per slice user with keys, holding exactly what `sliceid authorized-keys USER` prints (every key
// of the user, one per line), 0644 in 0755 directories. A file is replaced atomically (temp file
// and rename) and only when its content changes; users no longer in the cache lose their file
// (the cache drops a user only when a complete accounts file says so, through the shrink guard).
//
// sshd's StrictModes accepts a key file only when the file and every directory above it are
// owned by root (or the user) and not writable by group or others. The writer creates its
// directories that way, fixes the modes of its own directories (/etc/sliceid and below), and
// refuses to write when a directory above them (from the root prefix down) is not safe.
//
// Cost: a file is written without an fsync of its own (10,000 fsyncs take a minute on a busy
// disk); the directory is synced once per batch and the files are rewritten from the cache at
// every start, so a crash can only lose what the next start puts back. The work yields to the
// event loop every few hundred files, so that a first pass over 10,000 users (about a second and
// a half) never holds the API's answers back. What is on disk is
// remembered between refreshes (checked against one directory listing), so a refresh that
// changes one user touches one file; a full refresh reads every file again.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { NodePaths } from '../paths.js';
import { LOGIN } from '../keys/accounts.js';
import { fsyncDir, replaceFile } from '../fs/atomic.js';

export interface SshdKeysUser {
  readonly login: string;
  readonly keys: readonly string[];
}

export interface SshdKeysOutcome {
  /** Logins whose file was (re)written. */
  readonly written: readonly string[];
  /** Logins whose file was removed. */
  readonly removed: readonly string[];
  /** Users whose key file could not be written (name or I/O), one sentence each. */
  readonly problems: readonly string[];
}

/** The directory (0755) and file (0644) modes sshd's StrictModes accepts. */
export const SSHD_KEYS_DIR_MODE = 0o755;
export const SSHD_KEY_FILE_MODE = 0o644;

/** What a user's key file holds: the keys one per line, as `authorized-keys USER` prints them. */
export function keyFileContent(keys: readonly string[]): string {
  return keys.length ? `${keys.join('\n')}\n` : '';
}

/** A login that can name a file: Emulab's grammar (no `/`, no `.`, so no `..`). */
export function isKeyFileLogin(login: string): boolean {
  return LOGIN.test(login);
}

export class UnsafePathError extends Error {
  override readonly name = 'UnsafePathError';
}

const euid = (): number => process.geteuid?.() ?? 0;

/** Why sshd's StrictModes would refuse `dir` as a directory above every user's key file, or undefined. */
function unsafeDir(dir: string, st: fs.Stats): string | undefined {
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== 0) return `${dir} is owned by uid ${st.uid}, not root (sshd's StrictModes refuses the key files below it)`;
  if ((st.mode & 0o022) !== 0) return `${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}; sshd's StrictModes refuses the key files below it)`;
  return undefined;
}

/** `dir`'s stat (by `stat`, following links or not); a missing directory is made 0755 first. */
function statOrMake(dir: string, stat: (p: string) => fs.Stats): fs.Stats {
  try {
    return stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(dir, { mode: SSHD_KEYS_DIR_MODE });
    fs.chmodSync(dir, SSHD_KEYS_DIR_MODE); // whatever the umask
    return stat(dir);
  }
}

/**
 * Check the path down to the key directory and make the directories sliceid owns
 * (`/etc/sliceid`, `/etc/sliceid/authorized_keys`): created 0755, group/other write bits of
 * existing ones cleared. Throws UnsafePathError naming the directory and the rule.
 */
export function prepareKeysDir(paths: NodePaths): void {
  const keysDir = paths.sshdKeysDir;
  const owned = [path.dirname(keysDir), keysDir];
  // From the root prefix down to the directory above ours (on a node: /, /etc).
  const above: string[] = [];
  for (let d = path.dirname(owned[0]!); ; d = path.dirname(d)) {
    above.unshift(d);
    if (d === paths.root || d === path.dirname(d)) break;
  }
  for (const dir of above) {
    const why = unsafeDir(dir, statOrMake(dir, fs.statSync));
    if (why) throw new UnsafePathError(why);
  }
  for (const dir of owned) {
    let st = statOrMake(dir, fs.lstatSync);
    if (st.isSymbolicLink()) throw new UnsafePathError(`${dir} is a symbolic link (sliceid keeps it a root-owned directory)`);
    // Ours: no group/other write, and every user may look up their file (sshd reads it as the user).
    if (st.isDirectory() && st.uid === euid() && (st.mode & 0o777 & ~0o022 | 0o755) !== (st.mode & 0o777)) {
      fs.chmodSync(dir, (st.mode & 0o7777 & ~0o022) | 0o755);
      st = fs.lstatSync(dir);
    }
    const why = unsafeDir(dir, st);
    if (why) throw new UnsafePathError(why);
  }
}

/** Per key directory: login -> digest of the content known to be there, as of this process's last
 * sync (a digest, not the text: the cache already holds every key once). */
const memos = new Map<string, Map<string, string>>();

/** What a file's content is remembered by; sentinels for what is not a file of ours start with NUL. */
const digest = (content: string): string => crypto.createHash('sha256').update(content).digest('base64');

/** Forget what is known to be on disk (the next sync reads every file). */
export function forgetSshdKeys(paths: NodePaths): void {
  memos.delete(paths.sshdKeysDir);
}

/** Temp files of our own writes: `.<login>.<12 hex>.tmp` (as src/fs/atomic.ts names them). */
const TEMP_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * What the directory holds: `known` (what this process last wrote) updated from one listing,
 * so that a file removed or added behind our back is noticed; files not in `known` are read.
 * A non-regular entry, or a file with another owner or mode, reads as content no user has.
 */
async function readDirState(dir: string, known: Map<string, string> | undefined): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let done = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (++done % YIELD_EVERY === 0) await yieldToEventLoop();
    if (TEMP_RE.test(entry.name)) {
      // Left by a write a kill interrupted: never complete, never needed.
      fs.rmSync(path.join(dir, entry.name), { force: true });
      continue;
    }
    if (!isKeyFileLogin(entry.name)) continue; // not ours: left alone
    const remembered = entry.isFile() ? known?.get(entry.name) : undefined;
    if (remembered !== undefined) {
      files.set(entry.name, remembered);
      continue;
    }
    if (!entry.isFile()) {
      files.set(entry.name, '\0not a regular file');
      continue;
    }
    const file = path.join(dir, entry.name);
    const st = fs.lstatSync(file);
    const ok = st.uid === euid() && (st.mode & 0o7777) === SSHD_KEY_FILE_MODE;
    files.set(entry.name, ok ? digest(fs.readFileSync(file, 'utf8')) : '\0wrong owner or mode');
  }
  return files;
}

/** Files handled between two turns of the event loop (~20-40 ms of work). */
const YIELD_EVERY = 250;
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** One sync's temp names: a random 48-bit start, one step per file. */
class Batch {
  private next = crypto.randomBytes(6).readUIntBE(0, 6);

  tempName(login: string): string {
    this.next = (this.next + 1) % 2 ** 48;
    return `.${login}.${this.next.toString(16).padStart(12, '0')}.tmp`;
  }
}

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/**
 * Make the key directory hold one file per user with keys, and nothing else of ours.
 * `verify`: read every file again instead of trusting what this process wrote last (start-up and
 * full refreshes). Rejects with UnsafePathError (nothing written) when the path is not safe for sshd,
 * or an I/O error when the directory cannot be read; per-user failures are in `problems`.
 */
export async function writeSshdKeys(paths: NodePaths, users: readonly SshdKeysUser[], verify = false): Promise<SshdKeysOutcome> {
  const dir = paths.sshdKeysDir;
  prepareKeysDir(paths);
  const known = verify ? undefined : memos.get(dir);
  memos.delete(dir); // rebuilt below; an error on the way leaves nothing to trust
  const files = await readDirState(dir, known);
  const written: string[] = [];
  const removed: string[] = [];
  const problems: string[] = [];
  const wanted = new Set<string>();
  const batch = new Batch();
  let done = 0;
  for (const user of users) {
    if (++done % YIELD_EVERY === 0) await yieldToEventLoop();
    if (!user.keys.length) continue;
    if (!isKeyFileLogin(user.login)) {
      problems.push(`login ${JSON.stringify(user.login)} is not a valid login (Emulab's [-\\w]{1,64}); no key file`);
      continue;
    }
    wanted.add(user.login);
    const content = keyFileContent(user.keys);
    const sum = digest(content);
    if (files.get(user.login) === sum) continue;
    try {
      // Not a regular file of ours (a directory, a link): out of the way first.
      if (files.get(user.login)?.startsWith('\0')) fs.rmSync(path.join(dir, user.login), { recursive: true, force: true });
      replaceFile(path.join(dir, user.login), content, SSHD_KEY_FILE_MODE, { fsync: false, tempName: batch.tempName(user.login) });
      files.set(user.login, sum);
      written.push(user.login);
    } catch (err) {
      files.delete(user.login);
      problems.push(`could not write ${path.join(dir, user.login)}: ${code(err)}`);
    }
  }
  for (const login of [...files.keys()]) {
    if (wanted.has(login)) continue;
    try {
      fs.rmSync(path.join(dir, login), { force: true, recursive: true });
      files.delete(login);
      removed.push(login);
    } catch (err) {
      problems.push(`could not remove ${path.join(dir, login)}: ${code(err)}`);
    }
  }
  if (written.length || removed.length) fsyncDir(dir);
  memos.set(dir, files);
  return { written, removed, problems };
}
