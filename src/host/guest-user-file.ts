// A slice user's file inside a guest (~/.ssh/authorized_keys), read by the host daemon under the
// rules of src/fs/user-file.ts (sshd's StrictModes, stricter), but resolved inside the guest: the
// home (HOMEDIR of the accounts entry, as written) is walked from a descriptor of the guest's root
// one component at a time, each opened O_NOFOLLOW relative to the one before (/proc/self/fd/N/name),
// a symlink on the way to the home read and taken against the guest's root, never the host's
// (bounded hops); below the home nothing is followed: ~/.ssh a real directory, the file opened
// O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, then fstat'ed: a regular file owned by the user or root, not
// group- or world-writable, not a hard link to someone else's file, at most maxBytes. Everything
// is asynchronous and descriptor-relative (no path is resolved twice, so nothing can be swapped
// between a check and the read), within timeoutMs: a hung NFS home in one guest delays that
// source, never the event loop nor another guest. Refusals name the rule and the guest path.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Missing, Refusal, type UserFileOutcome, type UserFileRequest } from '../fs/user-file.js';
import type { UserFileReader } from '../keys/authorized-keys.js';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } = fs.constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
const MAX_HOPS = 40;
const MAX_COMPONENTS = 256;


const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
const at = (fh: fsp.FileHandle, name: string): string => `/proc/self/fd/${fh.fd}/${name}`;
const parts = (p: string): string[] => p.split('/').filter((c) => c !== '' && c !== '.');
const trusted = (owner: number, uid: number): boolean => owner === uid || owner === 0 || owner === process.geteuid?.();
const modeOf = (st: fs.Stats): string => (st.mode & 0o7777).toString(8).padStart(4, '0');

function checkDir(dir: string, st: fs.Stats, uid: number): void {
  if (!trusted(st.uid, uid)) throw new Refusal('dir-owner', `${dir} is owned by uid ${st.uid}, not by the user (uid ${uid}) or root`);
  if (st.mode & 0o022) throw new Refusal('dir-writable', `${dir} is writable by group or others (mode ${modeOf(st)})`);
}

/** Files of a guest still being read after their deadline: not asked again until done. */
const stuck = new Set<string>();

/**
 * A reader of users' files inside a guest: `openRoot` gives a new descriptor of the guest's root
 * (guest-fs's openRoot), closed by the reader. `req.home` is the guest path (HOMEDIR as written).
 */
export function guestUserFileReader(guest: string, openRoot: () => number): UserFileReader {
  return async (req) => {
    const display = path.posix.join(req.home, req.relative);
    const key = `${guest}\0${display}`;
    if (stuck.has(key)) return { kind: 'refused', file: display, rule: 'read-timeout', reason: `${display}: an earlier read has not finished (file system not answering)` };
    let rootFd: number;
    try {
      rootFd = openRoot();
    } catch (err) {
      return { kind: 'refused', file: display, rule: 'read-error', reason: `${display} cannot be read (the guest's root: ${code(err) ?? 'error'})` };
    }
    const held: fsp.FileHandle[] = [];
    const work = readInGuest(rootFd, req, display, held).finally(async () => {
      for (const fh of held) await fh.close().catch(() => undefined);
      await new Promise<void>((resolve) => fs.close(rootFd, () => resolve()));
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), req.timeoutMs)));
    const outcome = await Promise.race([work, late]);
    clearTimeout(timer);
    if (outcome !== 'late') return outcome;
    stuck.add(key);
    void work.finally(() => stuck.delete(key));
    return { kind: 'refused', file: display, rule: 'read-timeout', reason: `${display} was not read within ${req.timeoutMs} ms` };
  };
}

async function readInGuest(rootFd: number, req: UserFileRequest, display: string, held: fsp.FileHandle[]): Promise<UserFileOutcome> {
  const { uid } = req;
  const rel = req.relative.split('/');
  if (rel.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`bad relative path ${req.relative}`);
  const open = async (p: string, flags: number): Promise<fsp.FileHandle> => {
    const fh = await fsp.open(p, flags);
    held.push(fh);
    return fh;
  };
  try {
    // The home: symlinks allowed (automounters), each taken against the guest's root.
    const root = `/proc/self/fd/${rootFd}`;
    let pending = parts(req.home);
    let stack: string[] = [];
    let hops = 0;
    const reopen = async (): Promise<fsp.FileHandle> => {
      let fh = await open(root, O_RDONLY | O_DIRECTORY);
      for (const name of stack) fh = await open(at(fh, name), DIR_FLAGS);
      return fh;
    };
    let cur = await reopen();
    while (pending.length) {
      const name = pending.shift()!;
      if (name === '..') {
        stack = stack.slice(0, -1);
        cur = await reopen();
        continue;
      }
      try {
        cur = await open(at(cur, name), DIR_FLAGS);
        stack.push(name);
      } catch (err) {
        const c = code(err);
        if (c === 'ENOENT') throw new Missing(`home directory ${req.home} does not exist`, true);
        if (c !== 'ELOOP' && c !== 'ENOTDIR') throw err;
        let link: string;
        try {
          link = await fsp.readlink(at(cur, name));
        } catch {
          throw new Refusal('home-not-directory', `home directory ${req.home} is not a directory`);
        }
        if (++hops > MAX_HOPS) throw new Refusal('home-not-directory', `home directory ${req.home}: too many symbolic links`);
        if (link.startsWith('/')) stack = [];
        pending = [...parts(link), ...pending];
        if (pending.length > MAX_COMPONENTS) throw new Refusal('home-not-directory', `home directory ${req.home}: path too long`);
        cur = await reopen();
      }
    }
    checkDir(req.home, await cur.stat(), uid);
    // Below the home: real directories only.
    let dir = req.home;
    for (const name of rel.slice(0, -1)) {
      dir = path.posix.join(dir, name);
      try {
        cur = await open(at(cur, name), DIR_FLAGS);
      } catch (err) {
        const c = code(err);
        if (c === 'ENOENT') throw new Missing(`${dir} does not exist`);
        if (c === 'ELOOP' || c === 'ENOTDIR') {
          const isLink = await fsp.readlink(at(cur, name)).then(
            () => true,
            () => false,
          );
          throw isLink ? new Refusal('dir-symlink', `${dir} is a symbolic link`) : new Refusal('dir-not-directory', `${dir} is not a directory`);
        }
        throw err;
      }
      checkDir(dir, await cur.stat(), uid);
    }
    let fh: fsp.FileHandle;
    try {
      fh = await open(at(cur, rel[rel.length - 1]!), FILE_FLAGS);
    } catch (err) {
      switch (code(err)) {
        case 'ENOENT':
          throw new Missing(`${display} does not exist`);
        case 'ELOOP':
          throw new Refusal('file-symlink', `${display} is a symbolic link`);
        case 'ENXIO':
        case 'ENODEV':
        case 'EISDIR':
          throw new Refusal('file-not-regular', `${display} is not a regular file`);
        default:
          throw err;
      }
    }
    const st = await fh.stat();
    if (!st.isFile()) throw new Refusal('file-not-regular', `${display} is not a regular file`);
    if (!trusted(st.uid, uid)) throw new Refusal('file-owner', `${display} is owned by uid ${st.uid}, not by the user (uid ${uid}) or root`);
    if (st.mode & 0o022) throw new Refusal('file-writable', `${display} is writable by group or others (mode ${modeOf(st)})`);
    if (st.nlink > 1 && st.uid !== uid) throw new Refusal('file-hard-link', `${display} is a hard link to a file the user does not own`);
    if (st.size > req.maxBytes) throw new Refusal('file-too-large', `${display} is larger than ${req.maxBytes} bytes`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const room = Math.min(64 * 1024, req.maxBytes + 1 - total);
      const buf = Buffer.allocUnsafe(room);
      const { bytesRead } = await fh.read(buf, 0, room, total);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > req.maxBytes) throw new Refusal('file-too-large', `${display} is larger than ${req.maxBytes} bytes`);
    }
    if (total === 0) return { kind: 'missing', file: display, reason: `${display} is empty` };
    return { kind: 'data', data: Buffer.concat(chunks, total), file: display };
  } catch (err) {
    if (err instanceof Missing) return { kind: 'missing', file: display, reason: err.message, ...(err.home ? { home: true as const } : {}) };
    if (err instanceof Refusal) return { kind: 'refused', file: display, rule: err.rule, reason: err.message };
    return { kind: 'refused', file: display, rule: 'read-error', reason: `${display} cannot be read (${code(err) ?? 'error'})` };
  }
}
