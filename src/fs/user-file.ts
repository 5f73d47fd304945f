// Reading a file a slice user controls (~/.ssh/authorized_keys) as root without being tricked,
// the way sshd's StrictModes does, and stricter where sshd reads as the user and we do not:
//   - the home directory (a symlink to it is fine: automounters make those) resolves to a
//     directory owned by the user or root and not group- or world-writable;
//   - every directory below it is a real directory (not a symlink), owned by the user or root,
//     not group- or world-writable (sshd's secure_path);
//   - the file is opened O_NOFOLLOW | O_NONBLOCK | O_NOCTTY (a symlink is refused, a FIFO or a
//     device never blocks the open), then fstat'ed on that descriptor: a regular file owned by
//     the user or root, not group- or world-writable, not a hard link to someone else's file,
//     at most `maxBytes`;
//   - the descriptor is the file at that path (/proc/self/fd and the inode agree), so a directory
//     swapped for a symlink between the checks and the open is caught;
//   - it is read from that same descriptor, asynchronously and within `timeoutMs`, so a hung NFS
//     server or any trick delays one source, never the event loop.
// Refusals name the rule broken and the path; nothing of the file's content is ever in them.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** Each check, by name (in messages and tests). */
export type UserFileRule =
  | 'home-not-directory'
  | 'dir-symlink'
  | 'dir-not-directory'
  | 'dir-owner'
  | 'dir-writable'
  | 'file-symlink'
  | 'file-not-regular'
  | 'file-owner'
  | 'file-writable'
  | 'file-hard-link'
  | 'file-moved'
  | 'file-too-large'
  | 'read-timeout'
  | 'read-error';

export interface UserFileRequest {
  /** The user's home directory, as a node path already rebased under the root prefix. */
  readonly home: string;
  /** The file below the home directory, e.g. ".ssh/authorized_keys" (no "..", no leading /). */
  readonly relative: string;
  /** The user's uid (tmcc accounts UID=): the only owner besides root that is trusted. */
  readonly uid: number;
  readonly maxBytes: number;
  /** The whole check and read, start to end. */
  readonly timeoutMs: number;
}

export type UserFileOutcome =
  | { readonly kind: 'data'; readonly data: Buffer; readonly file: string }
  /** `home`: the home directory itself is missing (an NFS home not mounted), not just the file. */
  | { readonly kind: 'missing'; readonly file: string; readonly reason: string; readonly home?: true }
  | { readonly kind: 'refused'; readonly file: string; readonly rule: UserFileRule; readonly reason: string };

/** Long enough for a busy machine (the read shares libuv's 4 threads), short enough for a hung NFS server. */
export const USER_FILE_TIMEOUT_MS = 10_000;

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;
const OPEN_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;

/** A refused file or directory, by rule (also thrown by the guest reader, src/host/guest-user-file.ts). */
export class Refusal extends Error {
  constructor(
    readonly rule: UserFileRule,
    message: string,
  ) {
    super(message);
  }
}

/** A file, or the home, that is not there. */
export class Missing extends Error {
  constructor(
    message: string,
    readonly home = false,
  ) {
    super(message);
  }
}

/** Owners trusted besides the user: root, and the uid sliceid runs as (tests run it unprivileged). */
function trustedOwner(owner: number, uid: number): boolean {
  return owner === uid || owner === 0 || owner === process.geteuid?.();
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function checkDir(dir: string, st: fs.Stats, uid: number): void {
  if (!trustedOwner(st.uid, uid)) throw new Refusal('dir-owner', `${dir} is owned by uid ${st.uid}, not by the user (uid ${uid}) or root`);
  if (st.mode & 0o022) throw new Refusal('dir-writable', `${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`);
}

/** Files still being read after their deadline (a hung NFS server): not asked again until done. */
const stuck = new Set<string>();

/** Read a user-controlled file under the rules above. Never throws for anything the user can do. */
export async function readUserFile(req: UserFileRequest): Promise<UserFileOutcome> {
  const display = path.join(req.home, req.relative);
  if (stuck.has(display)) {
    return { kind: 'refused', file: display, rule: 'read-timeout', reason: `${display}: an earlier read has not finished (file system not answering)` };
  }
  let timer: NodeJS.Timeout | undefined;
  const work = checkedRead(req);
  const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), req.timeoutMs)));
  const outcome = await Promise.race([work, deadline]);
  clearTimeout(timer);
  if (outcome !== 'late') return outcome;
  stuck.add(display);
  void work.finally(() => stuck.delete(display));
  return { kind: 'refused', file: display, rule: 'read-timeout', reason: `${display} was not read within ${req.timeoutMs} ms` };
}

async function checkedRead(req: UserFileRequest): Promise<UserFileOutcome> {
  const { uid } = req;
  const parts = req.relative.split('/');
  let file = path.join(req.home, req.relative);
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`bad relative path ${req.relative}`);
  try {
    // The home directory: symlinks allowed (automounters), judged by where they lead.
    let home: string;
    try {
      home = await fsp.realpath(req.home);
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') throw new Missing(`home directory ${req.home} does not exist`, true);
      throw err;
    }
    const homeSt = await fsp.stat(home);
    if (!homeSt.isDirectory()) throw new Refusal('home-not-directory', `home directory ${req.home} is not a directory`);
    checkDir(req.home, homeSt, uid);
    // Directories below it: real directories only.
    let dir = home;
    const dirs: Array<[string, fs.Stats]> = [];
    for (const name of parts.slice(0, -1)) {
      dir = path.join(dir, name);
      const st = await lstatOrMissing(dir);
      if (st.isSymbolicLink()) throw new Refusal('dir-symlink', `${dir} is a symbolic link`);
      if (!st.isDirectory()) throw new Refusal('dir-not-directory', `${dir} is not a directory`);
      checkDir(dir, st, uid);
      dirs.push([dir, st]);
    }
    file = path.join(dir, parts[parts.length - 1]!);
    const handle = await openOrMissing(file);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new Refusal('file-not-regular', `${file} is not a regular file`);
      if (!trustedOwner(st.uid, uid)) throw new Refusal('file-owner', `${file} is owned by uid ${st.uid}, not by the user (uid ${uid}) or root`);
      if (st.mode & 0o022) throw new Refusal('file-writable', `${file} is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`);
      if (st.nlink > 1 && st.uid !== uid) throw new Refusal('file-hard-link', `${file} is a hard link to a file the user does not own`);
      if (st.size > req.maxBytes) throw new Refusal('file-too-large', `${file} is larger than ${req.maxBytes} bytes`);
      await sameFile(handle, st, file, dirs);
      const data = await readBounded(handle, req.maxBytes);
      if (data === undefined) throw new Refusal('file-too-large', `${file} is larger than ${req.maxBytes} bytes`);
      if (data.length === 0) return { kind: 'missing', file, reason: `${file} is empty` };
      return { kind: 'data', data, file };
    } finally {
      await handle.close().catch(() => undefined);
    }
  } catch (err) {
    if (err instanceof Missing) return { kind: 'missing', file, reason: err.message, ...(err.home ? { home: true as const } : {}) };
    if (err instanceof Refusal) return { kind: 'refused', file, rule: err.rule, reason: err.message };
    // Only the error code: an errno message names the path and nothing else, but keep it short.
    return { kind: 'refused', file, rule: 'read-error', reason: `${file} cannot be read (${code(err) ?? 'error'})` };
  }
}

async function lstatOrMissing(p: string): Promise<fs.Stats> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    if (code(err) === 'ENOENT') throw new Missing(`${p} does not exist`);
    if (code(err) === 'ENOTDIR') throw new Refusal('dir-not-directory', `${path.dirname(p)} is not a directory`);
    throw err;
  }
}

async function openOrMissing(file: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, OPEN_FLAGS);
  } catch (err) {
    switch (code(err)) {
      case 'ENOENT':
        throw new Missing(`${file} does not exist`);
      case 'ELOOP':
        throw new Refusal('file-symlink', `${file} is a symbolic link`);
      case 'ENXIO': // a Unix socket
      case 'ENODEV':
      case 'EISDIR':
        throw new Refusal('file-not-regular', `${file} is not a regular file`);
      case 'ENOTDIR':
        throw new Refusal('dir-not-directory', `${path.dirname(file)} is not a directory`);
      default:
        throw err;
    }
  }
}

/**
 * The descriptor is the file at `file`: the kernel's name for it (/proc/self/fd, where /proc is
 * mounted) is that path, and the path's inode is the descriptor's. A directory swapped for a
 * symlink between the checks and the open shows up in the first; a file renamed over in the second.
 */
async function sameFile(handle: fsp.FileHandle, st: fs.Stats, file: string, dirs: ReadonlyArray<[string, fs.Stats]>): Promise<void> {
  let actual: string | undefined;
  try {
    actual = await fsp.readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    actual = undefined; // no /proc: the directories and the inode are compared again instead
  }
  if (actual !== undefined && actual !== file) throw new Refusal('file-moved', `${file} was not the file opened at that path (a directory or the file changed during the read)`);
  if (actual === undefined) {
    for (const [dir, before] of dirs) {
      const now = await lstatOrMissing(dir);
      if (now.isSymbolicLink() || now.ino !== before.ino || now.dev !== before.dev) throw new Refusal('file-moved', `${dir} changed while the file was opened`);
    }
  }
  const now = await lstatOrMissing(file);
  if (now.ino !== st.ino || now.dev !== st.dev) throw new Refusal('file-moved', `${file} was replaced while it was read`);
}

/** Up to `max` bytes from the descriptor; undefined when there is more. */
async function readBounded(handle: fsp.FileHandle, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const room = Math.min(64 * 1024, max + 1 - total);
    const buf = Buffer.allocUnsafe(room);
    const { bytesRead } = await handle.read(buf, 0, room, total);
    if (bytesRead === 0) break;
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > max) return undefined;
  }
  return Buffer.concat(chunks, total);
}
